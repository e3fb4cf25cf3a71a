"""Celery task `student_testing(run_id)`: drives pipeline.testing with progress, limits, retries."""

from __future__ import annotations

import dataclasses

from celery import shared_task

from pipeline.celery_app import STUDENT_TESTING
from pipeline.context import resources_for
from pipeline.tasks.progress import store_progress
from pipeline.tasks.reporting import report_now_or_later
from pipeline.tasks.retry import drive
from pipeline.testing import end_with_error, run_student_testing


@shared_task(name=STUDENT_TESTING, bind=True)
def student_testing(self, run_id: str) -> dict:
    """Grade one test run, reporting progress as a custom task state."""
    settings = self.app.conf.gradehook_settings
    resources = resources_for(settings)

    def progress(stage: str, percent: int) -> None:
        store_progress(self, resources.engine,
                       {"run_id": run_id, "stage": stage, "percent": percent})

    def report(rid: str) -> None:
        report_now_or_later(resources, self.app, rid)

    def end(reason: str):
        outcome = end_with_error(resources, run_id, reason)
        report(run_id)
        return outcome

    outcome = drive(self, lambda: run_student_testing(resources, run_id, self.request.id,
                                                      progress, report), end,
                    soft_limit=settings.worker.student_testing_soft_time_limit,
                    max_attempts=settings.worker.max_attempts, what=f"run {run_id}")
    return dataclasses.asdict(outcome)
