"""Celery task `submission_processing(submission_id)`: drives pipeline.submissions with retries."""

from __future__ import annotations

import dataclasses
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from gitlab_client import GitLabError, TransientGitLabError
from pipeline.celery_app import SUBMISSION_PROCESSING
from pipeline.context import resources_for
from pipeline.repos import RepositoryError
from pipeline.submissions.processing import end_with_error, process_submission
from pipeline.tasks.retry import backoff_seconds, is_transient

log = logging.getLogger(__name__)

TIME_LIMIT_REASON = "stopped by the time limit of {limit:g} s"
GAVE_UP_REASON = "gave up after {attempts} attempts: {error}"
UNEXPECTED_REASON = "unexpected error in gradehook ({error}); it has been logged"


@shared_task(name=SUBMISSION_PROCESSING, bind=True)
def submission_processing(self, submission_id: str) -> dict:
    """Validate, record and publish one submission; GitLab and git faults are retried."""
    settings = self.app.conf.gradehook_settings
    resources = resources_for(settings)
    try:
        outcome = process_submission(resources, self.app, submission_id)
    except SoftTimeLimitExceeded:
        limit = self.soft_time_limit or settings.worker.submission_processing_soft_time_limit
        outcome = end_with_error(resources, submission_id, TIME_LIMIT_REASON.format(limit=limit))
    except Exception as exc:
        if isinstance(exc, TransientGitLabError) or is_transient(exc):
            attempts = self.request.retries + 1
            if attempts < settings.worker.max_attempts:
                log.warning("submission %s: attempt %d failed, retrying: %s", submission_id,
                            attempts, exc)
                raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries))
            outcome = end_with_error(resources, submission_id,
                                     GAVE_UP_REASON.format(attempts=attempts, error=exc))
        elif isinstance(exc, (GitLabError, RepositoryError)):
            outcome = end_with_error(resources, submission_id, str(exc))
        else:
            log.exception("submission %s: unexpected error", submission_id)
            end_with_error(resources, submission_id,
                           UNEXPECTED_REASON.format(error=type(exc).__name__))
            raise
    return dataclasses.asdict(outcome)
