"""Short, readable texts of compared values for a test's debug, cut around where they differ.

A failed test's message abbreviates both values to ten characters (spec/codeability.md §7), so
values that differ late look the same there. These excerpts keep up to EXCERPT_CHARS of each value
as Python would write it, with strings quoted and escaped and set items sorted (stable across
runs). Strings, lists, tuples and numpy arrays are cut around their first differing part (a
character, an item, a row); other values around the first character where their texts differ.
Subclasses of these (a namedtuple, a Counter, an OrderedDict) are written as their repr, which
names their type. `…` marks what was left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from pipeline.grading.approx import approx_equal, is_ndarray

EXCERPT_CHARS = 300
# At most this much comes before the first difference, so that it stays visible where a reader
# shows only the start of an excerpt (a merge request comment's table cell shows 120 characters).
CONTEXT_BEFORE_CHARS = 80
# Values other than strings and sequences are compared by this much of their text at most.
SCANNED_CHARS = 1_000_000
ELISION = "…"
# What stands for a value Python refuses to write: an int of more decimal digits than
# sys.get_int_max_str_digits() allows (4300), alone or inside an array or frame.
TOO_LONG_TO_WRITE = "<{kind} too long to write>"
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True)
class _Layout:
    """How a value is written: an opening, its parts joined by a separator, a closing."""

    opening: str
    parts: Sequence[Any]
    separator: str
    closing: str
    show: Callable[[Any, int], str]  # a part's text, cut to at most the given length


def difference_excerpts(actual: Any, expected: Any, rel: float,
                        abs_tol: float) -> tuple[str, str]:
    """Return excerpts of both values around their first difference (within the tolerances)."""
    actual_layout, expected_layout = _layout(actual), _layout(expected)
    index = _first_difference(actual_layout.parts, expected_layout.parts, rel, abs_tol)
    return _excerpt(actual_layout, index), _excerpt(expected_layout, index)


def text_excerpt(text: str, *, from_end: bool = False) -> str:
    """Return an excerpt of a text: its start, or its end."""
    return _excerpt(_layout(text), len(text) if from_end else 0)


def _layout(value: Any) -> _Layout:
    if isinstance(value, str):
        return _Layout("'", value, "", "'", lambda char, _: _escape(char))
    if type(value) is list:
        return _Layout("[", value, ", ", "]", _literal)
    if type(value) is tuple:
        return _Layout("(", value, ", ", ",)" if len(value) == 1 else ")", _literal)
    if is_ndarray(value) and value.ndim > 0:
        return _Layout("array([", value.tolist(), ", ", "])", _literal)
    return _Layout("", _literal(value, SCANNED_CHARS), "", "", lambda char, _: char)


def _first_difference(actual: Sequence[Any], expected: Sequence[Any], rel: float,
                      abs_tol: float) -> int:
    for index, (left, right) in enumerate(zip(actual, expected)):
        if not _same(left, right, rel, abs_tol):
            return index
    return min(len(actual), len(expected))


def _same(left: Any, right: Any, rel: float, abs_tol: float) -> bool:
    if isinstance(left, str):
        # `'a' == array` is an array, whose truth Python cannot tell
        return isinstance(right, str) and left == right
    try:
        return approx_equal(left, right, rel, abs_tol)
    # approx refuses sets (they compare exactly) and odd mixes, an int too large for a float
    # cannot be subtracted from one, and the student's parts may be anything the host rebuilds
    # (a pandas Series with the keys of a dict as a set but not its labels raises KeyError):
    # parts that cannot be compared differ, as verify_equal found the whole values to
    except Exception:
        return isinstance(left, (set, frozenset)) and isinstance(right, (set, frozenset)) \
            and left == right


def _excerpt(layout: _Layout, index: int) -> str:
    """Write the parts around `index`: some context before it, then as much as fits after."""
    marks = 2 * len(ELISION + layout.separator)
    room = EXCERPT_CHARS - len(layout.opening) - len(layout.closing) - marks
    index = min(index, len(layout.parts))
    before = _fitting(layout, range(index - 1, -1, -1), min(CONTEXT_BEFORE_CHARS, room))
    used = sum(len(text) + len(layout.separator) for text in before)
    after = _fitting(layout, range(index, len(layout.parts)), room - used, cut_first=True)
    shown = [*reversed(before), *after]
    if index - len(before) > 0:
        shown.insert(0, ELISION)
    if index + len(after) < len(layout.parts):
        shown.append(ELISION)
    return layout.opening + layout.separator.join(shown) + layout.closing


def _fitting(layout: _Layout, positions: range, budget: int, cut_first: bool = False) -> list[str]:
    """Return the texts of the parts at `positions` that fit into `budget` characters, in order.

    With `cut_first`, a first part too long for the budget is shown cut rather than left out.
    """
    texts: list[str] = []
    used = 0
    for position in positions:
        text = layout.show(layout.parts[position], budget + 1)
        cost = len(text) + (len(layout.separator) if texts else 0)
        if used + cost > budget:
            if cut_first and not texts:
                texts.append(_cut(text, budget))
            break
        texts.append(text)
        used += cost
    return texts


def _literal(value: Any, limit: int) -> str:
    """Write a value as Python would, sets sorted; cut to `limit` characters."""
    pieces: list[str] = []
    length = 0
    for piece in _pieces(value):
        pieces.append(piece)
        length += len(piece)
        if length > limit:
            break
    return _cut("".join(pieces), limit)


def _pieces(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield "'"
        yield from map(_escape, value)
        yield "'"
    elif type(value) in (list, tuple):
        layout = _layout(value)
        yield layout.opening
        yield from _joined(value, _pieces)
        yield layout.closing
    elif type(value) is dict:
        yield "{"
        yield from _joined(value.items(), _entry_pieces)
        yield "}"
    elif type(value) in (set, frozenset) and value:
        # Each item is written once, its text both sorted and shown: writing it again after
        # sorting by it would write a set nested in sets twice per level, 2 ** depth times.
        texts = sorted("".join(_pieces(item)) for item in value)
        yield "{" if isinstance(value, set) else "frozenset({"
        yield ", ".join(texts)
        yield "}" if isinstance(value, set) else "})"
    else:
        yield _repr(value)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except ValueError:
        return TOO_LONG_TO_WRITE.format(kind=type(value).__name__)


def _entry_pieces(entry: tuple[Any, Any]) -> Iterator[str]:
    yield from _pieces(entry[0])
    yield ": "
    yield from _pieces(entry[1])


def _joined(items: Any, pieces_of: Callable[[Any], Iterator[str]]) -> Iterator[str]:
    for position, item in enumerate(items):
        if position:
            yield ", "
        yield from pieces_of(item)


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    return char if char.isprintable() else repr(char)[1:-1]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - len(ELISION)] + ELISION
