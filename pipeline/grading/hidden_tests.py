"""meta.yaml hiddenTests: the collections each entry hides, and the entries that hide none."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path, PurePosixPath

import yaml

from pipeline.grading.errors import FieldProblem, SpecError
from pipeline.grading.fields import describe, join_path, path_text
from pipeline.grading.meta import HIDDEN_TESTS
from pipeline.grading.places import with_lines
from pipeline.grading.spec import read_yaml
from pipeline.likely_names import did_you_mean

# An entry that hides nothing shows students the collection staff meant to hide (a typo:
# `secret_tets`), with its test names and expected values: refused as the course's mistake.
NO_COLLECTION = "{suite} has no collection named {entry}, so this entry hides nothing"
# The suites whose collections an entry names: test.yaml's, or the default comparison's.
TEST_YAML_SUITE = "test.yaml"
COMPARISON_SUITE = "the output comparison"
NO_TEST_FILE = ("no test file (test_*.py) is named {entry} or lies in a folder of that name, "
                "so this entry hides nothing")
# pytest mode hides a test file whole (one collection); an entry may name a single test of it.
ONE_TEST = ("hiddenTests hides whole test files, not single tests: name the test file {file}, or "
            "move the tests to hide into a test file of their own")
# A name written as a number (`01`, `1.50`) is that number to YAML without quotes: the entry then
# names 1 or 1.5, and the collection or folder it is alike as a number is the one it means.
AS_A_NUMBER = "; did you mean {name}? YAML reads {name} without quotes as the number {entry}: " \
    "write '{name}'"


def hidden_collections(meta_path: Path, entries: Sequence[str], names: Collection[str],
                       suite: str = TEST_YAML_SUITE) -> frozenset[str]:
    """Return the collections of a suite (by their names) the entries hide, or raise SpecError
    at the line of each entry that names none of them."""
    unknown = [(index, NO_COLLECTION.format(suite=suite, entry=describe(entry))
                + _likely_meant(entry, names))
               for index, entry in enumerate(entries) if entry not in names]
    _refuse(meta_path, unknown)
    return frozenset(entries)


def hidden_test_files(meta_path: Path, entries: Sequence[str], files: Collection[str]) -> \
        frozenset[str]:
    """Return the pytest files the entries hide (an entry naming a folder hides every test file
    in it, at any depth), or raise SpecError at the line of each entry that hides none."""
    hidden: set[str] = set()
    unknown = []
    for index, entry in enumerate(entries):
        hides = {file for file in files if _holds(entry, file)}
        if not hides:
            unknown.append((index, _no_test_file(entry, files)))
        hidden |= hides
    _refuse(meta_path, unknown)
    return frozenset(hidden)


def _holds(entry: str, file: str) -> bool:
    """Tell whether an entry names a test file, or a folder it lies in."""
    named, path = PurePosixPath(entry), PurePosixPath(file)
    return named == path or named in path.parents


def _no_test_file(entry: str, files: Collection[str]) -> str:
    """Word why an entry hides no test file, with the test file or folder it likely meant."""
    file, _, test = entry.partition("::")
    if test and file in files:
        return ONE_TEST.format(file=file)
    folders = {str(parent) for name in files for parent in PurePosixPath(name).parents} - {"."}
    return NO_TEST_FILE.format(entry=describe(entry)) + _likely_meant(entry, [*files, *folders])


def _likely_meant(entry: str, names: Collection[str]) -> str:
    """Word the name an entry likely means: one YAML reads as the entry's number when written
    without quotes, else one it misspells."""
    alike = next((name for name in sorted(names) if _unquoted(name) == entry), None)
    return AS_A_NUMBER.format(name=alike, entry=entry) if alike is not None \
        else did_you_mean(entry, names)


def _unquoted(name: str) -> str | None:
    """Return the text a name becomes in meta.yaml written without quotes where YAML reads it as
    a number (`01` becomes 1), else None."""
    try:
        value = yaml.safe_load(name)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _refuse(meta_path: Path, unknown: Sequence[tuple[int, str]]) -> None:
    """Raise the SpecError of the entries (by index) that hide nothing, if any: students read
    only their places, as the problem names what staff meant to hide."""
    if not unknown:
        return
    steps = [join_path(HIDDEN_TESTS, index) for index, _ in unknown]
    problems = [FieldProblem(path_text(step), problem, step, hidden=True)
                for step, (_, problem) in zip(steps, unknown)]
    text, _ = read_yaml(meta_path)
    raise SpecError(meta_path.name, with_lines(problems, text))
