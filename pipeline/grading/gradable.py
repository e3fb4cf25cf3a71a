"""What every run of an assignment folder meets before a student's files matter, known before any
run: a course error loading or staging it (or collecting its pytest files with the reference
solution), or nothing to grade."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import SandboxSettings
from pipeline.grading.assignment import MODE_COMPARISON, MODE_PYTEST, load_assignment
from pipeline.grading.course_problems import CourseProblem, course_error_text
from pipeline.grading.engine import file_missing_in_reference
from pipeline.grading.errors import CourseError
from pipeline.grading.grader import GRADING_PREFIX, NO_COLLECTIONS, course_limits, graded_suite
from pipeline.grading.pytest_mode import PytestGrader
from pipeline.grading.staging import stage_assignment
from pipeline.sandbox import SandboxLimits
from pipeline.sandbox.scratch import ScratchFolder

NO_STUDENT = "no-student"


@dataclass(frozen=True)
class Gradability:
    """course_error: the course error every run of the folder ends in, as staff read it (an
    invalid test.yaml or meta.yaml, a course file missing, a dependency no run can meet);
    grades_nothing: it loads but gives nothing to grade."""

    course_error: str | None = None
    grades_nothing: bool = False


def gradability(assignment_dir: Path, dependency_root: Path | None = None,
                sandbox: SandboxSettings | None = None) -> Gradability:
    """Load and stage an assignment folder, its own reference, as a run does, and tell whether
    every run of it ends as a course error, in the words the run's report would use.

    What is known before any code runs is checked: test.yaml and meta.yaml, the course files
    meta.yaml lists (test dependencies included), the default comparison's program and hidden
    collections, test.yaml's dependencies and names, and the files its collections check in
    the reference; or that it is a default comparison with nothing to compare (no test.yaml,
    no test_*.py and no file the student's could be compared with: meta.yaml alone, say).
    With a sandbox's settings, pytest files are collected with the reference solution in it too:
    more tests than a run reports is a course error.
    """
    try:
        assignment = load_assignment(assignment_dir, assignment_dir)
        with ScratchFolder(GRADING_PREFIX) as work:
            staged = stage_assignment(work, work / NO_STUDENT, assignment_dir, assignment_dir,
                                      assignment.meta, dependency_root,
                                      assignment.mode == MODE_PYTEST)
            if assignment.mode == MODE_PYTEST:
                if sandbox is not None:
                    PytestGrader(assignment, staged, course_limits(
                        SandboxLimits.from_settings(sandbox), assignment.meta),
                        sandbox.test_timeout_seconds, sandbox.python or None, sandbox.user,
                        work).check_reference_collections()
                return Gradability()
            suite, hidden = graded_suite(staged, assignment)
            lacking = [file_missing_in_reference(collection, staged.reference_base, hidden)
                       for collection in suite.collections]
    except CourseError as exc:
        return Gradability(course_error=course_error_text(exc.course_problems).full)
    if not suite.collections and assignment.mode == MODE_COMPARISON:
        return Gradability(grades_nothing=True)
    problems = [*suite.course_problems, *(problem for problem in lacking if problem is not None)]
    if not suite.collections:
        problems.append(CourseProblem.open(NO_COLLECTIONS[assignment.mode]))
    return Gradability(course_error=course_error_text(problems).full if problems else None)
