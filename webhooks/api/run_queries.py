"""Find test runs by project, course, assignment, commit and status, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.ledger.models import RunStatus, TestRun
from webhooks.api.project_ids import of_project_id


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list; `within` limits them to some projects (None: every project)."""

    project_path: str | None = None
    project_id: int | None = None
    course: str | None = None
    assignment: str | None = None
    commit_prefix: str | None = None
    status: RunStatus | None = None
    within: frozenset[str] | None = None


def find_runs(sessions: sessionmaker[Session], wanted: RunFilter, *, page: int,
              per_page: int) -> tuple[list[TestRun], int]:
    """Return one page of matching runs, newest first, and how many match in all."""
    conditions = _conditions(wanted)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(TestRun).where(*conditions))
        runs = list(session.scalars(
            select(TestRun).where(*conditions)
            .order_by(TestRun.received_at.desc(), TestRun.id)
            .offset((page - 1) * per_page).limit(per_page)))
    return runs, total


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
    if wanted.status is not None:
        conditions.append(TestRun.status == wanted.status)
    if wanted.within is not None:
        conditions.append(TestRun.project_path.in_(sorted(wanted.within)) if wanted.within
                          else false())
    return conditions
