"""An assignment as the engine sees it: its specs, its mode and the digest that keys caches."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.grading.hidden_tests import hidden_collections, hidden_test_files
from pipeline.grading.meta import META_FILE_NAME, MetaSpec, load_meta
from pipeline.grading.spec import TEST_FILE_NAME, SuiteSpec, collection_names, \
    parse_test_suite, read_yaml
from pipeline.grading.staging import IGNORED_NAMES

MODE_CODEABILITY = "codeability"
MODE_PYTEST = "pytest"
MODE_COMPARISON = "comparison"
PYTEST_PATTERN = "test_*.py"
CONFTEST_NAME = "conftest.py"
SPECIFICATION_FILE_NAME = "specification.yaml"


@dataclass(frozen=True)
class Assignment:
    """A loaded assignment: directory, test suite (if any), meta data, grading mode, digest.

    hidden: the collections hidden from students (meta.yaml hiddenTests), by name; in pytest
    mode the test files, a folder's entry standing for each test file in it; none yet in
    comparison mode, whose collections are known once the reference is staged.
    """

    directory: Path
    suite: SuiteSpec | None
    meta: MetaSpec
    mode: str
    digest: str
    pytest_dir: Path | None = None
    pytest_files: tuple[str, ...] = ()
    hidden: frozenset[str] = frozenset()


def load_assignment(directory: Path, reference_dir: Path | None = None) -> Assignment:
    """Read an assignment directory: test.yaml if present, else pytest files, else comparison.

    Raises SpecError when test.yaml or meta.yaml is invalid, or a hiddenTests entry names no
    collection (no test file, in pytest mode): checked before test.yaml's fields, whose problems
    students read whole outside hidden collections.
    """
    directory = Path(directory)
    meta_path = directory / META_FILE_NAME
    meta = load_meta(meta_path)
    digest = hashlib.sha256()
    for name in (TEST_FILE_NAME, META_FILE_NAME):
        path = directory / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    test_file = directory / TEST_FILE_NAME
    if test_file.is_file():
        text, data = read_yaml(test_file)
        names = [name for name in collection_names(data) if name is not None]
        hidden = hidden_collections(meta_path, meta.hidden_tests, names)
        return Assignment(directory, parse_test_suite(data, test_file.name, text, hidden), meta,
                          MODE_CODEABILITY, digest.hexdigest(), hidden=hidden)
    search = [directory] + ([Path(reference_dir)] if reference_dir is not None else [])
    for folder in search:
        found = course_paths(folder, PYTEST_PATTERN)
        if found:
            for name in found:
                digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
            return Assignment(directory, None, meta, MODE_PYTEST, digest.hexdigest(), folder,
                              found, hidden_test_files(meta_path, meta.hidden_tests, found))
    return Assignment(directory, None, meta, MODE_COMPARISON, digest.hexdigest())


def course_paths(folder: Path, pattern: str) -> tuple[str, ...]:
    """Return the files at any depth of a folder whose names match pattern, as sorted relative
    paths; VCS, cache and hidden folders are left out."""
    found = []
    for path in folder.rglob(pattern):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part in IGNORED_NAMES or part.startswith(".")
                                      for part in relative.parts):
            found.append(relative.as_posix())
    return tuple(sorted(found))
