"""Hand runs to the broker after their rows are committed; a broker outage leaves them queued."""

from __future__ import annotations

import logging
import uuid
from typing import Sequence

from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.celery_app import REPORT, STUDENT_TESTING
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun, utcnow

log = logging.getLogger(__name__)

# Retries of one publish before the run is left to the reconciler: keep the webhook answer fast.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                        "interval_max": 0.2}


def new_task_id() -> str:
    """Return a fresh Celery task id for one hand-off of a run."""
    return str(uuid.uuid4())


def send_runs(celery: Celery, sessions: sessionmaker[Session],
              runs: Sequence[tuple[str, str]]) -> list[str]:
    """Publish (run id, task id) pairs to the broker; return the run ids that were sent.

    Runs are recorded with `sent_at` already set, so the usual path costs no second write;
    when the broker refuses, the runs not sent get `sent_at` cleared for the reconciler.
    """
    sent = []
    for run_id, task_id in runs:
        try:
            celery.send_task(STUDENT_TESTING, args=[run_id], task_id=task_id,
                             retry_policy=PUBLISH_RETRY_POLICY)
        except Exception as exc:  # kombu raises many types for an unreachable broker
            log.warning("broker unavailable, %d run(s) stay queued for the reconciler: %s",
                        len(runs) - len(sent), type(exc).__name__)
            unsent = [run_id for run_id, _ in runs[len(sent):]]
            with transaction(sessions) as session:
                session.execute(update(TestRun).where(TestRun.id.in_(unsent))
                                .values(sent_at=None))
            break
        sent.append(run_id)
    return sent


def resend_run(celery: Celery, sessions: sessionmaker[Session], run_id: str) -> bool | None:
    """Give a still-queued run a fresh task id and publish it; stale messages become no-ops.

    Return True when sent, False when the broker refused, None when the run is no longer queued.
    """
    task_id = new_task_id()
    with transaction(sessions) as session:
        changed = session.execute(
            update(TestRun).where(TestRun.id == run_id, TestRun.status == RunStatus.QUEUED)
            .values(celery_task_id=task_id, sent_at=utcnow())).rowcount
    if not changed:
        return None
    return bool(send_runs(celery, sessions, [(run_id, task_id)]))


def request_reports(celery: Celery, run_ids: Sequence[str]) -> bool:
    """Ask a worker to show new, superseded or cancelled runs on GitLab; False if unsent."""
    if not run_ids:
        return True
    try:
        celery.send_task(REPORT, args=[list(run_ids)], retry_policy=PUBLISH_RETRY_POLICY)
        return True
    except Exception as exc:  # kombu raises many types for an unreachable broker
        log.warning("broker unavailable, statuses of %d run(s) wait for their workers: %s",
                    len(run_ids), type(exc).__name__)
        return False
