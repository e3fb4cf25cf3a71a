"""The paths a commit's files and links may have to be laid out for grading, and why not."""

from __future__ import annotations

import os

from pipeline.printable import printable

# Linux file systems refuse a longer name. Deeper or longer paths than these could not be
# copied for the sandbox (a host path beyond PATH_MAX, copies that recurse once a folder).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
MAX_PATH_DEPTH = 64
SHOWN_PATH_CHARACTERS = 120
UNGRADABLE_PATH = "{what} cannot be graded: {detail}"
NAME_TOO_LONG = "{path} has a name of {size} bytes, longer than the {limit} a file system allows"
PATH_TOO_LONG = "{path} is a path of {size} bytes, longer than the {limit} a run can grade"
PATH_TOO_DEEP = "{path} lies {depth} folders deep, deeper than the {limit} a run can grade"
EMPTY_LINK = "{path} is a link to nothing (an empty path)"
LINK_TOO_LONG = "{path} links to a path of {size} bytes, longer than the {limit} a run can grade"


def path_problem(path: str, link_target: str | None = None) -> str | None:
    """Return why a committed path (and a link's target) cannot be laid out, or None."""
    shown = shown_path(path)
    folders = [part for part in path.split("/") if part]
    longest = max((len(os.fsencode(part)) for part in folders), default=0)
    if longest > MAX_NAME_BYTES:
        return NAME_TOO_LONG.format(path=shown, size=longest, limit=MAX_NAME_BYTES)
    size = len(os.fsencode(path))
    if size > MAX_PATH_BYTES:
        return PATH_TOO_LONG.format(path=shown, size=size, limit=MAX_PATH_BYTES)
    if len(folders) - 1 > MAX_PATH_DEPTH:
        return PATH_TOO_DEEP.format(path=shown, depth=len(folders) - 1, limit=MAX_PATH_DEPTH)
    if link_target is None:
        return None
    target_size = len(os.fsencode(link_target))
    if target_size == 0:
        return EMPTY_LINK.format(path=shown)
    if target_size > MAX_PATH_BYTES:
        return LINK_TOO_LONG.format(path=shown, size=target_size, limit=MAX_PATH_BYTES)
    return None


def shown_path(path: str) -> str:
    """Return a path as a message names it, on one line: a character no one can see (a line
    break, a tab, an escape) as Python writes it in a string (`\\n`), cut after
    SHOWN_PATH_CHARACTERS characters."""
    if len(path) <= SHOWN_PATH_CHARACTERS:
        return printable(path)
    return printable(path[:SHOWN_PATH_CHARACTERS]) + f"... ({len(path)} characters)"
