"""Clean, shorten and flatten untrusted text before any format escapes it."""

from __future__ import annotations

import re

# Terminal escape sequences (colours, cursor moves, hyperlinks), 7-bit and 8-bit: a program
# writing coloured output would otherwise show `[31m` around its words.
_TERMINAL_ESCAPE = re.compile(
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]"              # CSI: colours, cursor
    "|(?:\x1b\\]|\x9d)[^\x07\x1b\x9c\x9d]*(?:\x07|\x1b\\\\|\x9c)"  # OSC: titles, links
    "|\x1b[ -/]*[0-~]")                                 # the other escapes
# Control characters (C0 but newline and tab, C1), lone surrogates and non-characters: they
# break rendering or XML.
_CONTROL_CHARACTERS = "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
_CONTROL = re.compile(f"[{_CONTROL_CHARACTERS}]")
# Invisible characters that hide a difference or reorder what is shown (zero-width spaces,
# byte order marks, direction marks, overrides and isolates): shown by their code point, so
# `ab\u200bc` does not read as `abc`, nor `\u202e` turn a value around.
_INVISIBLE_CHARACTERS = "\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARACTERS}]")
# In a value every character that would not show is named, escapes and carriage returns too:
# values that differ must not look alike.
_UNSHOWN_IN_VALUE = re.compile(f"[{_CONTROL_CHARACTERS}{_INVISIBLE_CHARACTERS}]")


def clean(text: str) -> str:
    """Drop what breaks rendering (terminal escapes, controls but newline and tab, surrogates)
    and name the invisible characters that would hide a difference."""
    text = _TERMINAL_ESCAPE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _INVISIBLE.sub(_named, _CONTROL.sub("", text))


def clean_value(text: str) -> str:
    """Name, by code point, every character of a value that would not show (controls but
    newline and tab, escapes, surrogates, invisible characters): `\x1b[32mHi` is not `Hi`."""
    return _UNSHOWN_IN_VALUE.sub(_named, text)


def _named(found: re.Match[str]) -> str:
    return f"⟨U+{ord(found[0]):04X}⟩"


def shorten(text: str, limit: int, kept_end: str = "") -> str:
    """Cut text to at most `limit` characters, marking the cut with an ellipsis; text ending in
    `kept_end` keeps that end whole, cut before it."""
    if len(text) <= limit:
        return text
    if kept_end and text.endswith(kept_end) and len(kept_end) < limit:
        return shorten(text[:-len(kept_end)], limit - len(kept_end)) + kept_end
    return text[:max(limit - 1, 0)] + "…"


def one_line(text: str, limit: int, kept_end: str = "") -> str:
    """Return cleaned text on one line (whitespace runs become one space), cut to `limit`
    before `kept_end` if it ends so."""
    return shorten(" ".join(clean(text).split()), limit, kept_end)
