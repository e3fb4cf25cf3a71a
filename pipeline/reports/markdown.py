"""Put untrusted text into GitLab Flavored Markdown so it shows literally and cannot break out."""

from __future__ import annotations

import html
import re
import urllib.parse

from pipeline.reports.text import clean, one_line, shorten
from pipeline.reports.wording import EMPTY_VALUE

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_BACKTICK_RUNS = re.compile(r"`+")
_URL_SAFE = ":/?#[]@!$&'*+,;=%~-._"


def md_text(text: str, limit: int) -> str:
    """Return text for a Markdown paragraph or table cell: one line, every punctuation escaped."""
    return _PUNCTUATION.sub(r"\\\1", one_line(text, limit))


def inline_code(text: str, limit: int) -> str:
    """Return text as an inline code span: shown literally, no HTML, links or mentions."""
    shown = one_line(text, limit) if text.strip() else EMPTY_VALUE
    fence = "`" * (_longest_backtick_run(shown) + 1)
    return f"{fence} {shown} {fence}"


def cell_code(text: str, limit: int) -> str:
    """Return text as an inline code span safe inside a table cell."""
    # Pipes split GFM table cells even inside code spans unless escaped (GFM spec, tables).
    return inline_code(text, limit).replace("|", "\\|")


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
