"""Field checks shared by the test.yaml and meta.yaml readers: coerce a value or note a problem."""

from __future__ import annotations

import builtins
import math
import re
import reprlib
import token
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from pipeline.grading.errors import FieldProblem
from pipeline.likely_names import did_you_mean

INVALID = object()
VERSION_PATTERN = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*)){0,3}$")

MUST_BE_MAPPING = "must be a mapping of fields, got {got}"
MUST_BE_STRING = "must be a string, got {got}"
MUST_NOT_BE_EMPTY = "must not be empty"
MUST_BE_STRING_OR_LIST = "must be a string or a list of strings, got {got}"
MUST_BE_DEPENDENCY = "must be a string, an integer or a list of them, got {got}"
MUST_BE_NUMBER = "must be a number, got {got}"
MUST_BE_FINITE = "must be a finite number, got {got}"
MUST_BE_ABOVE = "must be greater than {limit}, got {got}"
MUST_BE_AT_LEAST = "must be at least {limit}, got {got}"
MUST_BE_AT_MOST = "must be at most {limit}, got {got}"
MUST_BE_INTEGER = "must be an integer, got {got}"
MUST_BE_BOOLEAN = "must be true or false, got {got}"
MUST_BE_ONE_OF = "must be one of {choices}, got {got}"
MUST_BE_RANGE = "must be a list of two integers [min, max], got {got}"
# A structural test passes when min <= count <= max: with min above max, no count ever does.
MUST_BE_ORDERED = "must be [min, max] with min at most max, or no count passes, got {got}"
MUST_BE_VERSION = "must be a version like 1.0 or 2.1.3, got {got}"
# A structural test counts the tokens of the type `token.<occuranceType>` names: with a name
# that is none, CodeAbility skipped every such test, scored as the student's.
MUST_BE_TOKEN_TYPE = ("must be a token type of Python's token module, such as NAME, OP, STRING "
                      "or NUMBER, got {got}")
MUST_BE_LIST = "must be a list, got {got}"
IS_REQUIRED = "is required"
UNKNOWN_FIELD = "unknown field"
MISPLACED_FIELD = "is not a field here: it belongs {where}"
DESCRIBED_LENGTH = 60


class _ShortRepr(reprlib.Repr):
    """A repr that looks at a few levels and items of a value, and at the start of a string.

    A YAML file's aliases can make a small file a huge value (a "billion laughs"): its whole
    repr would take gigabytes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxset = self.maxfrozenset = self.maxdeque = 8
        self.maxarray = 8
        self.maxdict = 4
        self.maxstring = self.maxother = self.maxlong = DESCRIBED_LENGTH

    def repr_str(self, x: str, level: int) -> str:
        return builtins.repr(x[:self.maxstring + 1])


_SHORT_REPR = _ShortRepr()


def describe(value: Any) -> str:
    """Return a short readable rendering of a bad value for a problem message."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= DESCRIBED_LENGTH else text[:DESCRIBED_LENGTH - 3] + "..."


@dataclass(frozen=True)
class OtherKey:
    """A step of a path: a key that YAML read as another value than a string (`2024:`, `yes:`)."""

    value: Any


# Where a field lies in a file's data, step by step from the top: a field's name, a list item's
# index (an int) or an OtherKey. Problems name it as text (path_text), and the steps find its
# line in the file's text (pipeline.grading.places) even where the text is ambiguous.
FieldPath = tuple[str | int | OtherKey, ...]
TOP: FieldPath = ()


def join_path(prefix: FieldPath, name: str | int) -> FieldPath:
    """Return the path of a field (a name) or a list item (an index) below prefix."""
    return prefix + (name,)


def key_path(prefix: FieldPath, key: Any) -> FieldPath:
    """Return the path of a mapping's key as YAML read it, whatever its type."""
    return prefix + (key if isinstance(key, str) else OtherKey(key),)


def hidden_below(problems: Sequence[FieldProblem],
                 paths: Collection[FieldPath]) -> list[FieldProblem]:
    """Mark the problems of the fields at or below any of paths as telling of a hidden test."""
    return [replace(problem, hidden=True)
            if any(problem.steps[:len(path)] == path for path in paths) else problem
            for problem in problems]


def path_text(path: FieldPath) -> str:
    """Word a path as problems name it: `properties.tests[3].name`.

    A key is written as it is, dots and brackets included, and another value as str() gives it.
    """
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            name = step.value if isinstance(step, OtherKey) else step
            text = f"{text}.{name}" if text else str(name)
    return text


class FieldChecker:
    """Collect the problems of one file while converting its fields."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def fail(self, path: FieldPath, problem: str, *, hidden: bool = False) -> object:
        """Record a problem (hidden: it tells of a hidden test) and return the INVALID marker."""
        self.problems.append(FieldProblem(path_text(path) or "(top level)", problem, path,
                                          hidden=hidden))
        return INVALID

    def mapping(self, value: Any, path: FieldPath, allowed: tuple[str, ...] | None,
                misplaced: Mapping[str, str] | None = None, *,
                others_allowed: bool = False) -> dict | None:
        """Check that value is a mapping with only allowed keys (None: any key at all, even one
        YAML reads as a number or a boolean, like `2024:` or `yes:`); misplaced words where a
        known field that is not allowed here belongs instead. With others_allowed, a key that
        is neither allowed nor misplaced is taken unless it likely misspells an allowed one."""
        if not isinstance(value, dict):
            self.fail(path, MUST_BE_MAPPING.format(got=describe(value)))
            return None
        if allowed is None:
            return value
        for key in value:
            if isinstance(key, str) and key not in allowed and key in (misplaced or {}):
                self.fail(key_path(path, key), MISPLACED_FIELD.format(where=misplaced[key]))
            elif not isinstance(key, str) or key not in allowed:
                likely = did_you_mean(key, allowed)
                if likely or not others_allowed:
                    self.fail(key_path(path, key), UNKNOWN_FIELD + likely)
        return value

    def string(self, value: Any, path: FieldPath, *, may_be_empty: bool = False) -> Any:
        """Return a string, non-empty unless allowed; numbers become strings, booleans are
        invalid."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return self.fail(path, MUST_BE_STRING.format(got=describe(value)))
        text = value if isinstance(value, str) else str(value)
        if not text and not may_be_empty:
            return self.fail(path, MUST_NOT_BE_EMPTY)
        return text

    def string_list(self, value: Any, path: FieldPath, *, may_be_empty: bool = False) -> Any:
        """Return a tuple of strings from one string or a list of strings."""
        if isinstance(value, list):
            items = [self.string(item, join_path(path, i), may_be_empty=may_be_empty)
                     for i, item in enumerate(value)]
            return INVALID if INVALID in items else tuple(items)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return self.fail(path, MUST_BE_STRING_OR_LIST.format(got=describe(value)))
        item = self.string(value, path, may_be_empty=may_be_empty)
        return INVALID if item is INVALID else (item,)

    def dependency_list(self, value: Any, path: FieldPath) -> Any:
        """Return a tuple of ids (strings) and indices (integers) from one entry or a list."""
        entries = value if isinstance(value, list) else [value]
        result = []
        for i, entry in enumerate(entries):
            where = join_path(path, i) if isinstance(value, list) else path
            if isinstance(entry, bool) or not isinstance(entry, (str, int, float)):
                self.fail(where, MUST_BE_DEPENDENCY.format(got=describe(entry)))
                result.append(INVALID)
            elif isinstance(entry, int):
                result.append(entry)
            else:
                result.append(self.string(entry, where))
        return INVALID if INVALID in result else tuple(result)

    def number(self, value: Any, path: FieldPath, *, above: float | None = None,
               at_least: float | None = None) -> Any:
        """Return a finite float within the given bound; numeric strings are accepted."""
        if isinstance(value, bool):
            return self.fail(path, MUST_BE_NUMBER.format(got=describe(value)))
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return self.fail(path, MUST_BE_NUMBER.format(got=describe(value)))
        if not isinstance(value, (int, float)):
            return self.fail(path, MUST_BE_NUMBER.format(got=describe(value)))
        number = float(value)
        if not math.isfinite(number):
            return self.fail(path, MUST_BE_FINITE.format(got=describe(value)))
        if above is not None and not number > above:
            return self.fail(path, MUST_BE_ABOVE.format(limit=above, got=describe(value)))
        if at_least is not None and number < at_least:
            return self.fail(path, MUST_BE_AT_LEAST.format(limit=at_least, got=describe(value)))
        return number

    def integer(self, value: Any, path: FieldPath, *, at_least: int | None = None,
                at_most: int | None = None) -> Any:
        """Return an integer within the given bounds; integral strings are accepted."""
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(path, MUST_BE_INTEGER.format(got=describe(value)))
        if at_least is not None and value < at_least:
            return self.fail(path, MUST_BE_AT_LEAST.format(limit=at_least, got=value))
        if at_most is not None and value > at_most:
            return self.fail(path, MUST_BE_AT_MOST.format(limit=at_most, got=value))
        return value

    def boolean(self, value: Any, path: FieldPath) -> Any:
        """Return a boolean; anything else is invalid."""
        if not isinstance(value, bool):
            return self.fail(path, MUST_BE_BOOLEAN.format(got=describe(value)))
        return value

    def choice(self, value: Any, path: FieldPath, choices: tuple[str, ...]) -> Any:
        """Return one of the allowed strings."""
        if not isinstance(value, str) or value not in choices:
            return self.fail(path, MUST_BE_ONE_OF.format(choices=", ".join(choices),
                                                         got=describe(value)))
        return value

    def token_type(self, value: Any, path: FieldPath) -> Any:
        """Return the name of a token type of Python's token module (NAME, OP, ...)."""
        if not isinstance(value, str) or not isinstance(getattr(token, value, None), int):
            return self.fail(path, MUST_BE_TOKEN_TYPE.format(got=describe(value))
                             + did_you_mean(value, token.tok_name.values()))
        return value

    def int_pair(self, value: Any, path: FieldPath) -> Any:
        """Return a (min, max) pair of integers, min at most max."""
        if (not isinstance(value, list) or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in value)):
            return self.fail(path, MUST_BE_RANGE.format(got=describe(value)))
        if value[0] > value[1]:
            return self.fail(path, MUST_BE_ORDERED.format(got=describe(value)))
        return (value[0], value[1])

    def version(self, value: Any, path: FieldPath) -> Any:
        """Return a version string such as 1.0."""
        text = self.string(value, path)
        if text is not INVALID and not VERSION_PATTERN.match(text):
            return self.fail(path, MUST_BE_VERSION.format(got=describe(value)))
        return text

    def items(self, value: Any, path: FieldPath, parse: Callable[[Any, FieldPath], Any]) -> Any:
        """Parse each item of a list with parse(item, item_path)."""
        if not isinstance(value, list):
            return self.fail(path, MUST_BE_LIST.format(got=describe(value)))
        parsed = [parse(item, join_path(path, i)) for i, item in enumerate(value)]
        return INVALID if INVALID in parsed else tuple(parsed)
