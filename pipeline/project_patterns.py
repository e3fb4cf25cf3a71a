"""Whether two student_projects entries can claim one project, and a shortest such project."""

from __future__ import annotations

import fnmatch
import functools
import glob
import re

from pipeline.project_paths import (MAX_PROJECT_PATH_LENGTH, NAME_CHARS, NAME_STARTS,
                                    RESERVED_ENDINGS, is_project_path)

# The characters of project paths, in the order an example path prefers them.
ALPHABET = NAME_CHARS + "/"
# A token of an entry: the characters one position takes, or STAR for any run of characters.
STAR = None
# The state of a path being spelt at a name's start: its first, or one after a slash. Any other
# state is the longest end of the name that begins a reserved ending (Aho-Corasick).
_NAME_START = "/"
_State = tuple[int, int, str]
_WILDCARDS = frozenset("*?[")


def entry_claims(entry: str, project_path: str) -> bool:
    """Tell whether one student_projects entry claims a project path: a group path ending in
    "/" claims the paths below it, any other entry is an fnmatchcase pattern."""
    if entry.endswith("/"):
        return project_path.startswith(entry)
    return fnmatch.fnmatchcase(project_path, entry)


def common_project(first: str, second: str) -> str | None:
    """Return a shortest project path both entries claim, or None when they claim none alike.

    An entry ending in "/" claims the paths starting with it, any other is an fnmatchcase
    pattern (CourseSettings.claims). Exact: a breadth-first search over pairs of positions in
    the two entries and the state of the path spelt so far (is_project_path's rules).
    """
    for one, other in ((first, second), (second, first)):
        if _is_one_project(one):  # most entries name a project: no search needed
            return one if is_project_path(one) and entry_claims(other, one) else None
    a, b = _tokens(first), _tokens(second)
    start: _State = (0, 0, _NAME_START)
    came_from: dict[_State, tuple[_State, str] | None] = {start: None}
    frontier = [start]  # the states reached by paths of one length, the shortest first
    for _ in range(MAX_PROJECT_PATH_LENGTH + 1):
        done = next((s for s in frontier if _ends_both(a, b, s)), None)
        if done is not None:
            return _spelt(came_from, done)
        reached = []
        for state in frontier:
            for char, step in _steps(a, b, state):
                if step not in came_from:
                    came_from[step] = (state, char)
                    reached.append(step)
        frontier = reached
    return None


def _is_one_project(entry: str) -> bool:
    """Tell whether an entry claims one path only, itself: no group, no wildcard."""
    return not entry.endswith("/") and _WILDCARDS.isdisjoint(entry)


@functools.cache
def _tokens(entry: str) -> tuple[frozenset[str] | None, ...]:
    """Split an entry into tokens as fnmatch.translate (CPython 3.11) reads the pattern."""
    pattern = glob.escape(entry) + "*" if entry.endswith("/") else entry
    tokens: list[frozenset[str] | None] = []
    i = 0
    while i < len(pattern):
        char, i = pattern[i], i + 1
        if char == "*":
            tokens.append(STAR)
        elif char == "?":
            tokens.append(frozenset(ALPHABET))
        elif char == "[" and (end := _set_end(pattern, i)) >= 0:
            # translate's own reading of the set: ranges, '!', a leading ']' or '-'.
            one = re.compile(fnmatch.translate(pattern[i - 1:end + 1]))
            tokens.append(frozenset(c for c in ALPHABET if one.match(c)))
            i = end + 1
        else:  # an unclosed '[' stands for itself
            tokens.append(frozenset(char) & frozenset(ALPHABET))
    return tuple(tokens)


def _set_end(pattern: str, i: int) -> int:
    """Return where the set opened just before i closes, or -1: a ']' first is in the set."""
    if pattern.startswith("!", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    return pattern.find("]", i)


def _skips(tokens: tuple[frozenset[str] | None, ...], i: int) -> range:
    """Return the positions reached from i by letting stars match nothing."""
    end = i
    while end < len(tokens) and tokens[end] is STAR:
        end += 1
    return range(i, end + 1)


def _ends_both(a: tuple, b: tuple, state: _State) -> bool:
    """Tell whether both entries may end here and the path spelt is a project path."""
    i, j, name = state
    return (len(a) in _skips(a, i) and len(b) in _skips(b, j)
            and name != _NAME_START and name not in RESERVED_ENDINGS)


def _steps(a: tuple, b: tuple, state: _State):
    """Yield (character, next state) for each character both entries and a path take next."""
    i, j, name = state
    for x in _skips(a, i):
        for y in _skips(b, j):
            if x == len(a) or y == len(b):
                continue
            for char in ALPHABET:
                if (a[x] is STAR or char in a[x]) and (b[y] is STAR or char in b[y]):
                    after = _name_after(name, char)
                    if after is not None:
                        yield char, (x + (a[x] is not STAR), y + (b[y] is not STAR), after)


@functools.cache
def _name_after(name: str, char: str) -> str | None:
    """Return the state after one more character, or None when no project path goes on so."""
    if char == "/":
        return None if name == _NAME_START or name in RESERVED_ENDINGS else _NAME_START
    if name == _NAME_START:
        if char not in NAME_STARTS:
            return None
        name = ""
    grown = name + char
    return next(grown[k:] for k in range(len(grown) + 1)
                if any(ending.startswith(grown[k:]) for ending in RESERVED_ENDINGS))


def _spelt(came_from: dict[_State, tuple[_State, str] | None], state: _State) -> str:
    """Return the path spelt on the way to a state."""
    chars = []
    while (step := came_from[state]) is not None:
        state, char = step
        chars.append(char)
    return "".join(reversed(chars))
