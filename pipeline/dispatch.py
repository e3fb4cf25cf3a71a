"""Hand runs to the broker after their rows are committed; a broker outage leaves them queued."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Sequence

from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.broker_marker import mark_waiting
from pipeline.celery_app import REPORT, STUDENT_TESTING, SUBMISSION_PROCESSING
from pipeline.ledger.db import transaction
from pipeline.ledger.locks import write_first
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.publisher import Publisher, TaskMessage
from pipeline.submissions.notices import mark_sent

log = logging.getLogger(__name__)

# Retries of one publish before the run is left to the reconciler: keep the webhook answer fast.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                        "interval_max": 0.2}
# Messages of one kind (runs, submissions, merge requests' notices) that one reconciler sweep
# sends again at the most; the next sweep sends more.
RESENDS_PER_SWEEP = 500


def new_task_id() -> str:
    """Return a fresh Celery task id: for one hand-off of a run, or a task the API sends."""
    return str(uuid.uuid4())


def send_runs(celery: Celery, sessions: sessionmaker[Session],
              runs: Sequence[tuple[str, str]]) -> list[str]:
    """Publish (run id, task id) pairs to the broker; return the run ids that were sent.

    Runs are recorded with `sent_at` already set, so the usual path costs no second write;
    when the broker refuses, the runs not sent get `sent_at` cleared for the reconciler.
    """
    sent = []
    try:
        # Marked as waiting first: the reconciler then knows each message is there.
        mark_waiting(celery.conf.broker_url, [task_id for _, task_id in runs])
    except Exception as exc:  # redis raises many types for an unreachable broker
        _leave_unsent(sessions, [run_id for run_id, _ in runs], exc)
        return sent
    for run_id, task_id in runs:
        try:
            _send_run(celery, run_id, task_id)
        except Exception as exc:  # kombu raises many types for an unreachable broker
            _leave_unsent(sessions, [run_id for run_id, _ in runs[len(sent):]], exc)
            break
        sent.append(run_id)
    return sent


def send_delivery(publisher: Publisher, sessions: sessionmaker[Session],
                  runs: Sequence[tuple[str, str]], reports: Sequence[Sequence[str]],
                  decided_elsewhere: Sequence[tuple[str, int]] = ()) -> list[str]:
    """Publish report requests, then runs, then notices, in one round trip to the broker.

    `reports` holds one group of run ids per delivery, each a `report_runs` task, so the
    pending statuses of different deliveries are posted side by side. `decided_elsewhere`
    holds (submission id, merge request iid) of merge requests that handed in a commit already
    decided through another: each a `submission_processing` task that writes that merge
    request's comment alone, recorded as sent with its hand-in. If the broker refuses, the
    report requests are lost, and the runs and notices get `sent_at` cleared for the
    reconciler. Return the run ids that were sent.
    """
    reports = [list(group) for group in reports if group]
    messages = [*(TaskMessage(REPORT, (group,), new_task_id()) for group in reports),
                *(TaskMessage(STUDENT_TESTING, (run_id,), task_id) for run_id, task_id in runs),
                *(TaskMessage(SUBMISSION_PROCESSING, notice, new_task_id())
                  for notice in decided_elsewhere)]
    if not messages:
        return []
    try:
        publisher.publish(messages)
    except Exception as exc:  # redis and kombu raise many types for an unreachable broker
        if reports:
            log.warning("broker unavailable, statuses of %d run(s) wait for their workers: %s",
                        sum(map(len, reports)), type(exc).__name__)
        if runs:
            _leave_unsent(sessions, [run_id for run_id, _ in runs], exc)
        if decided_elsewhere:
            log.warning("broker unavailable, %d notice(s) wait for the reconciler: %s",
                        len(decided_elsewhere), type(exc).__name__)
            with transaction(sessions) as session:
                mark_sent(session.connection(), decided_elsewhere, None)
        return []
    return [run_id for run_id, _ in runs]


def _send_run(celery: Celery, run_id: str, task_id: str, **options) -> None:
    celery.send_task(STUDENT_TESTING, args=[run_id], task_id=task_id,
                     **{"retry_policy": PUBLISH_RETRY_POLICY, **options})


def _send_report(celery: Celery, run_ids: Sequence[str], **options) -> None:
    celery.send_task(REPORT, args=[list(run_ids)],
                     **{"retry_policy": PUBLISH_RETRY_POLICY, **options})


def _leave_unsent(sessions: sessionmaker[Session], run_ids: list[str], exc: Exception) -> None:
    """Clear `sent_at` of runs the broker did not take, so the reconciler sends them."""
    log.warning("broker unavailable, %d run(s) stay queued for the reconciler: %s",
                len(run_ids), type(exc).__name__)
    with transaction(sessions) as session:
        session.execute(update(TestRun).where(TestRun.id.in_(run_ids)).values(sent_at=None))


def resend_run(celery: Celery, sessions: sessionmaker[Session], run_id: str,
               sent_at: dt.datetime | None, *, broker_has_none: bool = False) -> bool | None:
    """Publish a still-queued run again, unless it was sent since the caller read `sent_at`.

    When the broker cannot hold a message of the run (its publish failed, or the broker lost
    its data: `broker_has_none`), the run keeps its task id, so callers following that id are
    not lost. Otherwise an old message may still be waiting: the run gets a fresh task id and
    the old message becomes a no-op. A run sent meanwhile (by another sweep) has its message:
    a second one under a kept task id would claim it too. Return True when sent, False when
    the broker refused, None when the run is no longer queued or was sent meanwhile.
    """
    with transaction(sessions) as session:
        write_first(session)  # the embedded SQLite ledger locks no row
        run = session.get(TestRun, run_id, with_for_update=True)
        if run is None or run.status != RunStatus.QUEUED or run.sent_at != sent_at:
            return None
        if run.sent_at is not None and not broker_has_none:
            run.celery_task_id = new_task_id()
        run.sent_at = utcnow()
        task_id = run.celery_task_id
    return bool(send_runs(celery, sessions, [(run_id, task_id)]))


def request_reports(celery: Celery, run_ids: Sequence[str]) -> bool:
    """Ask a worker to show new, superseded or cancelled runs on GitLab; False if unsent."""
    if not run_ids:
        return True
    try:
        _send_report(celery, run_ids)
        return True
    except Exception as exc:  # kombu raises many types for an unreachable broker
        log.warning("broker unavailable, statuses of %d run(s) wait for their workers: %s",
                    len(run_ids), type(exc).__name__)
        return False
