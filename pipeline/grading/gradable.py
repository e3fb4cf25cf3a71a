"""What every run of an assignment folder meets before a student's files matter, known before any
run: a course error loading it, or nothing to grade."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.grading.assignment import MODE_COMPARISON, load_assignment
from pipeline.grading.comparison import comparison_suite
from pipeline.grading.course_problems import course_error_text
from pipeline.grading.errors import CourseError
from pipeline.grading.grader import GRADING_PREFIX
from pipeline.grading.staging import stage_assignment
from pipeline.sandbox.scratch import ScratchFolder

NO_STUDENT = "no-student"


@dataclass(frozen=True)
class Gradability:
    """course_error: the course error loading the folder ends every run in, as staff read it (an
    invalid test.yaml or meta.yaml); grades_nothing: it loads but gives nothing to grade."""

    course_error: str | None = None
    grades_nothing: bool = False


def gradability(assignment_dir: Path, dependency_root: Path | None = None) -> Gradability:
    """Load an assignment folder, its own reference, as a run loads it, and tell whether every
    run of it ends as a course error: loading it fails, or it is a default comparison with
    nothing to compare (no test.yaml, no test_*.py and no file the student's could be compared
    with: meta.yaml alone, say).

    A comparison's reference is staged as a run stages it, test dependencies included; a folder
    that fails only then is left to each run's report to name.
    """
    try:
        assignment = load_assignment(assignment_dir, assignment_dir)
    except CourseError as exc:
        return Gradability(course_error=course_error_text(exc.course_problems).full)
    if assignment.mode != MODE_COMPARISON:
        return Gradability()
    try:
        with ScratchFolder(GRADING_PREFIX) as work:
            staged = stage_assignment(work, work / NO_STUDENT, assignment_dir, assignment_dir,
                                      assignment.meta, dependency_root)
            suite = comparison_suite(staged.reference_base, assignment.meta)
            return Gradability(grades_nothing=not suite.collections)
    except CourseError:
        return Gradability()
