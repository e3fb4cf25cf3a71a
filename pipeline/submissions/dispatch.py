"""Send submissions to `submission_processing` once their run has ended, and merge requests'
notices; resend lost ones."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from typing import Sequence

from celery import Celery
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.celery_app import SUBMISSION_PROCESSING, celery_config
from pipeline.config import Settings
from pipeline.context import Resources
from pipeline.dispatch import PUBLISH_RETRY_POLICY, RESENDS_PER_SWEEP, new_task_id
from pipeline.ledger.db import single_statements, transaction
from pipeline.ledger.models import FINAL_STATUSES, Submission, TestRun, utcnow
from pipeline.submissions.ledger import waiting_on
from pipeline.submissions.notices import Notice, lost_notices, mark_sent
from pipeline.submissions.verdict import PENDING

log = logging.getLogger(__name__)

# A submission sent this long ago and still not finished is assumed lost and sent again; a
# duplicate is harmless, as processing is serialised per student and assignment and idempotent.
RESEND_AFTER = dt.timedelta(minutes=15)
# A merge request's notice not told is sent again for a day at the most: GitLab may have lost
# the merge request for good.
NOTICE_RESEND_WITHIN = dt.timedelta(days=1)


def send_submissions(celery: Celery, sessions: sessionmaker[Session],
                     submissions: Sequence[tuple[str, str]]) -> list[str]:
    """Publish (submission id, task id) pairs; return the ids sent (the rest wait to be resent)."""
    count = _send_in_turn(celery, [([submission_id], task_id)
                                   for submission_id, task_id in submissions], "submission(s)")
    sent = [submission_id for submission_id, _ in submissions[:count]]
    if sent:
        with transaction(sessions) as session:
            session.execute(update(Submission).where(Submission.id.in_(sent))
                            .values(sent_at=utcnow()))
    return sent


def release_submissions(celery: Celery, sessions: sessionmaker[Session],
                        run_ids: Sequence[str]) -> list[str]:
    """Send the pending submissions of these runs whose run has already ended."""
    if not run_ids:
        return []
    with sessions() as session:
        ready = list(session.execute(
            select(Submission.id, Submission.celery_task_id)
            .join(TestRun, TestRun.id == Submission.run_id)
            .where(Submission.run_id.in_(list(run_ids)), Submission.outcome == PENDING,
                   TestRun.status.in_(FINAL_STATUSES))).all())
    return send_submissions(celery, sessions, ready)


def hand_off_submissions(resources: Resources, run_id: str) -> list[str]:
    """Send the submissions that waited for a run which has just ended."""
    with single_statements(resources.sessions) as session:
        waiting = waiting_on(session, [run_id])
    if not waiting:
        return []
    log.info("run %s ended: %d submission(s) to process", run_id, len(waiting))
    return send_submissions(publisher(resources.settings), resources.sessions, waiting)


def resend_lost_submissions(resources: Resources, celery: Celery) -> int:
    """Send again unfinished submissions whose run ended: never sent, or sent long ago."""
    stale = utcnow() - RESEND_AFTER
    with resources.sessions() as session:
        lost = list(session.execute(
            select(Submission.id, Submission.celery_task_id)
            .join(TestRun, TestRun.id == Submission.run_id)
            .where(Submission.finished_at.is_(None), TestRun.status.in_(FINAL_STATUSES),
                   or_(Submission.sent_at.is_(None), Submission.sent_at < stale))
            .order_by(Submission.received_at).limit(RESENDS_PER_SWEEP)).all())
    return len(send_submissions(celery, resources.sessions, lost))


def send_notices(celery: Celery, sessions: sessionmaker[Session],
                 notices: Sequence[Notice]) -> int:
    """Send merge requests' notices, recorded as sent, to `submission_processing`, each writing
    that merge request's comment alone; mark those the broker refused as not sent, for the
    reconciler. Return how many were sent."""
    sent = _send_in_turn(celery, [(list(notice), new_task_id()) for notice in notices],
                         "notice(s)")
    if sent < len(notices):
        with transaction(sessions) as session:
            mark_sent(session.connection(), notices[sent:], None)
    return sent


def resend_lost_notices(resources: Resources, celery: Celery) -> int:
    """Send again the notices not told whose submission is decided: never sent, or long ago."""
    now = utcnow()
    with transaction(resources.sessions) as session:
        lost = lost_notices(session, now - RESEND_AFTER, now - NOTICE_RESEND_WITHIN,
                            RESENDS_PER_SWEEP)
        mark_sent(session.connection(), lost, now)
    return send_notices(celery, resources.sessions, lost)


def _send_in_turn(celery: Celery, tasks: Sequence[tuple[list, str]], what: str) -> int:
    """Send `submission_processing` tasks (arguments, task id) in order until the broker
    refuses one; return how many were sent."""
    for sent, (args, task_id) in enumerate(tasks):
        try:
            celery.send_task(SUBMISSION_PROCESSING, args=args, task_id=task_id,
                             retry_policy=PUBLISH_RETRY_POLICY)
        except Exception as exc:  # kombu raises many types for an unreachable broker
            log.warning("broker unavailable, %d %s wait for the reconciler: %s",
                        len(tasks) - sent, what, type(exc).__name__)
            return sent
    return len(tasks)


def publisher(settings: Settings) -> Celery:
    """Return this process's Celery client for sending tasks, made once after each fork."""
    return _publisher(settings, os.getpid())


@functools.lru_cache(maxsize=4)
def _publisher(settings: Settings, pid: int) -> Celery:
    app = Celery("gradehook-publisher", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
