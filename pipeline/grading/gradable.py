"""Whether an assignment folder gives the grading engine anything to grade, known before any run."""

from __future__ import annotations

from pathlib import Path

from pipeline.grading.assignment import MODE_COMPARISON, load_assignment
from pipeline.grading.comparison import comparison_suite
from pipeline.grading.grader import GRADING_PREFIX
from pipeline.grading.staging import stage_assignment
from pipeline.sandbox.scratch import ScratchFolder

NO_STUDENT = "no-student"


def grades_nothing(assignment_dir: Path, dependency_root: Path | None = None) -> bool:
    """Tell whether every run of an assignment folder, its own reference, ends as the course
    error of a default comparison with nothing to compare: no test.yaml, no test_*.py and no
    file the student's could be compared with (meta.yaml alone, say).

    The reference is staged as a run stages it, test dependencies included. Raises CourseError
    for a folder broken in another way (an invalid test.yaml or meta.yaml, say).
    """
    assignment = load_assignment(assignment_dir, assignment_dir)
    if assignment.mode != MODE_COMPARISON:
        return False
    with ScratchFolder(GRADING_PREFIX) as work:
        staged = stage_assignment(work, work / NO_STUDENT, assignment_dir, assignment_dir,
                                  assignment.meta, dependency_root)
        return not comparison_suite(staged.reference_base, assignment.meta).collections
