"""Values a run hands back: decode the tagged JSON, and stand in for those that stayed inside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.grading.runner import shorten
from pipeline.sandbox.values import Untransferable, ValueDecodeError, decode

CANNOT_DECODE = "Variable `{name}` came back from the sandbox in an unreadable form: {reason}"
# str(type(value)) leaves the module out of the names of builtins' types, and of the classes a
# run's entry point defines: its namespace has no __name__, so their module is builtins.
BUILTINS_PREFIX = "builtins."


@dataclass(frozen=True)
class Uncomparable:
    """Stands in the checks for a value that could not leave the sandbox: its type's
    module.qualname, its repr as the program wrote it (None when not sent), and why a value of
    a type that is carried stayed (too large, a form that cannot be rebuilt; None for a type
    that is never carried)."""

    qualname: str
    text: str | None = None
    reason: str | None = None

    @property
    def type_name(self) -> str:
        """Return the type's name as str(type(value)) writes it: `map`, `Point`, `geo.Point`."""
        return self.qualname.removeprefix(BUILTINS_PREFIX)

    def __repr__(self) -> str:
        return self.text or ""


def decode_entry(name: str, entry: dict[str, Any]) -> tuple[Any, str | None]:
    """Return (value, None), an Uncomparable as the value when it could not leave the sandbox,
    or (None, problem) when the data cannot be read."""
    if "untransferable" in entry:
        return Uncomparable(entry["untransferable"], reason=entry.get("reason")), None
    try:
        value = decode(entry.get("value"))
    except ValueDecodeError as exc:
        return None, CANNOT_DECODE.format(name=name, reason=shorten(str(exc)))
    if isinstance(value, Untransferable):
        return Uncomparable(shorten(value.qualname), value.repr), None
    return value, None
