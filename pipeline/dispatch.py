"""Hand runs to the broker after their rows are committed; a broker outage leaves them queued."""

from __future__ import annotations

import logging
import uuid
from typing import Iterable

from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.celery_app import STUDENT_TESTING
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
              runs: Iterable[tuple[str, str]]) -> list[str]:
    """Publish (run id, task id) pairs to the broker; return the run ids that were sent."""
    sent = []
    for run_id, task_id in runs:
        try:
            celery.send_task(STUDENT_TESTING, args=[run_id], task_id=task_id,
                             retry_policy=PUBLISH_RETRY_POLICY)
        except Exception as exc:  # kombu raises many types for an unreachable broker
            log.warning("broker unavailable, run %s stays queued for the reconciler: %s",
                        run_id, type(exc).__name__)
            break
        sent.append(run_id)
    if sent:
        with transaction(sessions) as session:
            session.execute(update(TestRun).where(TestRun.id.in_(sent))
                            .values(sent_at=utcnow()))
    return sent


def resend_run(celery: Celery, sessions: sessionmaker[Session], run_id: str) -> bool | None:
    """Give a still-queued run a fresh task id and publish it; stale messages become no-ops.

    Return True when sent, False when the broker refused, None when the run is no longer queued.
    """
    task_id = new_task_id()
    with transaction(sessions) as session:
        changed = session.execute(
            update(TestRun).where(TestRun.id == run_id, TestRun.status == RunStatus.QUEUED)
            .values(celery_task_id=task_id)).rowcount
    if not changed:
        return None
    return bool(send_runs(celery, sessions, [(run_id, task_id)]))
