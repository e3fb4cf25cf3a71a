"""Celery task `submission_processing(submission_id)`: drives pipeline.submissions with retries."""

from __future__ import annotations

import dataclasses
import functools

from celery import shared_task

from gitlab_client import GitLabError
from pipeline.celery_app import SUBMISSION_PROCESSING
from pipeline.context import resources_for
from pipeline.host_places import host_places
from pipeline.repos import RepositoryError
from pipeline.submissions.processing import (end_with_error, not_told, process_submission,
                                             tell_decided_elsewhere)
from pipeline.tasks.hard_limit import EndsAtHardLimit
from pipeline.tasks.retry import drive


@shared_task(name=SUBMISSION_PROCESSING, bind=True, base=EndsAtHardLimit)
def submission_processing(self, submission_id: str,
                          decided_elsewhere_for: int | None = None,
                          database_waits: int = 0, ending: str | None = None) -> dict:
    """Validate, record and publish one submission; GitLab and git faults are retried.

    With `decided_elsewhere_for` (a merge request that handed in its commit again), write that
    merge request's comment alone: a fault that outlasts the retries leaves the submission as
    it is. `database_waits`: how often it has waited for the database so far; `ending`: the
    error to end with, which the database was away to record.
    """
    settings = self.app.gradehook_settings
    resources = resources_for(settings)
    if decided_elsewhere_for is None:
        work = functools.partial(process_submission, resources, self.app, submission_id)
        end = functools.partial(end_with_error, resources, submission_id,
                                task_id=self.request.id)
    else:
        work = functools.partial(tell_decided_elsewhere, resources, submission_id,
                                 decided_elsewhere_for)
        end = functools.partial(not_told, resources, submission_id, decided_elsewhere_for)
    outcome = drive(self, work, end,
                    soft_limit=settings.worker.submission_processing_soft_time_limit,
                    max_attempts=settings.worker.max_attempts, places=host_places(settings),
                    database_wait=settings.worker.database_wait_seconds,
                    database_waits=database_waits, ending=ending,
                    what=f"submission {submission_id}",
                    expected=(GitLabError, RepositoryError))
    return dataclasses.asdict(outcome)
