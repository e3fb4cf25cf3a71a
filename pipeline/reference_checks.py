"""Problems the reconciler met with each course's reference, kept for the health answer."""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import CourseSettings
from pipeline.ledger.db import conflict_insert, single_statements
from pipeline.ledger.models import ReferenceCheck, utcnow

UNFETCHABLE = "its reference {project} (branch {branch}) cannot be fetched: {error}"
NO_ASSIGNMENT = ("it has no assignment: its reference {project} (branch {branch}, commit "
                 "{sha}) holds no test.yaml, and config.toml lists none")
LISTED_UNGRADABLE = ("its reference {project} (branch {branch}, commit {sha}) holds {lacks}, which "
                     "config.toml lists: their runs end as course errors")
NO_FILES_IN = "no files in {directories}"
NOTHING_TO_GRADE_IN = ("nothing to grade in {directories} (no test.yaml, no test_*.py and no file "
                       "to compare the student's with)")
COURSE_ERRORS = ("its reference {project} (branch {branch}, commit {sha}) holds assignments whose "
                 "runs all end as course errors: {errors}")
COURSE_ERROR_IN = "in {directory}, {error}"
PROBLEM = "course {course}: {problem} (seen {seen} UTC)"
# git's error is cut short already (pipeline.repos); this bounds whatever else a problem holds.
MAX_PROBLEM_CHARACTERS = 1000
# A longer problem loses its middle: its start says whose reference it is and its first place
# (file and line), its end the last.
MIDDLE_CUT = " [... cut here: {total} characters in all ...] "


def record_check(sessions: sessionmaker[Session], course: CourseSettings,
                 problem: str | None) -> None:
    """Keep what checking a course's reference met now: a problem, or None when all was well."""
    values = {"course": course.name, "reference_project": course.reference_project,
              "reference_branch": course.reference_branch, "checked_at": utcnow(),
              "problem": _cut_in_the_middle(problem, MAX_PROBLEM_CHARACTERS) if problem else None}
    with single_statements(sessions) as session:
        insert = conflict_insert(session.connection(), ReferenceCheck.__table__)
        # Two sweeps at once (the beat's and a starting worker's) both write: the later wins.
        session.execute(insert.values(values).on_conflict_do_update(
            index_elements=["course"],
            set_={name: insert.excluded[name] for name in values if name != "course"}))


def _cut_in_the_middle(text: str, limit: int) -> str:
    """Return text cut to at most limit characters by taking out its middle, saying where."""
    if len(text) <= limit:
        return text
    note = MIDDLE_CUT.format(total=len(text))
    kept = limit - len(note)
    return text[:kept - kept // 2] + note + text[len(text) - kept // 2:]


def reference_problems(session: Session, courses: Sequence[CourseSettings]) -> list[str]:
    """Return one line per configured course whose reference had a problem at its last check."""
    checks = {check.course: check for check in session.scalars(
        select(ReferenceCheck).where(ReferenceCheck.problem.is_not(None)))}
    lines = []
    for course in courses:
        check = checks.get(course.name)
        if check is None or (check.reference_project, check.reference_branch) != \
                (course.reference_project, course.reference_branch):
            continue
        lines.append(PROBLEM.format(course=course.name, problem=check.problem,
                                    seen=check.checked_at.strftime("%Y-%m-%d %H:%M:%S")))
    return lines
