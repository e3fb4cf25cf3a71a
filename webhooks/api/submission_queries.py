"""Find submissions, with their commits' latest grades, by course, assignment, project, outcome."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.context import Resources
from pipeline.feedback import result_url
from pipeline.ledger.models import Submission, TestRun
from pipeline.submissions.ledger import COUNTED_AT, SHOWN_RUN_ID, last_accepted
from webhooks.api.project_ids import of_project_id

# What a submission shows of its test run.
FROM_THE_RUN = ("score", "tests_passed", "tests_total", "result_url")


@dataclass(frozen=True)
class SubmissionFilter:
    """Which submissions to list; `final`: each student's last accepted one of an assignment
    (the one a gradebook takes); `within` limits them to some projects (None: every project)."""

    course: str | None = None
    assignment: str | None = None
    project_path: str | None = None
    project_id: int | None = None
    outcome: str | None = None
    late: bool | None = None
    final: bool = False
    within: frozenset[str] | None = None


def find_submissions(sessions: sessionmaker[Session], wanted: SubmissionFilter, *, page: int = 1,
                     per_page: int | None = None
                     ) -> tuple[list[tuple[Submission, TestRun | None]], int]:
    """Return one page of matching submissions with the runs that last graded their commits
    (every one without per_page), and how many match in all.

    All submissions come newest first (by when gradehook first received the commit); final ones
    by project and assignment, as a gradebook lists students.
    """
    if wanted.final:
        # Lateness is the final submission's: an earlier one on time is not final.
        chosen = last_accepted(select(Submission.id).where(*conditions_on(
            Submission, replace(wanted, late=None))), late=wanted.late)
    else:
        chosen = select(Submission.id).where(*conditions_on(Submission, wanted))
    chosen = chosen.subquery()
    order = (Submission.project_path, Submission.assignment) if wanted.final \
        else (COUNTED_AT.desc(), Submission.id)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(chosen))
        rows = session.execute(
            select(Submission, TestRun)
            .join(chosen, chosen.c.id == Submission.id)
            .outerjoin(TestRun, TestRun.id == SHOWN_RUN_ID)
            .order_by(*order).offset((page - 1) * (per_page or 0)).limit(per_page)).all()
    return [(submission, run) for submission, run in rows], total


def conditions_on(rows, wanted: SubmissionFilter) -> list:
    """Return the conditions of a filter on a table of submissions or runs (`rows`: its model,
    whose columns name a project and an assignment of a course; runs have no outcome, nor
    lateness, to filter on)."""
    conditions = []
    for name in ("course", "assignment", "project_path", "outcome", "late"):
        value = getattr(wanted, name)
        if value is not None:
            conditions.append(getattr(rows, name) == value)
    if wanted.project_id is not None:
        conditions.append(of_project_id(rows.project_id, rows.project_path, wanted.project_id))
    if wanted.within is not None:
        conditions.append(rows.project_path.in_(sorted(wanted.within)) if wanted.within
                          else false())
    return conditions


def run_fields(resources: Resources, run: TestRun | None) -> dict:
    """Return what a submission shows of its test run: score, tests passed and in all, and the
    result page (each None before the submission has a run)."""
    if run is None:
        return dict.fromkeys(FROM_THE_RUN)
    return {"score": run.score, "tests_passed": run.tests_passed, "tests_total": run.tests_total,
            "result_url": result_url(resources, run.id)}
