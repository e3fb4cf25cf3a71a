"""Which of a course's assignment directories a set of changed paths touches."""

from __future__ import annotations

from typing import AbstractSet, Sequence

REASON_NO_ASSIGNMENTS = "the course has no known assignments"


def known_assignments(directories: Sequence[str]) -> tuple[str, ...]:
    """Return assignment directories without surrounding slashes, duplicates or empties."""
    cleaned = (directory.strip("/") for directory in directories)
    return tuple(dict.fromkeys(directory for directory in cleaned if directory))


def touched_assignments(paths: AbstractSet[str], directories: Sequence[str]) -> tuple[str, ...]:
    """Return the directories that a path equals or lies under, in the directories' order."""
    return tuple(directory for directory in known_assignments(directories)
                 if any(path == directory or path.startswith(directory + "/")
                        for path in paths))
