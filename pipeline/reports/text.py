"""Clean, shorten and flatten untrusted text before any format escapes it."""

from __future__ import annotations

import re

# Control characters, lone surrogates and non-characters: they break rendering or XML.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """Drop characters that break rendering (controls except newline and tab, surrogates)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def shorten(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def one_line(text: str, limit: int) -> str:
    """Return cleaned text on one line (whitespace runs become one space), cut to `limit`."""
    return shorten(" ".join(clean(text).split()), limit)
