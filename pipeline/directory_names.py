"""Which assignment directories gradehook hands to git: relative paths of plain folder names."""

from __future__ import annotations

import re
import unicodedata

MAX_DIRECTORY_LENGTH = 255  # the ledger's columns hold no more
# A folder name starts with a letter, a digit or '_' and goes on with those, '.', ' ', '+'
# and '-'. Letters and digits may be of any script: the pattern lets every character beyond
# ASCII through, and is_directory_name then keeps only letters, digits (what Python's `\w`
# matches) and the combining marks that follow them (an umlaut written as u + U+0308). The
# pattern reads the same in Python and in JavaScript: it is the API's documented pattern.
_FIRST = r"(?:[A-Za-z0-9_]|[^\x00-\x7F])"
_NEXT = r"(?:[A-Za-z0-9_. +-]|[^\x00-\x7F])"
DIRECTORY_PATTERN = re.compile(rf"^{_FIRST}{_NEXT}*(?:/{_FIRST}{_NEXT}*)*$")
DIRECTORY_RULE = ("folder names joined by '/', each starting with a letter, a digit or '_' and "
                  "holding only those, '.', ' ', '+' and '-'")


def is_directory_name(directory: object) -> bool:
    """Tell whether a path is an assignment directory: relative, plain names, no '..'.

    Nothing git, a shell or a pathspec reads specially gets through: no leading '-' or '.',
    no '..', ':', '\\', wildcards, quotes, controls, invisible format characters or odd spaces.
    """
    if not (isinstance(directory, str) and 0 < len(directory) <= MAX_DIRECTORY_LENGTH
            and DIRECTORY_PATTERN.fullmatch(directory)):
        return False
    return directory.isascii() or all(_plain_unicode(name) for name in directory.split("/"))


def _plain_unicode(name: str) -> bool:
    """Tell whether a name's characters beyond ASCII are letters, digits or marks after them."""
    for index, character in enumerate(name):
        if character.isascii():
            continue
        kind = unicodedata.category(character)[0]
        if kind not in "LN" and not (kind == "M" and index > 0):
            return False
    return True
