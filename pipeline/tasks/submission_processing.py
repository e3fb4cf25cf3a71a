"""Celery task `submission_processing(submission_id)`: drives pipeline.submissions with retries."""

from __future__ import annotations

import dataclasses

from celery import shared_task

from gitlab_client import GitLabError
from pipeline.celery_app import SUBMISSION_PROCESSING
from pipeline.context import resources_for
from pipeline.host_places import host_places
from pipeline.repos import RepositoryError
from pipeline.submissions.processing import end_with_error, process_submission
from pipeline.tasks.retry import drive


@shared_task(name=SUBMISSION_PROCESSING, bind=True)
def submission_processing(self, submission_id: str) -> dict:
    """Validate, record and publish one submission; GitLab and git faults are retried."""
    settings = self.app.gradehook_settings
    resources = resources_for(settings)
    outcome = drive(self, lambda: process_submission(resources, self.app, submission_id),
                    lambda reason: end_with_error(resources, submission_id, reason,
                                                  self.request.id),
                    soft_limit=settings.worker.submission_processing_soft_time_limit,
                    max_attempts=settings.worker.max_attempts, places=host_places(settings),
                    what=f"submission {submission_id}", expected=(GitLabError, RepositoryError))
    return dataclasses.asdict(outcome)
