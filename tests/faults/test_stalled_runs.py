"""The reconciler ends a run left running only after the broker had its chance to hand it out."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from sqlalchemy.orm import Session

from pipeline.broker_marker import retry_coming
from pipeline.celery_app import create_celery, retry_patience_seconds, stall_patience_seconds
from pipeline.dispatch import new_task_id
from pipeline.ledger import runs as ledger_runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.reconcile import reconcile_ledger, requeue_abandoned_runs
from tests.faults.service import SHORT_LIMITS
from tests.infra.ledger import (embedded_settings, migrated_resources, queue_run,
                                while_another_process_holds)


def test_a_running_run_is_ended_only_past_the_visibility_timeout_and_margin(service_settings):
    _, settings = service_settings({"worker": SHORT_LIMITS})
    resources = migrated_resources(settings)
    patience = dt.timedelta(seconds=stall_patience_seconds(settings.worker))
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


def test_runs_whose_worker_died_in_their_workspace_are_queued_again_before_work_starts(
        service_settings):
    _, settings = service_settings({"worker": {"max_attempts": 3}})
    resources = migrated_resources(settings)
    runs = {name: queue_run(resources, commit_sha=sha * 40)
            for name, sha in (("abandoned", "a"), ("live", "b"), ("reclaimed", "c"),
                              ("too_often", "d"), ("ended", "e"), ("making", "f"),
                              ("older", "0"))}
    # The attempt each run is in; the reclaimed run's message was handed out again at once
    # (its pool process died) and a second attempt grades it now, in a workspace of its own.
    attempts = {"too_often": 3, "reclaimed": 2}
    with transaction(resources.sessions) as session:
        for name, run in runs.items():
            row = session.get(TestRun, run.id)
            row.status, row.started_at, row.stage = RunStatus.RUNNING, utcnow(), "tests"
            row.attempts = attempts.get(name, 1)
            if name == "ended":
                row.status = RunStatus.PASSED
    holder = "import fcntl, sys, time\nf = open(sys.argv[1])\nfcntl.flock(f, fcntl.LOCK_SH)\n" \
             "print('held', flush=True)\ntime.sleep(60)\n"
    # Each folder's mark names the attempt that made it: the dead ones, that is, but for the
    # live run's; a worker making its mark has not named it .in-use yet; an older gradehook's
    # marks named no attempt.
    marks = {"too_often": "3", "older": "", "making": None}
    for name, run in runs.items():
        folder = settings.workspace / f"run-{run.id}-{name[:8]}"
        folder.mkdir(parents=True)
        mark = marks.get(name, "1")
        (folder / (".in-use.making" if mark is None else ".in-use")).write_text(mark or "")
    live = subprocess.Popen([sys.executable, "-c", holder, str(
        settings.workspace / f"run-{runs['live'].id}-live" / ".in-use")], stdout=subprocess.PIPE)
    try:
        assert live.stdout.readline() == b"held\n"  # a worker process grading it still lives
        done = requeue_abandoned_runs(settings, resources.sessions)
    finally:
        live.kill()
        live.wait()

    assert sorted(done) == sorted([runs["abandoned"].id, runs["too_often"].id])
    with resources.sessions() as session:
        rows = {name: session.get(TestRun, run.id) for name, run in runs.items()}
    abandoned = rows["abandoned"]
    assert (abandoned.status, abandoned.stage, abandoned.progress, abandoned.sent_at,
            abandoned.status_reason) == (
        RunStatus.QUEUED, "queued", 0, None,
        "queued again: the worker grading it stopped (attempt 2 of 3)")
    assert abandoned.celery_task_id != runs["abandoned"].celery_task_id  # the old message: no-op
    assert (rows["too_often"].status, rows["too_often"].status_reason) == (
        RunStatus.ERROR, "stopped: its worker stopped while grading it, 3 times")
    for name in ("live", "reclaimed", "making", "older"):
        assert (rows[name].status, rows[name].celery_task_id) == \
            (RunStatus.RUNNING, runs[name].celery_task_id)
    assert rows["ended"].status is RunStatus.PASSED

    # The reconciler's sweep that follows a worker's start sends it, under its new task id.
    report = reconcile_ledger(resources, create_celery(settings))
    assert report.resent == 1


def _stalled(settings, resources, commit_sha: str = "a" * 40) -> TestRun:
    """Return a run left running since before the sweep's patience ran out."""
    patience = dt.timedelta(seconds=stall_patience_seconds(settings.worker))
    stalled = queue_run(resources, commit_sha=commit_sha)
    with transaction(resources.sessions) as session:
        row = session.get(TestRun, stalled.id)
        row.status, row.attempts = RunStatus.RUNNING, 1
        row.started_at = utcnow() - patience - dt.timedelta(seconds=30)
    return stalled


def test_a_run_whose_task_notes_it_tries_again_soon_is_left_past_the_stall_cutoff(
        service_settings):
    """Its task waits for the database, which was away for longer than the cutoff, and notes
    in the broker that it tries again soon: the sweep leaves its run to it. Before, the sweep
    ended it as error. A run whose task noted nothing (its worker died) is still ended."""
    _, settings = service_settings({"worker": SHORT_LIMITS})
    resources = migrated_resources(settings)
    waiting = _stalled(settings, resources, commit_sha="a" * 40)
    abandoned = _stalled(settings, resources, commit_sha="b" * 40)
    retry_coming(settings.broker_url, waiting.celery_task_id,
                 retry_patience_seconds(settings.worker), stall_patience_seconds(settings.worker))

    report = reconcile_ledger(resources, create_celery(settings))

    assert report.stalled_ended == 1
    with resources.sessions() as session:
        assert session.get(TestRun, waiting.id).status is RunStatus.RUNNING
        assert session.get(TestRun, abandoned.id).status is RunStatus.ERROR


def _swept_while_taken_up(settings, resources, stalled: TestRun, meanwhile: str):
    """Sweep while another process claims the stalled run again or queues it again; return
    the sweep's report."""
    def take_up_again(connection):
        with Session(bind=connection) as session:
            if meanwhile == "claimed again":
                assert ledger_runs.claim_run(session, stalled.id, stalled.celery_task_id)
            else:
                ledger_runs.requeue(session, stalled.id, new_task_id(), "queued again")

    _, report = while_another_process_holds(
        settings, resources.engine, take_up_again,
        lambda: reconcile_ledger(resources, create_celery(settings)))
    return report


@pytest.mark.parametrize("meanwhile", ["claimed again", "queued again"])
def test_a_run_taken_up_again_as_the_sweep_ends_stalled_runs_is_left_to_its_new_attempt(
        service_settings, meanwhile):
    """Another process claims the run (its message handed out again) or queues it again (a
    worker restarting) just as the sweep ends it: the sweep sees that and leaves it be."""
    _, settings = service_settings({"worker": SHORT_LIMITS})
    resources = migrated_resources(settings)
    stalled = _stalled(settings, resources)
    report = _swept_while_taken_up(settings, resources, stalled, meanwhile)
    assert report.stalled_ended == 0
    with resources.sessions() as session:
        assert session.get(TestRun, stalled.id).status is (
            RunStatus.RUNNING if meanwhile == "claimed again" else RunStatus.QUEUED)


def test_on_the_embedded_ledger_a_run_queued_again_as_the_sweep_ends_stalled_runs_is_left(
        tmp_path, monkeypatch):
    """The embedded SQLite ledger has no row locks: the sweep writes first instead, so a
    worker restarting that queues the run again at that moment has committed before it reads."""
    settings = embedded_settings(tmp_path, monkeypatch, {"worker": SHORT_LIMITS})
    resources = migrated_resources(settings)
    stalled = _stalled(settings, resources)
    try:
        report = _swept_while_taken_up(settings, resources, stalled, "queued again")
    finally:
        resources.engine.dispose()
    assert report.stalled_ended == 0
    with resources.sessions() as session:
        assert session.get(TestRun, stalled.id).status is RunStatus.QUEUED
