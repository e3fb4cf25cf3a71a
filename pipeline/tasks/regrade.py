"""Celery task `regrade`: queue gradings of student branch heads that have no result yet."""

from __future__ import annotations

from celery import shared_task

from gitlab_client import TransientGitLabError
from pipeline.celery_app import REGRADE
from pipeline.context import resources_for
from pipeline.regrade import publish_regrades, regrade_branch_heads
from pipeline.tasks.retry import backoff_seconds


@shared_task(name=REGRADE, bind=True)
def regrade(self, course: str | None = None) -> dict:
    """Find ungraded branch heads of one course (or all) and send their runs, low priority."""
    settings = self.app.gradehook_settings
    resources = resources_for(settings)
    try:
        report = regrade_branch_heads(resources, course)
    except TransientGitLabError as exc:
        if self.request.retries + 1 >= settings.worker.max_attempts:
            raise
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries),
                         max_retries=settings.worker.max_attempts)
    publish_regrades(self.app, resources.sessions, report.queued.created)
    return report.as_dict()
