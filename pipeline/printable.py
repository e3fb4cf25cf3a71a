"""Write untrusted text so that every character of it shows, none acting on what displays it."""

from __future__ import annotations


def printable(text: str) -> str:
    """Return text with each character that would not print (a line break, a tab, a terminal's
    escape, a direction mark) written as Python writes it in a string (`\\n`, `\\x1b`)."""
    return "".join(character if character.isprintable() else repr(character)[1:-1]
                   for character in text)
