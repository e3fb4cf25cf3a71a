"""The runs waiting for a worker and those being graded, and how long the oldest has waited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.ledger.models import RunStatus, TestRun


@dataclass(frozen=True)
class Backlog:
    """How many runs are queued and running, and when the oldest queued one was queued."""

    queued: int
    running: int
    oldest_queued_at: dt.datetime | None

    def oldest_wait_seconds(self, now: dt.datetime) -> int | None:
        """Return the whole seconds the oldest queued run has waited; None when none waits."""
        if self.oldest_queued_at is None:
            return None
        return max(0, int((now - self.oldest_queued_at).total_seconds()))

    def as_dict(self, now: dt.datetime) -> dict:
        """Return the backlog as the API shows it (health, the workers' status)."""
        return {"queued": self.queued, "running": self.running,
                "oldest_queued_seconds": self.oldest_wait_seconds(now)}


def measure_backlog(session: Session) -> Backlog:
    """Count the queued and running runs in one query, which reads the unfinished runs alone
    through the index on status (ix_test_runs_status), however many runs have ended."""
    rows = session.execute(
        select(TestRun.status, func.count(), func.min(TestRun.queued_at))
        .where(TestRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))
        .group_by(TestRun.status)).all()
    counts = {status: (count, oldest) for status, count, oldest in rows}
    queued, oldest = counts.get(RunStatus.QUEUED, (0, None))
    running, _ = counts.get(RunStatus.RUNNING, (0, None))
    return Backlog(queued=queued, running=running, oldest_queued_at=oldest)


def backlog_if_readable(engine: Engine) -> Backlog | None:
    """Measure the backlog; None when the database cannot be read (it went away, say)."""
    try:
        with Session(engine) as session:
            return measure_backlog(session)
    except SQLAlchemyError:
        return None
