"""Celery task `student_testing(run_id)`: drives pipeline.testing with limits and retries."""

from __future__ import annotations

import dataclasses

from celery import shared_task

from pipeline.broker_marker import message_taken, retry_coming
from pipeline.celery_app import STUDENT_TESTING, retry_patience_seconds, \
    stall_patience_seconds
from pipeline.context import resources_for
from pipeline.host_places import host_places
from pipeline.tasks.hard_limit import EndsAtHardLimit
from pipeline.tasks.reporting import report_now_or_later
from pipeline.tasks.retry import drive, resumes_attempt
from pipeline.testing import AttemptClaim, end_with_error, note_retry, run_student_testing


# The ledger records every stage, the progress and the outcome of the run, and the API reads a
# run's task state from it; Celery's result backend would only hold copies (a STARTED row, one
# write per stage, the result), each a transaction of its own in the grading slot.
@shared_task(name=STUDENT_TESTING, bind=True, base=EndsAtHardLimit, ignore_result=True,
             track_started=False)
def student_testing(self, run_id: str, database_waits: int = 0,
                    ending: str | None = None, resumes: int | None = None) -> dict:
    """Grade one test run; its stages and outcome are in the ledger (`database_waits`: how
    often it has waited for the database so far; `ending`: the error to end the run with, which
    the database was away to record; `resumes`: the attempt that claimed the run and then
    waited for the database, which claims it again without counting another attempt)."""
    settings = self.app.gradehook_settings
    message_taken(self.app.conf.broker_url, self.request.id)
    resources = resources_for(settings)

    def report(rid: str) -> None:
        report_now_or_later(resources, self.app, rid)

    def coming() -> None:
        # While the database is away, neither a retry's reason nor the run's end can be
        # written: the notes tell the reconciler, once it is back, that the run's task is alive.
        retry_coming(self.app.conf.broker_url, self.request.id,
                     retry_patience_seconds(settings.worker),
                     stall_patience_seconds(settings.worker))

    def end(reason: str):
        outcome = end_with_error(resources, run_id, reason)
        report(run_id)
        return outcome

    claim = AttemptClaim(resumed=resumes_attempt(self, database_waits, resumes))
    outcome = drive(self,
                    lambda: run_student_testing(resources, run_id, self.request.id, report, claim),
                    end, soft_limit=settings.worker.student_testing_soft_time_limit,
                    max_attempts=settings.worker.max_attempts, places=host_places(settings),
                    database_wait=settings.worker.database_wait_seconds,
                    database_waits=database_waits, ending=ending, what=f"run {run_id}",
                    retrying=lambda reason: note_retry(resources, run_id, reason),
                    coming=coming,
                    claimed=lambda: claim.made)
    return dataclasses.asdict(outcome)
