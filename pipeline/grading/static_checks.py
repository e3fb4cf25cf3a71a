"""Checks that read files without running them: structural token counts and file existence."""

from __future__ import annotations

import errno
import glob
import os
import token
import tokenize
from pathlib import Path

from pipeline.grading.checks import PASS, Verdict, fail, fail_with
from pipeline.grading.spec import TestSpec
from pipeline.grading.staging import contained_file

FOUND_TOO_FEW = "`{name}` found {count}-times, minimum required: {minimum}"
FOUND_TOO_MANY = "`{name}` found {count}-times, maximum required: {maximum}"
FILE_NOT_FOUND = "File with pattern `{pattern}` not found in {side} namespace"
TOO_LARGE_TO_COUNT = "{file} is too large to count its tokens: {size} bytes, more than {limit}"
# The largest student file the worker reads as Python: tokenizing takes about 1.5 s per MB for
# each test (256 MB of code, which a sandbox's work directory holds, 6 minutes), and a syntax
# tree up to 600 times the file's size in memory.
MAX_SOURCE_BYTES = 256 * 1024


def check_structural(test: TestSpec, file: str | None, staged_dir: Path,
                     shown_dir: Path) -> Verdict:
    """Count the tokens of the given type whose text is the test name, against the allowed range."""
    token_type = getattr(token, test.occurance_type)
    try:
        path = _student_file(file, staged_dir, shown_dir)
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            return fail("Failed", TOO_LARGE_TO_COUNT.format(file=file, size=size,
                                                            limit=MAX_SOURCE_BYTES))
        count = count_tokens(path, token_type, test.name)
    except Exception as exc:
        return fail_with(exc)
    minimum, maximum = test.allowed_occurance_range
    if count < minimum:
        return fail("AssertionError", FOUND_TOO_FEW.format(name=test.name, count=count,
                                                           minimum=minimum))
    if count > maximum:
        return fail("AssertionError", FOUND_TOO_MANY.format(name=test.name, count=count,
                                                            maximum=maximum))
    return PASS


def _student_file(file: str | None, staged_dir: Path, shown_dir: Path) -> Path:
    """Return the staged file to read; a missing one raises with the path the student knows."""
    shown = os.path.join(shown_dir, file)
    staged = contained_file(staged_dir, file)
    if staged is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), shown)
    return staged


def count_tokens(path: Path, token_type: int, text: str) -> int:
    """Return how many tokens of a type have exactly the given text in a Python file."""
    with path.open("rb") as handle:
        return sum(1 for item in tokenize.tokenize(handle.readline)
                   if item.type == token_type and item.string == text)


def matches_in(pattern: str | None, root: Path) -> bool:
    """Tell whether an exist test's non-recursive glob matches anything in a directory, as
    glob.glob(pattern, root_dir=root) tells, looking into each folder once for each part of the
    pattern.

    glob looks into a folder again for each path that leads to it: a student's folder of 2,000
    links to `.` made `*/*/x.py` look 2,000 times into it, at 20 seconds, `*/*/*/x.py` for
    hours. Whether a folder holds a match of the parts left depends on the folder alone, so each
    part is matched in each folder (by its real path) once.
    """
    if not pattern or os.path.isabs(pattern):
        return bool(glob.glob(pattern, root_dir=root))
    *folder_parts, last = pattern.split("/")
    folders = {os.path.realpath(root)}
    for part in folder_parts:
        if part:  # `a//b` is `a/b`
            folders = {os.path.realpath(path) for folder in folders
                       for path in _matches(part, folder) if os.path.isdir(path)}
    # A pattern ending in `/` matches folders alone: those its other parts matched.
    return any(_matches(last, folder) for folder in folders) if last else bool(folders)


def _matches(part: str, folder: str) -> list[str]:
    """Return the paths in a folder whose names one part of a glob pattern matches."""
    return [os.path.join(folder, name) for name in glob.glob(part, root_dir=folder)]


def check_exist(pattern: str | None, student_dir: Path, reference_dir: Path) -> Verdict:
    """Require a non-recursive glob match in the student directory, then in the reference's."""
    try:
        for side, root in (("student", student_dir), ("reference", reference_dir)):
            if not matches_in(pattern, root):
                return fail("FileNotFoundError", FILE_NOT_FOUND.format(pattern=pattern,
                                                                       side=side))
    except Exception as exc:
        return fail_with(exc)
    return PASS
