"""Find the grades a gradebook lacks: each known student's assignments with no accepted
submission, and why."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import and_, case, func, or_, select, union
from sqlalchemy.orm import Session, sessionmaker

from pipeline.ledger.models import Submission, TestRun
from pipeline.submissions.ledger import COUNTED_AT
from pipeline.submissions.verdict import (ACCEPTED, ERROR, PENDING, refused_as_late,
                                          refused_over_limit)
from webhooks.api.course_rosters import Roster
from webhooks.api.submission_queries import SubmissionFilter, conditions_on

NO_SUBMISSION = "no submission"
REFUSED_LATE = "refused: late"
REFUSED_OVER_LIMIT = "refused: over the limit"
REFUSED_OTHERWISE = "refused"
WAITING = "waiting to be decided"
NOT_PROCESSED = "not processed"
NO_PUSH_RECEIVED = "no push received"


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


def find_missing_grades(sessions: sessionmaker[Session], wanted: SubmissionFilter,
                        roster: Roster) -> list[MissingGrade]:
    """Return, by project and assignment, the grades a gradebook of `wanted` lacks.

    Its students are the projects with any run or submission of the course, and those of the
    course's `roster` the ledger knows nothing of; its assignments those any student of the
    course handed in. A student lacks a grade of an assignment when none of their submissions
    of it is accepted. One query: each known student's latest submission of each assignment,
    and whether any of them is accepted, come from the database.
    """
    students_only = replace(wanted, assignment=None, outcome=None, late=None, final=False)
    students = union(
        select(TestRun.course, TestRun.project_path)
        .where(*conditions_on(TestRun, students_only)),
        select(Submission.course, Submission.project_path)
        .where(*conditions_on(Submission, students_only))).subquery()
    assignments = _handed_in(wanted).subquery()
    latest = _latest_submissions(replace(students_only, assignment=wanted.assignment))
    with sessions() as session:
        rows = session.execute(
            select(students.c.course, students.c.project_path, assignments.c.assignment,
                   latest.c.outcome, latest.c.reason)
            .join(assignments, assignments.c.course == students.c.course)
            .outerjoin(latest, and_(latest.c.course == students.c.course,
                                    latest.c.project_path == students.c.project_path,
                                    latest.c.assignment == assignments.c.assignment,
                                    latest.c.rank == 1))
            .where(or_(latest.c.graded.is_(None), latest.c.graded == 0))).all()
    missing = [MissingGrade(course, project_path, assignment, _why(outcome, reason))
               for course, project_path, assignment, outcome, reason in rows]
    missing += _never_heard_of(sessions, wanted, roster)
    # Sorted here, not by the database, whose collation may order names otherwise.
    return sorted(missing, key=lambda grade: (grade.project_path, grade.assignment,
                                              grade.course))


def _handed_in(wanted: SubmissionFilter):
    """Return a query of the assignments (course, directory) any student of `wanted`'s courses
    handed in, `wanted`'s assignment only when it names one."""
    every_student = replace(wanted, project_path=None, project_id=None, within=None,
                            outcome=None, late=None, final=False)
    return select(Submission.course, Submission.assignment).distinct().where(
        *conditions_on(Submission, every_student))


def _never_heard_of(sessions: sessionmaker[Session], wanted: SubmissionFilter,
                    roster: Roster) -> list[MissingGrade]:
    """Return a line for each assignment handed in of each project of `roster` that `wanted`
    takes and the ledger has no run or submission of (in the course that lists it), by its
    path or, GitLab's listing giving it, its id: a project renamed or moved since is known."""
    listed = {(course, path): project_id for course, projects in roster.projects.items()
              for path, project_id in projects.items()
              if _takes(wanted, course, path, project_id)}
    if not listed:
        return []
    courses = sorted({course for course, _ in listed})
    paths = sorted({path for _, path in listed})
    ids = sorted({project_id for project_id in listed.values() if project_id is not None})
    with sessions() as session:
        known_paths = _in_ledger(session, courses, "project_path", paths)
        known_ids = _in_ledger(session, courses, "project_id", ids)
        handed_in = session.execute(
            _handed_in(wanted).where(Submission.course.in_(courses))).all()
    return [MissingGrade(course, path, assignment, NO_PUSH_RECEIVED)
            for (course, path), project_id in listed.items()
            if (course, path) not in known_paths and (course, project_id) not in known_ids
            for assignment_course, assignment in handed_in if assignment_course == course]


def _in_ledger(session: Session, courses: list[str], column: str,
               values: list) -> set[tuple[str, object]]:
    """Return the (course, value of a column) of the runs and submissions of some courses whose
    column holds one of some values."""
    if not values:
        return set()
    return set(session.execute(union(*(
        select(model.course, getattr(model, column))
        .where(model.course.in_(courses), getattr(model, column).in_(values))
        for model in (TestRun, Submission)))).all())


def _takes(wanted: SubmissionFilter, course: str, project_path: str,
           project_id: int | None) -> bool:
    """Tell whether a gradebook of `wanted` takes a student project of a course."""
    return ((wanted.course is None or wanted.course == course)
            and (wanted.project_path is None or wanted.project_path == project_path)
            and (wanted.project_id is None or wanted.project_id == project_id)
            and (wanted.within is None or project_path in wanted.within))


def _latest_submissions(wanted: SubmissionFilter):
    """Return the submissions of `wanted` with, by student and assignment, their rank from the
    latest (1) and whether any of them is accepted (graded: 1, else 0)."""
    student_assignment = (Submission.course, Submission.project_path, Submission.assignment)
    accepted = case((Submission.outcome == ACCEPTED, 1), else_=0)
    return select(
        *student_assignment, Submission.outcome, Submission.reason,
        func.row_number().over(partition_by=student_assignment,
                               order_by=(COUNTED_AT.desc(), Submission.id.desc())).label("rank"),
        func.max(accepted).over(partition_by=student_assignment).label("graded"),
    ).where(*conditions_on(Submission, wanted)).subquery()


def _why(outcome: str | None, reason: str | None) -> str:
    """Say why a student's latest submission of an assignment (its outcome and reason; None:
    there is none), none accepted, gives no grade."""
    if outcome is None:
        return NO_SUBMISSION
    if outcome == PENDING:
        return WAITING
    if outcome == ERROR:
        return NOT_PROCESSED
    if refused_as_late(outcome, reason):
        return REFUSED_LATE
    if refused_over_limit(outcome, reason):
        return REFUSED_OVER_LIMIT
    return REFUSED_OTHERWISE
