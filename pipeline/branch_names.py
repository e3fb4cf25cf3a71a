"""Which branch names gradehook hands to git: git's rules, and none that could pass as an option."""

from __future__ import annotations

import re
import unicodedata

REF_FORBIDDEN = re.compile(r"(\.\.|@\{|//|[\x00-\x20\x7f~^:?*\[\\])")
# Unicode refused in branch names though git takes it: controls, format characters (bidi
# overrides, zero-width), lone surrogates, private use, unassigned, and odd spaces and breaks.
ODD_UNICODE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
MAX_BRANCH_NAME_LENGTH = 255

EMPTY = "it is empty"
NOT_TEXT = "it is not text"
TOO_LONG = f"it is longer than {MAX_BRANCH_NAME_LENGTH} characters"
AT_ALONE = "'@' alone is no branch name"
SLASH_AT_END = "it starts or ends with '/'"
DOT_AT_END = "it ends with '.'"
LOCK_AT_END = "it or a part of it between slashes ends with '.lock'"
FORBIDDEN = "git does not allow {what} in a branch name"
SPACE = "a space"
CONTROL = "a control character"
DOT_AT_START = "it or a part of it between slashes starts with '.'"
DASH_AT_START = ("it or a part of it between slashes starts with '-', which would read as an "
                 "option")
ODD_CHARACTER = "it holds {code}, an invisible or unusual character"


def is_branch_name(ref: object) -> bool:
    """Tell whether git would accept a ref or branch name and no part can pass as an option."""
    return branch_name_problem(ref) is None


def branch_name_problem(ref: object) -> str | None:
    """Say why git would refuse a ref or branch name, or a part of it could pass as an option;
    None for a good one.

    git check-ref-format's rules, plus: no component starts with '-' (a name taken alone
    must not read as an option), and no odd unicode.
    """
    if not isinstance(ref, str):
        return NOT_TEXT
    if not ref:
        return EMPTY
    if len(ref) > MAX_BRANCH_NAME_LENGTH:
        return TOO_LONG
    if ref == "@":
        return AT_ALONE
    if ref.startswith("/") or ref.endswith("/"):
        return SLASH_AT_END
    if ref.endswith("."):
        return DOT_AT_END
    forbidden = REF_FORBIDDEN.search(ref)
    if forbidden:
        return FORBIDDEN.format(what=_named(forbidden.group()))
    parts = ref.split("/")
    if any(part.endswith(".lock") for part in parts):
        return LOCK_AT_END
    if any(part.startswith(".") for part in parts):
        return DOT_AT_START
    if any(part.startswith("-") for part in parts):
        return DASH_AT_START
    if not ref.isascii():  # controls and spaces are refused above
        for character in ref:
            if unicodedata.category(character) in ODD_UNICODE_CATEGORIES:
                return ODD_CHARACTER.format(code=f"U+{ord(character):04X}")
    return None


def _named(found: str) -> str:
    """Name what REF_FORBIDDEN found, as a reader can see it."""
    if found == " ":
        return SPACE
    if len(found) == 1 and (ord(found) < 0x20 or found == "\x7f"):
        return CONTROL
    return repr(found)
