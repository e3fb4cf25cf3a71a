"""Find test runs by project, course, assignment, commit and status, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.ledger.models import RunStatus, TestRun
from webhooks.api.project_ids import of_project_id


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list; `statuses` and `within` limit them to some statuses and projects
    (None: any)."""

    project_path: str | None = None
    project_id: int | None = None
    course: str | None = None
    assignment: str | None = None
    commit_prefix: str | None = None
    statuses: tuple[RunStatus, ...] | None = None
    within: frozenset[str] | None = None


def find_runs(sessions: sessionmaker[Session], wanted: RunFilter, *, page: int,
              per_page: int) -> tuple[list[TestRun], int]:
    """Return one page of matching runs, newest first, and how many match in all."""
    conditions = _conditions(wanted)
    with sessions() as session:
        total = _count(session, conditions)
        runs = list(session.scalars(
            select(TestRun).where(*conditions)
            .order_by(TestRun.received_at.desc(), TestRun.id)
            .offset((page - 1) * per_page).limit(per_page)))
    return runs, total


def count_runs(sessions: sessionmaker[Session], wanted: RunFilter) -> int:
    """Return how many runs match."""
    with sessions() as session:
        return _count(session, _conditions(wanted))


def _count(session: Session, conditions: list) -> int:
    return session.scalar(select(func.count()).select_from(TestRun).where(*conditions))


def _conditions(wanted: RunFilter) -> list:
    conditions = []
    if wanted.project_path is not None:
        conditions.append(TestRun.project_path == wanted.project_path)
    if wanted.project_id is not None:
        conditions.append(of_project_id(TestRun.project_id, TestRun.project_path,
                                        wanted.project_id))
    if wanted.course is not None:
        conditions.append(TestRun.course == wanted.course)
    if wanted.assignment is not None:
        conditions.append(TestRun.assignment == wanted.assignment)
    if wanted.commit_prefix is not None:
        conditions.append(TestRun.commit_sha.startswith(wanted.commit_prefix.lower()))
    if wanted.statuses is not None:
        conditions.append(TestRun.status.in_(wanted.statuses))
    if wanted.within is not None:
        conditions.append(TestRun.project_path.in_(sorted(wanted.within)) if wanted.within
                          else false())
    return conditions
