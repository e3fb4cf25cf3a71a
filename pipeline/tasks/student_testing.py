"""Celery task `student_testing(run_id)`: drives pipeline.testing with progress, limits, retries."""

from __future__ import annotations

import dataclasses
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from pipeline.celery_app import STUDENT_TESTING
from pipeline.context import resources_for
from pipeline.tasks.reporting import report_now_or_later
from pipeline.tasks.retry import backoff_seconds, is_transient
from pipeline.testing import end_with_error, run_student_testing

log = logging.getLogger(__name__)

PROGRESS_STATE = "PROGRESS"
TIME_LIMIT_REASON = "stopped by the time limit of {limit:g} s"
GAVE_UP_REASON = "gave up after {attempts} attempts: {error}"


@shared_task(name=STUDENT_TESTING, bind=True)
def student_testing(self, run_id: str) -> dict:
    """Grade one test run, reporting progress as a custom task state."""
    settings = self.app.conf.gradehook_settings
    resources = resources_for(settings)

    def progress(stage: str, percent: int) -> None:
        self.update_state(state=PROGRESS_STATE,
                          meta={"run_id": run_id, "stage": stage, "percent": percent})

    def report(rid: str) -> None:
        report_now_or_later(resources, self.app, rid)

    try:
        outcome = run_student_testing(resources, run_id, self.request.id, progress, report)
    except SoftTimeLimitExceeded:
        limit = self.soft_time_limit or settings.worker.student_testing_soft_time_limit
        outcome = end_with_error(resources, run_id, TIME_LIMIT_REASON.format(limit=limit))
        report(run_id)
    except Exception as exc:
        if not is_transient(exc):
            raise
        attempts = self.request.retries + 1
        if attempts < settings.worker.max_attempts:
            log.warning("run %s: attempt %d failed, retrying: %s", run_id, attempts, exc)
            raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries))
        outcome = end_with_error(resources, run_id,
                                 GAVE_UP_REASON.format(attempts=attempts, error=exc))
        report(run_id)
    return dataclasses.asdict(outcome)
