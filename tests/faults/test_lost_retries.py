"""A run whose retry a dead worker held is sent again once overdue; a late retry keeps it."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal

import pytest
import redis
from sqlalchemy.orm import Session

from pipeline.celery_app import create_celery, retry_patience_seconds
from pipeline.ledger import runs as ledger_runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.reconcile import reconcile_ledger
from tests.e2e.scenario import STUDENT
from tests.faults.service import FINAL_STATES, fault_service, solution
from tests.infra.ledger import (embedded_settings, migrated_resources, queue_run,
                                while_another_process_holds)
from tests.infra.processes import wait_for

# Task limits long enough that the broker's visibility timeout, after which it would hand the
# dead worker's retry out again, lies far beyond every wait here (over ten minutes).
LONG_LIMITS = {"student_testing_soft_time_limit": 590.0, "student_testing_time_limit": 600.0,
               "max_attempts": 2, "reconcile_interval_seconds": 1.0}


def _holds_retry(broker: redis.Redis, task_id: str) -> bool:
    """Tell whether a worker holds the task's retry, delivered and unacknowledged (kombu keeps
    such messages in the `unacked` hash until they are acknowledged or handed out again)."""
    for raw in broker.hvals("unacked"):
        headers = json.loads(raw)[0]["headers"]
        if headers["id"] == task_id and headers["retries"] >= 1:
            return True
    return False


@pytest.mark.slow
def test_a_run_whose_worker_died_holding_its_retry_is_sent_again_and_graded_once(
        tmp_path, service_settings, git_server, monkeypatch):
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": LONG_LIMITS}) as service:
        sha, answer = service.deliver("work", solution("hello"), key="k1")
        run_id, = answer["runs"]
        first_task = service.run(run_id).celery_task_id
        student = git_server.bare(STUDENT)
        away = student.with_name("away.git")
        student.rename(away)  # the first attempt's fetch fails: a fault of ours, retried

        with service.worker("first") as first:
            wait_for(lambda: service.run(run_id).status_reason is not None
                     and _holds_retry(service.broker.client(), first_task), timeout=60,
                     interval=0.02, what="the worker to hold the run's retry")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        away.rename(student)
        assert service.run(run_id).status is RunStatus.RUNNING

        with service.worker("second"), service.beat():
            service.wait_ended([run_id], timeout=120)

        run = service.run(run_id)
        assert (run.status, run.attempts) == (RunStatus.PASSED, 2)
        assert run.celery_task_id != first_task  # the held retry, if it ever comes, is a no-op
        log = (service.logs / "second.log").read_text()
        assert f"run {run_id}: attempt 2 did not start in time" in log
        assert log.count(f"run {run_id}: passed") == 1
        assert [s for s in service.posted_states(sha) if s in FINAL_STATES] == ["success"]


def _waiting_for_retry(resources, sent: dt.datetime, commit_sha: str,
                       attempts: int = 1) -> TestRun:
    """Return a run whose last attempt failed and whose retry was sent at a moment."""
    run = queue_run(resources, commit_sha=commit_sha)
    with transaction(resources.sessions) as session:
        row = session.get(TestRun, run.id)
        row.status, row.attempts, row.started_at = RunStatus.RUNNING, attempts, sent
        row.status_reason = f"attempt {attempts} failed (git); trying again in 5 s"
        row.sent_at = sent
    return run


def test_only_runs_whose_retry_is_overdue_are_queued_again_and_sent(service_settings):
    _, settings = service_settings({"worker": LONG_LIMITS})
    resources = migrated_resources(settings)
    patience = dt.timedelta(seconds=retry_patience_seconds(settings.worker))
    now = utcnow()
    overdue = now - patience - dt.timedelta(seconds=30)
    lost = _waiting_for_retry(resources, overdue, "a" * 40)
    # Its attempts were used up, in part by attempts whose worker died.
    spent = _waiting_for_retry(resources, overdue, "d" * 40, attempts=2)
    due = _waiting_for_retry(resources, now - patience + dt.timedelta(seconds=30), "b" * 40)
    grading = queue_run(resources, commit_sha="c" * 40, sent_at=now - dt.timedelta(hours=1))
    with transaction(resources.sessions) as session:
        session.get(TestRun, grading.id).status = RunStatus.RUNNING

    report = reconcile_ledger(resources, create_celery(settings))

    assert (report.retries_lost, report.resent) == (2, 1)
    with resources.sessions() as session:
        requeued = session.get(TestRun, lost.id)
        assert (requeued.status, requeued.status_reason) == (
            RunStatus.QUEUED, "queued again: attempt 2 did not start in time (its worker "
                              "stopped, or had no process free)")
        assert requeued.celery_task_id != lost.celery_task_id and requeued.sent_at is not None
        ended = session.get(TestRun, spent.id)
        assert (ended.status, ended.status_reason) == (
            RunStatus.ERROR, "stopped: attempt 3 did not start in time (its worker stopped, "
                             "or had no process free), and no attempts are left")
        for run in (due, grading):
            left = session.get(TestRun, run.id)
            assert (left.status, left.celery_task_id) == (RunStatus.RUNNING, run.celery_task_id)


def _swept_while_claimed(settings, resources):
    """Sweep while the held retry, starting late, claims its run; return the sweep's report."""
    patience = dt.timedelta(seconds=retry_patience_seconds(settings.worker))
    late = _waiting_for_retry(resources, utcnow() - patience - dt.timedelta(seconds=30),
                              "a" * 40)

    def claim(connection):
        with Session(bind=connection) as session:
            assert ledger_runs.claim_run(session, late.id, late.celery_task_id)

    _, report = while_another_process_holds(
        settings, resources.engine, claim,
        lambda: reconcile_ledger(resources, create_celery(settings)), must_wait=True)
    with resources.sessions() as session:
        run = session.get(TestRun, late.id)
    assert (run.status, run.attempts, run.celery_task_id) == (
        RunStatus.RUNNING, 2, late.celery_task_id)
    return report


def test_a_retry_claiming_its_run_as_the_sweep_queues_it_again_keeps_it(service_settings):
    """The held retry starts late, just as the sweep takes it for lost: one of them wins."""
    _, settings = service_settings({"worker": LONG_LIMITS})
    assert _swept_while_claimed(settings, migrated_resources(settings)).retries_lost == 0


def test_on_the_embedded_ledger_a_retry_claiming_its_run_as_the_sweep_runs_keeps_it(
        tmp_path, monkeypatch):
    """The embedded SQLite ledger has no row locks: the sweep writes first instead."""
    settings = embedded_settings(tmp_path, monkeypatch, {"worker": LONG_LIMITS})
    resources = migrated_resources(settings)
    try:
        assert _swept_while_claimed(settings, resources).retries_lost == 0
    finally:
        resources.engine.dispose()
