"""Values a run hands back: decode the tagged JSON and name what could not leave the sandbox."""

from __future__ import annotations

from typing import Any

from pipeline.grading.runner import shorten
from pipeline.sandbox.values import Untransferable, ValueDecodeError, decode

CANNOT_TRANSFER = "Variable `{name}` of type {kind} cannot be transferred out of the sandbox"
CANNOT_TRANSFER_BECAUSE = CANNOT_TRANSFER + ": {reason}"
CANNOT_DECODE = "Variable `{name}` came back from the sandbox in an unreadable form: {reason}"


def decode_entry(name: str, entry: dict[str, Any]) -> tuple[Any, str | None]:
    """Return (value, None), or (None, problem) when the value could not be transferred."""
    if "untransferable" in entry:
        return None, CANNOT_TRANSFER_BECAUSE.format(name=name, kind=entry["untransferable"],
                                                    reason=entry.get("reason"))
    try:
        value = decode(entry.get("value"))
    except ValueDecodeError as exc:
        return None, CANNOT_DECODE.format(name=name, reason=shorten(str(exc)))
    if isinstance(value, Untransferable):
        return None, CANNOT_TRANSFER.format(name=name, kind=shorten(value.qualname))
    return value, None
