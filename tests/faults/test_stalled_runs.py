"""The reconciler ends a run left running only after the broker had its chance to hand it out."""

from __future__ import annotations

import datetime as dt

from pipeline.celery_app import create_celery, visibility_timeout_seconds
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.reconcile import STALL_MARGIN, reconcile_ledger
from tests.faults.service import SHORT_LIMITS
from tests.infra.ledger import migrated_resources, queue_run


def test_a_running_run_is_ended_only_past_the_visibility_timeout_and_margin(service_settings):
    _, settings = service_settings({"worker": SHORT_LIMITS})
    resources = migrated_resources(settings)
    patience = dt.timedelta(seconds=visibility_timeout_seconds(settings.worker)) + STALL_MARGIN
    assert patience > dt.timedelta(seconds=settings.worker.student_testing_time_limit)
    now = utcnow()
    abandoned = queue_run(resources, commit_sha="a" * 40)
    waiting = queue_run(resources, commit_sha="b" * 40)
    with transaction(resources.sessions) as session:
        for run, started in ((abandoned, now - patience - dt.timedelta(seconds=30)),
                             (waiting, now - patience + dt.timedelta(seconds=30))):
            row = session.get(TestRun, run.id)
            row.status, row.started_at = RunStatus.RUNNING, started

    report = reconcile_ledger(resources, create_celery(settings))

    assert report.stalled_ended == 1
    with resources.sessions() as session:
        ended = session.get(TestRun, abandoned.id)
        assert (ended.status, ended.status_reason) == (
            RunStatus.ERROR, "stopped: its worker was lost or the hard time limit of 20 s was "
                             "exceeded")
        assert session.get(TestRun, waiting.id).status is RunStatus.RUNNING
