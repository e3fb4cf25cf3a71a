"""Find the grades a gradebook lacks: each known student's assignments with no accepted
submission, and why."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from pipeline.ledger.models import Submission, TestRun
from pipeline.submissions.ledger import COUNTED_AT
from pipeline.submissions.verdict import (ACCEPTED, ERROR, PENDING, refused_as_late,
                                          refused_over_limit)
from webhooks.api.submission_queries import SubmissionFilter, conditions_on

NO_SUBMISSION = "no submission"
REFUSED_LATE = "refused: late"
REFUSED_OVER_LIMIT = "refused: over the limit"
REFUSED_OTHERWISE = "refused"
WAITING = "waiting to be decided"
NOT_PROCESSED = "not processed"


@dataclass(frozen=True)
class MissingGrade:
    """A student's assignment the gradebook has no grade of; `why`: no submission, or what
    became of the student's latest one."""

    course: str
    project_path: str
    assignment: str
    why: str


def has_missing_grades(wanted: SubmissionFilter) -> bool:
    """Tell whether a listing is a gradebook, which has a line for each grade it lacks: final
    submissions, not only those of one outcome or lateness."""
    return wanted.final and wanted.outcome is None and wanted.late is None


def find_missing_grades(sessions: sessionmaker[Session],
                        wanted: SubmissionFilter) -> list[MissingGrade]:
    """Return, by project and assignment, the grades a gradebook of `wanted` lacks.

    Its students are the projects with any run or submission of the course; its assignments
    those any student of the course handed in. A student lacks a grade of an assignment when
    none of their submissions of it is accepted.
    """
    students_only = replace(wanted, assignment=None, outcome=None, late=None, final=False)
    every_student = replace(students_only, project_path=None, project_id=None, within=None)
    with sessions() as session:
        students = session.execute(union(
            select(TestRun.course, TestRun.project_path)
            .where(*conditions_on(TestRun, students_only)),
            select(Submission.course, Submission.project_path)
            .where(*conditions_on(Submission, students_only)))).all()
        assignments = session.execute(
            select(Submission.course, Submission.assignment).distinct()
            .where(*conditions_on(Submission, replace(every_student,
                                                      assignment=wanted.assignment)))).all()
        latest: dict[tuple[str, str, str], Submission] = {}
        graded = set()
        for submission in session.scalars(
                select(Submission).where(*conditions_on(Submission, replace(
                    students_only, assignment=wanted.assignment)))
                .order_by(COUNTED_AT.desc(), Submission.id.desc())):
            key = (submission.course, submission.project_path, submission.assignment)
            latest.setdefault(key, submission)
            if submission.outcome == ACCEPTED:
                graded.add(key)
    missing = [MissingGrade(course, project_path, assignment,
                            _why(latest.get((course, project_path, assignment))))
               for course, project_path in students
               for assignment_course, assignment in assignments
               if assignment_course == course
               and (course, project_path, assignment) not in graded]
    return sorted(missing, key=lambda grade: (grade.project_path, grade.assignment,
                                              grade.course))


def _why(latest: Submission | None) -> str:
    """Say why a student's latest submission of an assignment, none accepted, gives no grade."""
    if latest is None:
        return NO_SUBMISSION
    if latest.outcome == PENDING:
        return WAITING
    if latest.outcome == ERROR:
        return NOT_PROCESSED
    if refused_as_late(latest.outcome, latest.reason):
        return REFUSED_LATE
    if refused_over_limit(latest.outcome, latest.reason):
        return REFUSED_OVER_LIMIT
    return REFUSED_OTHERWISE
