"""Make text that student code produced storable in PostgreSQL's text and JSON columns."""

from __future__ import annotations

import re
from typing import Any

# What PostgreSQL cannot store in text or JSON, and what stands in for it.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
NUL_SYMBOL, REPLACEMENT_CHARACTER = "\u2400", "\ufffd"


def storable(value: Any) -> Any:
    """Return a value with the characters PostgreSQL cannot store replaced, in every string.

    A student's program may print a NUL character or produce a lone surrogate (from bytes
    that are not UTF-8); PostgreSQL refuses both, so a report holding one could never be
    recorded. NUL becomes the visible symbol for it (U+2400), a lone surrogate the replacement
    character (U+FFFD): one character each, so the report reads as the grading saw it. Only
    what is stored is changed, after grading: values are compared as the programs made them.
    """
    if isinstance(value, str):
        return _UNSTORABLE.sub(_replacement, value) if _UNSTORABLE.search(value) else value
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


def _replacement(match: re.Match) -> str:
    return NUL_SYMBOL if match.group() == "\x00" else REPLACEMENT_CHARACTER
