"""Runs of courses whose execution backend is `local`: graded in threads of the web process."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from celery import Celery

from pipeline.context import Resources
from pipeline.tasks.reporting import report_now_or_later
from pipeline.testing import end_with_error, run_student_testing

log = logging.getLogger(__name__)

LOCAL_RUN_FAILED = "the in-process run failed: {error}"


class LocalRunner:
    """Grade runs in a bounded pool of background threads; each request is answered at once."""

    def __init__(self, resources: Resources, celery: Celery, threads: int) -> None:
        self._resources = resources
        self._celery = celery
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="local-run")

    def submit(self, run_id: str, task_id: str) -> None:
        """Start grading a queued run in the background."""
        self._pool.submit(self._grade, run_id, task_id)

    def _grade(self, run_id: str, task_id: str) -> None:
        try:
            run_student_testing(self._resources, run_id, task_id, self._report)
        except Exception as exc:  # nothing retries a local run: end it with the reason
            log.exception("local run %s failed", run_id)
            end_with_error(self._resources, run_id,
                           LOCAL_RUN_FAILED.format(error=type(exc).__name__))
            self._report(run_id)

    def _report(self, run_id: str) -> None:
        """Bring GitLab in line with the run now, or through the report task when it fails."""
        report_now_or_later(self._resources, self._celery, run_id)
