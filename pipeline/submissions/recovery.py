"""Process again the submissions that ended in an error of ours, for a window after it began."""

from __future__ import annotations

import datetime as dt
import logging

from celery import Celery
from sqlalchemy import select, update

from pipeline.context import Resources
from pipeline.ledger.db import transaction
from pipeline.ledger.locks import write_first
from pipeline.ledger.models import Submission, TestRun, utcnow
from pipeline.submissions.dispatch import release_submissions
from pipeline.submissions.ledger import pending_again
from pipeline.submissions.regrading import ended_in_our_error, grade_again
from pipeline.submissions.verdict import ERROR
from pipeline.sweeps import claim_sweep

log = logging.getLogger(__name__)

# The wait before the next try is as long as the submission has been failing, within these.
RETRY_WAIT_MIN = dt.timedelta(minutes=5)
RETRY_WAIT_MAX = dt.timedelta(hours=2)
# Submissions made pending by one sweep at the most; the next sweep takes more.
RETRY_LIMIT = 500
SWEEP_KEY = "reconciler:submission-retries:{period}"
SWEEP_EVENT = "Submission Retries Sweep"


def schedule_retry(submission: Submission, now: dt.datetime, window: dt.timedelta) -> None:
    """Set when a submission ending in an error of ours is processed again, if it still is.

    A try that would come later than `window` after the submission first failed is not made:
    its error stays.
    """
    since = submission.failing_since or now
    retry_at = now + min(RETRY_WAIT_MAX, max(RETRY_WAIT_MIN, now - since))
    submission.failing_since = since
    submission.retry_at = retry_at if retry_at <= since + window else None


def retry_failed_submissions(resources: Resources, celery: Celery) -> int:
    """Make pending again the submissions whose next try is due, and send those whose run has
    ended (the others go when it ends); return how many.

    One sweep per reconciler interval does it, whichever worker claims the interval first.
    """
    now = utcnow()
    due = (Submission.outcome == ERROR, Submission.retry_at <= now)
    with resources.sessions() as session:
        if session.scalar(select(Submission.id).where(*due).limit(1)) is None:
            return 0
    period = int(now.timestamp() // resources.settings.worker.reconcile_interval_seconds)
    if claim_sweep(resources.sessions, SWEEP_KEY.format(period=period), SWEEP_EVENT) is None:
        return 0
    with transaction(resources.sessions) as session:
        write_first(session)  # the embedded SQLite ledger locks no row
        chosen = session.execute(select(Submission.id, Submission.run_id).where(*due)
                                 .order_by(Submission.retry_at).limit(RETRY_LIMIT)
                                 .with_for_update()).all()
        for submission_id, _ in chosen:
            session.execute(update(Submission).where(Submission.id == submission_id, *due)
                            .values(**pending_again()))
    log.info("reconcile: %d submission(s) that ended in an error of ours processed again",
             len(chosen))
    _grade_again_after_our_errors(resources, celery, [submission_id for submission_id, _ in chosen])
    release_submissions(celery, resources.sessions, [run_id for _, run_id in chosen])
    return len(chosen)


def _grade_again_after_our_errors(resources: Resources, celery: Celery,
                                  submission_ids: list[str]) -> None:
    """Give each of these submissions whose run ended in an error of ours a new run of its
    commit: once per time it is processed again, so a run failing on us again waits for the
    next try."""
    if not submission_ids:
        return
    with resources.sessions() as session:
        failed = session.execute(select(Submission, TestRun)
                                 .join(TestRun, TestRun.id == Submission.run_id)
                                 .where(Submission.id.in_(submission_ids))).all()
    for submission, run in failed:
        course = resources.settings.course_named(submission.course)
        if course is not None and ended_in_our_error(run):
            grade_again(resources, celery, course, submission, retry=True)
