"""Queries and state transitions of test runs: claim, advance through stages, finish."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.orm import Session

from pipeline.ledger.locks import write_first
from pipeline.ledger.models import FINAL_STATUSES, UNGRADED_STATUSES, RunStatus, TestRun, \
    utcnow

# Stage name -> (progress percentage, phase timestamp column set on entering it).
STAGES: dict[str, tuple[int, str | None]] = {
    "queued": (0, None),
    "init": (10, "started_at"),
    "clone": (20, None),
    "environment": (40, "cloned_at"),
    "tests": (50, None),
    "results": (80, "tested_at"),
    "done": (100, "finished_at"),
}


def claim_run(session: Session, run_id: str, task_id: str,
              new_attempt: bool = True) -> TestRun | None:
    """Move a run to running for this task, as a `new_attempt` or as the attempt it is in; None
    when it is not this task's to run.

    Each hand-off to the broker gets a fresh task id recorded on the run, so a stale message
    (one the reconciler has replaced) is a no-op. A run already running under the same task id is
    claimed again: that is a redelivery after a lost worker, or a retry, and must not stay stuck.
    """
    return session.scalars(
        update(TestRun)
        .where(TestRun.id == run_id, TestRun.celery_task_id == task_id,
               TestRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))
        .values(status=RunStatus.RUNNING, status_reason=None,
                attempts=TestRun.attempts + int(new_attempt), stage="init",
                progress=STAGES["init"][0], started_at=utcnow())
        .returning(TestRun)
        .execution_options(synchronize_session=False, populate_existing=True)).one_or_none()


def ended_under(session: Session, run_id: str, task_id: str) -> bool:
    """Tell whether a run ended under this task id (its own task, retried or handed out again
    after the end was recorded) and GitLab still lacks an update of it."""
    return session.scalar(
        select(TestRun.id).where(TestRun.id == run_id, TestRun.celery_task_id == task_id,
                                 TestRun.status.in_(FINAL_STATUSES),
                                 _gitlab_lacks_update())) is not None


def advance(session: Session, run_id: str, stage: str, progress: int | None = None, *,
            passing: tuple[str, ...] = (), **values: Any) -> None:
    """Record that a running run entered a stage, with its progress, phase timestamp and values.

    `passing` names stages the run went through on the way with no work of their own: their
    phase timestamps are set too, so the ledger shows them reached without a write of their own.
    """
    percent, _ = STAGES[stage]
    values.update(stage=stage, progress=percent if progress is None else progress)
    now = utcnow()
    for name in (*passing, stage):
        phase = STAGES[name][1]
        if phase and name != "init":
            values[phase] = now
    session.execute(update(TestRun).where(TestRun.id == run_id,
                                          TestRun.status == RunStatus.RUNNING).values(**values))


def mark_fetched(session: Session, run_id: str) -> None:
    """Record that a running run has fetched the student's commit (and diffed it, if it diffs)."""
    session.execute(update(TestRun).where(TestRun.id == run_id,
                                          TestRun.status == RunStatus.RUNNING)
                    .values(cloned_at=utcnow()))


def note_retry(session: Session, run_id: str, reason: str) -> None:
    """Give a running run the reason it waits for another attempt (its claim clears it), and
    as `sent_at` the moment that attempt's message is sent."""
    session.execute(update(TestRun).where(TestRun.id == run_id,
                                          TestRun.status == RunStatus.RUNNING)
                    .values(status_reason=reason, sent_at=utcnow()))


def waiting_for_retry(session: Session, sent_before: dt.datetime) -> list[TestRun]:
    """Return running runs waiting for another attempt whose message was sent before a moment
    (no task has claimed them since)."""
    return list(session.scalars(select(TestRun).where(
        TestRun.status == RunStatus.RUNNING, TestRun.status_reason.is_not(None),
        TestRun.sent_at < sent_before).order_by(TestRun.id)))


def finish(session: Session, run_id: str, status: RunStatus, reason: str | None = None,
           **values: Any) -> bool:
    """End a running run in a final status; False when it had already ended."""
    if not status.final:
        raise ValueError(f"{status} is not a final status")
    result = session.execute(
        update(TestRun)
        .where(TestRun.id == run_id, TestRun.status.in_((RunStatus.RUNNING, RunStatus.QUEUED)))
        .values(status=status, status_reason=reason, stage="done", progress=100,
                finished_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def running_attempt(session: Session, run_id: str, attempt: int, *conditions
                    ) -> TestRun | None:
    """Return a run, locked, if it is still running in the given attempt (no later one) and
    meets the further conditions."""
    return session.scalars(
        select(TestRun)
        .where(TestRun.id == run_id, TestRun.status == RunStatus.RUNNING,
               TestRun.attempts == attempt, *conditions)
        .with_for_update()).one_or_none()


def still_waiting_for_retry(session: Session, run_id: str, attempt: int) -> TestRun | None:
    """Return a run, locked, if it still waits for the attempt after `attempt`: no task has
    claimed it since. The embedded SQLite ledger has no row locks: the transaction becomes its
    writer first."""
    write_first(session)
    return running_attempt(session, run_id, attempt, TestRun.status_reason.is_not(None))


def requeue(session: Session, run_id: str, task_id: str, reason: str) -> None:
    """Queue a running run again under a new task id, unsent: its old message is a no-op."""
    session.execute(
        update(TestRun)
        .where(TestRun.id == run_id, TestRun.status == RunStatus.RUNNING)
        .values(status=RunStatus.QUEUED, status_reason=reason, stage="queued",
                progress=STAGES["queued"][0], celery_task_id=task_id, sent_at=None)
        .execution_options(synchronize_session=False))


def unreported_runs(session: Session, finished_between: tuple[dt.datetime, dt.datetime],
                    now: dt.datetime, limit: int = 200) -> list[tuple[str, int]]:
    """Return ended runs GitLab lacks an update of that are due to be asked for again, with
    how often they were: reporting gave up, or its worker was lost.

    That is a graded run whose final commit status or merge request comments were not
    written, and a withdrawn run GitLab still shows as pending or running. Runs never asked for
    come first, then the longest due: runs GitLab keeps failing never keep newer ones out. A run
    GitLab refused for good is left out.
    """
    return [(run_id, requests) for run_id, requests in session.execute(
        select(TestRun.id, TestRun.report_requests)
        .where(TestRun.finished_at.between(*finished_between), _gitlab_lacks_update(),
               TestRun.report_refused.is_(None),
               or_(TestRun.report_due_at.is_(None), TestRun.report_due_at <= now))
        .order_by(TestRun.report_due_at.asc().nulls_first(), TestRun.finished_at)
        .limit(limit))]


def schedule_rereports(session: Session, due: list[tuple[str, int, dt.datetime]]) -> None:
    """Record, for each (run id, requests, moment), how often the run's GitLab update has been
    asked for again, and when it may be next."""
    session.execute(update(TestRun), [
        {"id": run_id, "report_requests": requests, "report_due_at": due_at}
        for run_id, requests, due_at in due])


def refuse_report(session: Session, run_id: str, reason: str) -> None:
    """Record why GitLab refused a run's update for good: nobody asks for it again, unless
    GitLab takes an update of its project later."""
    session.execute(update(TestRun).where(TestRun.id == run_id)
                    .values(report_refused=reason)
                    .execution_options(synchronize_session=False))


def _gitlab_lacks_update():
    """The condition of an ended run GitLab lacks an update of: a graded run whose final commit
    status or merge request comments were not written, a withdrawn run still shown as pending
    or running."""
    graded = (RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR)
    shown = ("pending", "running")
    return or_(TestRun.status.in_(graded) & (TestRun.reported_status.is_(None)
                                             | TestRun.reported_status.in_(shown)
                                             | TestRun.commented_at.is_(None)),
               TestRun.status.in_(UNGRADED_STATUSES) & TestRun.reported_status.in_(shown))


def stalled_runs(session: Session, older_than: dt.datetime) -> list[TestRun]:
    """Return runs still running that started before a moment, locked: their worker is gone.

    Locked, so that a run another process claims or queues again meanwhile is either ended
    before that process sees it, or seen as it left it (started now, or queued), not ended.
    Locked in id order, as the intake locks the runs it may reuse, so neither deadlocks. The
    embedded SQLite ledger has no row locks: the transaction becomes its writer first.
    """
    write_first(session)
    return list(session.scalars(select(TestRun).where(TestRun.status == RunStatus.RUNNING,
                                                      TestRun.started_at < older_than)
                                .order_by(TestRun.id).with_for_update()))


def unsent_runs(session: Session, limit: int = 500) -> list[TestRun]:
    """Return queued runs whose hand-off to the broker failed (no sent_at), oldest first."""
    return list(session.scalars(
        select(TestRun)
        .where(TestRun.status == RunStatus.QUEUED, TestRun.sent_at.is_(None))
        .order_by(TestRun.queued_at, TestRun.id).limit(limit)))


def long_queued_runs(session: Session, sent_before: dt.datetime,
                     after: tuple[dt.datetime, str] | None = None,
                     limit: int = 500) -> list[TestRun]:
    """Return queued runs sent before a moment, oldest first, from after (queued_at, id)."""
    query = (select(TestRun)
             .where(TestRun.status == RunStatus.QUEUED, TestRun.sent_at < sent_before)
             .order_by(TestRun.queued_at, TestRun.id).limit(limit))
    if after is not None:
        query = query.where(tuple_(TestRun.queued_at, TestRun.id) > tuple_(*after))
    return list(session.scalars(query))
