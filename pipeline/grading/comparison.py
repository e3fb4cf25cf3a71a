"""The default comparison as a generated suite: the same output, and the reference's files exist."""

from __future__ import annotations

import glob
from pathlib import Path, PurePosixPath

from pipeline.grading.assignment import CONFTEST_NAME, PYTEST_PATTERN, SPECIFICATION_FILE_NAME, \
    course_paths
from pipeline.grading.errors import CourseError
from pipeline.grading.meta import META_FILE_NAME, MetaSpec
from pipeline.grading.spec import PROPERTY_DEFAULTS, TEST_FILE_NAME, CollectionSpec, SuiteSpec, \
    TestSpec

SUITE_NAME = "Output comparison"
SUITE_DESCRIPTION = "Runs both solutions and compares their output; checks the files exist"
OUTPUT_COLLECTION = "Program output"
OUTPUT_TEST = "stdout"
FILE_COLLECTION = "File {path}"
ENTRY_CANDIDATES = ("main.py", "__main__.py")
SKIPPED_FILES = (TEST_FILE_NAME, META_FILE_NAME, SPECIFICATION_FILE_NAME, CONFTEST_NAME)
# Several programs and none named: running none would pass every student who has the files.
NO_ENTRY_POINT = ("the default comparison cannot tell which program to run: the reference has "
                  "{count} Python files at its top ({names}) and no main.py; name the program "
                  "main.py, list it first in meta.yaml's studentSubmissionFiles, or add test.yaml "
                  "or pytest files")
NAMES_SHOWN = 5


def comparison_suite(reference_dir: Path, meta: MetaSpec) -> SuiteSpec:
    """Build the suite: one stdout collection for the entry point, one exist collection per file."""
    files = reference_files(reference_dir, meta)
    entry = entry_point(reference_dir, meta, files)
    collections = []
    if entry is not None:
        collections.append(_collection("stdout", OUTPUT_COLLECTION, entry=entry,
                                       tests=(_test(OUTPUT_TEST),)))
    for path in files:
        collections.append(_collection("exist", FILE_COLLECTION.format(path=path),
                                       file=glob.escape(path), tests=(_test(path),)))
    return SuiteSpec(type="python", name=SUITE_NAME, description=SUITE_DESCRIPTION,
                     version="1.0", qualification="verifyEqual",
                     success_message=PROPERTY_DEFAULTS["successMessage"],
                     failure_message=PROPERTY_DEFAULTS["failureMessage"],
                     relative_tolerance=PROPERTY_DEFAULTS["relativeTolerance"],
                     absolute_tolerance=PROPERTY_DEFAULTS["absoluteTolerance"],
                     timeout=PROPERTY_DEFAULTS["timeout"], store_graphics_artifacts=None,
                     competency=None, verbosity=None, collections=tuple(collections))


def reference_files(reference_dir: Path, meta: MetaSpec) -> list[str]:
    """Return the reference's files a student must also have, as relative paths."""
    excluded = set(SKIPPED_FILES) | set(meta.test_files) | set(meta.additional_files)
    return [name for name in course_paths(reference_dir, "*")
            if name not in excluded and not PurePosixPath(name).match(PYTEST_PATTERN)
            and not name.endswith(".pyc")]


def entry_point(reference_dir: Path, meta: MetaSpec, files: list[str]) -> str | None:
    """Choose the program to run: the first submitted .py file, main.py, or the only .py file;
    None when the reference has no Python file at its top. Several and none chosen: CourseError."""
    for name in meta.student_submission_files:
        if name.endswith(".py") and (reference_dir / name).is_file():
            return name
    for name in ENTRY_CANDIDATES:
        if (reference_dir / name).is_file():
            return name
    top_level = [name for name in files if "/" not in name and name.endswith(".py")]
    if len(top_level) > 1:
        more = ", ..." if len(top_level) > NAMES_SHOWN else ""
        shown = ", ".join(top_level[:NAMES_SHOWN]) + more
        raise CourseError(NO_ENTRY_POINT.format(count=len(top_level), names=shown))
    return top_level[0] if top_level else None


def _collection(kind: str, name: str, *, tests: tuple[TestSpec, ...], entry: str | None = None,
                file: str | None = None) -> CollectionSpec:
    return CollectionSpec(
        type=kind, name=name, description=None, id=None, entry_point=entry, file=file,
        set_up_code=(), tear_down_code=(), input_answers=(), module_blacklist=(),
        success_dependency=(), set_up_code_dependency=None, timeout=PROPERTY_DEFAULTS["timeout"],
        store_graphics_artifacts=None, competency=None, verbosity=None, success_message=None,
        failure_message=None, tests=tests)


def _test(name: str) -> TestSpec:
    return TestSpec(
        name=name, value=None, eval_string=None, pattern=None, count_requirement=None,
        qualification="verifyEqual", relative_tolerance=PROPERTY_DEFAULTS["relativeTolerance"],
        absolute_tolerance=PROPERTY_DEFAULTS["absoluteTolerance"],
        allowed_occurance_range=PROPERTY_DEFAULTS["allowedOccuranceRange"],
        occurance_type=PROPERTY_DEFAULTS["occuranceType"], type_check=True, shape_check=True,
        verbosity=None, success_message=None, failure_message=None)
