"""Put untrusted text into GitLab Flavored Markdown so it shows literally and cannot break out."""

from __future__ import annotations

import html
import re
import urllib.parse

from pipeline.reports.text import clean, clean_value, one_line, shorten
from pipeline.reports.wording import EMPTY_VALUE, LINE_BREAK_SIGN

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_BACKTICK_RUNS = re.compile(r"`+")
# Runs of spaces, and a space at either end: CommonMark strips one space at each end of a code
# span and browsers merge runs of spaces in inline code, so these need no-break spaces to show.
_SPACE_RUNS = re.compile(r" {2,}|^ | $")
NO_BREAK_SPACE = "\u00a0"
_URL_SAFE = ":/?#[]@!$&'*+,;=%~-._"


def md_text(text: str, limit: int) -> str:
    """Return text for a Markdown paragraph or table cell: one line, every punctuation escaped."""
    return _PUNCTUATION.sub(r"\\\1", one_line(text, limit))


def inline_code(text: str, limit: int) -> str:
    """Return text as an inline code span: shown literally, no HTML, links or mentions."""
    return _code_span(one_line(text, limit) if text.strip() else EMPTY_VALUE)


def cell_code(text: str, limit: int) -> str:
    """Return text as an inline code span safe inside a table cell."""
    return _in_cell(inline_code(text, limit))


def value_cell_code(text: str, limit: int) -> str:
    """Return a value as a code span in a table cell, keeping its spaces and line breaks visible.

    Values that differ only in spacing or line layout must not look the same: each line break
    shows as `\\n`, and every second space of a run is a no-break space, so the run keeps its
    width in GitLab (and a space at either end stays), while single spaces still wrap.
    """
    lines = clean_value(text).split("\n")
    shown = shorten(LINE_BREAK_SIGN.join(line.expandtabs(4) for line in lines), limit)
    return _in_cell(_code_span(_SPACE_RUNS.sub(_keep_spaces, shown) if shown else EMPTY_VALUE))


def _keep_spaces(run: re.Match[str]) -> str:
    if len(run[0]) == 1:
        return NO_BREAK_SPACE
    spaces = "".join(NO_BREAK_SPACE if n % 2 else " " for n in range(len(run[0])))
    # A run that starts or ends the value starts or ends with a no-break space, which is kept.
    if run.start() == 0:
        spaces = NO_BREAK_SPACE + spaces[1:]
    if run.end() == len(run.string):
        spaces = spaces[:-1] + NO_BREAK_SPACE
    return spaces


def _code_span(shown: str) -> str:
    fence = "`" * (_longest_backtick_run(shown) + 1)
    return f"{fence} {shown} {fence}"


def _in_cell(code: str) -> str:
    # Pipes split GFM table cells even inside code spans unless escaped (GFM spec, tables).
    return code.replace("|", "\\|")


def code_block(text: str, max_lines: int, max_chars: int, max_line_chars: int = 300) -> str:
    """Return text as a fenced code block, cut to a number of lines and characters."""
    lines = clean(text).expandtabs(4).splitlines()
    body = "\n".join(shorten(line, max_line_chars) for line in lines[:max_lines])
    if len(lines) > max_lines:
        body += "\n…"
    body = shorten(body, max_chars)
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    return f"{fence}text\n{body}\n{fence}"


def html_inline(text: str, limit: int) -> str:
    """Return text for inline HTML such as a <summary>, escaped and on one line."""
    return html.escape(one_line(text, limit))


def link(label: str, url: str | None) -> str:
    """Return a Markdown link to an http(s) URL, or nothing for any other URL."""
    if not url or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return ""
    target = urllib.parse.quote(url, safe=_URL_SAFE)
    return f"[{md_text(label, 100)}]({target})"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICK_RUNS.findall(text)), default=0)
