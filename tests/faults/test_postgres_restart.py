"""PostgreSQL restarted while workers grade: they recover, and nothing is lost or graded twice;
stopped while a worker shows GitLab a run's end: the end is shown once it is back."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import threading
import urllib.error

import pytest

from pipeline.broker_marker import RETRY_MARKER_PREFIX
from pipeline.celery_app import create_celery, retry_patience_seconds, stall_patience_seconds
from pipeline.ledger.models import RunStatus, utcnow
from pipeline.reconcile import ReconcileReport, reconcile_ledger
from tests.e2e.scenario import STUDENT
from tests.infra.servers import PrivatePostgres
from tests.faults.service import RECONCILE_EVERY_SECOND, SHORT_LIMITS, FaultService, \
    assert_each_graded_once, deliver_after_start_sweep, deliver_numbered, fault_service, \
    final_status_held, solution, wait_for_tests_stage
from tests.infra.processes import wait_for
from tests.support.gitlab_standin import FaultPlan

pytestmark = pytest.mark.slow
# What a worker logs when the database is away: Celery storing a task state, or our retry.
OUTAGE_MARKERS = ("Failed operation _store_result", "failed, retrying", "met the database away")
# The tests waiting this long run no sweep but the one at the worker's start: the worker itself
# shows the end.
SHOWN_WITHIN_SECONDS = 60
# Time limits of a try that outlast a worker stopped past the retry's patience: the stop may
# catch a try anywhere (the task tries again every second while the database is away, and
# notes it before it sends the try's message), and a try whose soft limit passed meanwhile
# is struck by it at once when the worker goes on, ending the run or, inside the sending,
# losing its next try.
OUTLASTS_THE_STOP = {"student_testing_soft_time_limit": 300.0,
                     "student_testing_time_limit": 310.0}


def met_outage(log) -> bool:
    """Tell whether a worker's log shows it met the database away."""
    text = log.read_text()
    return any(marker in text for marker in OUTAGE_MARKERS)


def swept_past_the_stall_cutoff(service: FaultService, monkeypatch) -> ReconcileReport:
    """Sweep the ledger (once the database is back) as the reconciler would once the stall
    sweep's cutoff has passed: the clock moved on by its patience (stall_patience_seconds), as
    an outage of about 36 minutes leaves it under the default limits."""
    service.scenario.resources.engine.dispose()
    moved = utcnow() + dt.timedelta(seconds=stall_patience_seconds(service.settings.worker))
    monkeypatch.setattr("pipeline.reconcile.utcnow", lambda: moved)
    return reconcile_ledger(service.scenario.resources, create_celery(service.settings))


@pytest.fixture
def private_postgres():
    """A PostgreSQL cluster of this test's own, to crash and start again."""
    cluster = PrivatePostgres()
    cluster.create()
    yield cluster
    cluster.remove()


def test_workers_recover_from_a_postgres_restart_and_grade_each_delivery_once(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": {**RECONCILE_EVERY_SECOND, "max_attempts": 3}},
                       postgres=private_postgres) as service:
        deliveries: dict[int, tuple[str, str]] = {}

        def deliver(index: int) -> None:
            deliver_numbered(service, deliveries, index, seconds=2)

        with service.worker("worker", concurrency=2), service.beat():
            for index in range(3):
                deliver(index)
            first_run = deliveries[0][1]
            wait_for(lambda: service.run(first_run).stage == "tests", timeout=60,
                     what="a run to be graded in its sandbox")
            private_postgres.stop()
            with pytest.raises(urllib.error.HTTPError) as refused:
                service.scenario.push("student-3", {"late.txt": "3\n"}, key="refused-3")
            assert refused.value.code == 503
            wait_for(lambda: met_outage(service.logs / "worker.log"), timeout=60,
                     what="a worker to meet the stopped database")
            private_postgres.start()
            # The test reads the ledger too: its own pooled connections were cut like the
            # workers', and an immediate restart of this small cluster can be over before the
            # pool's idle ping would notice them.
            service.scenario.resources.engine.dispose()
            for index in range(3, 6):
                deliver(index)
            service.wait_ended([run_id for _, run_id in deliveries.values()], timeout=150)

        assert_each_graded_once(service, deliveries)


def test_a_run_whose_end_met_the_database_away_is_shown_when_it_is_back(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    """Before, the worker's next attempt found the run ended and did nothing: GitLab showed it
    running for ten minutes after it was graded, until a reconciler sweep reported it."""
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": SHORT_LIMITS}, postgres=private_postgres) as service:
        deliveries: dict[int, tuple[str, str]] = {}
        log = service.logs / "worker.log"
        with service.worker("worker"):
            sha, run_id = deliver_after_start_sweep(service, deliveries, seconds=2)
            # GitLab holds the final status while the database stops, then fails it.
            with final_status_held(service, run_id):
                private_postgres.stop()
            wait_for(lambda: "attempt 1 met the database away" in log.read_text(), timeout=60,
                     what="the worker to meet the stopped database")
            private_postgres.start()
            service.scenario.resources.engine.dispose()
            service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)

        assert_each_graded_once(service, deliveries)
        assert service.posted_states(sha) == ["pending", "running", "success"]


def test_a_run_meeting_the_database_away_past_its_attempts_is_graded_once_it_is_back(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    """Before, every try that met the database away used up an attempt: an outage longer than
    their back-off ended the run as error ('gave up after 2 attempts: the database failed'),
    or, the database still away at the last, left it running until the stall sweep. And the
    ledger counted the wait that came past the run's claim as an attempt (attempts 2), so a run
    that lost its worker or a retry after a few such outages ended as 'too often'."""
    most = SHORT_LIMITS["max_attempts"]
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": {**SHORT_LIMITS, "database_wait_seconds": 0.5}},
                       postgres=private_postgres) as service:
        deliveries: dict[int, tuple[str, str]] = {}
        log = service.logs / "worker.log"
        with service.worker("worker"):
            sha, run_id = deliver_after_start_sweep(service, deliveries, seconds=2)
            wait_for_tests_stage(service, run_id)
            private_postgres.stop()
            tries = re.compile(rf"run {run_id}: attempt \d+ (failed|met the database away)")
            wait_for(lambda: len(tries.findall(log.read_text())) > most, timeout=60,
                     what=f"the run to meet the database away more than {most} times")
            private_postgres.start()
            service.scenario.resources.engine.dispose()
            service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)

        assert_each_graded_once(service, deliveries)
        assert service.posted_states(sha) == ["pending", "running", "success"]
        assert service.run(run_id).attempts == 1


def test_a_retry_waiting_for_the_database_longer_than_its_patience_is_not_taken_for_lost(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    """Before, a run waiting for a git fault's retry as PostgreSQL went away for longer than
    the retry's patience (retry_patience_seconds) was queued again by the first sweep after
    the database came back, before the retry, waiting for the database, started: 'queued
    again: attempt 2 did not start in time', an attempt spent for nothing."""
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": SHORT_LIMITS}, postgres=private_postgres) as service:
        patience = dt.timedelta(seconds=retry_patience_seconds(service.settings.worker))
        log = service.logs / "worker.log"
        sha, answer = service.deliver("work", solution("hello"), key="k1")
        run_id, = answer["runs"]
        student = git_server.bare(STUDENT)
        away = student.with_name("away.git")
        student.rename(away)  # the first attempt's fetch fails: a fault of ours, retried
        # Two processes: the sweep at the worker's start, meeting the database away as it
        # stores its result, holds one for a while.
        with service.worker("worker", concurrency=2):
            retry_sent = wait_for(lambda: (run := service.run(run_id)).status_reason is not None
                                  and run.sent_at, timeout=60, interval=0.02,
                                  what="the run's first attempt to fail and its retry to be sent")
            private_postgres.stop()
            away.rename(student)
            wait_for(lambda: f"run {run_id}: attempt 2 met the database away" in log.read_text()
                     and utcnow() > retry_sent + patience, timeout=patience.total_seconds() + 60,
                     what="the retry to wait for the database past its patience")
            private_postgres.start()
            service.scenario.resources.engine.dispose()
            report = reconcile_ledger(service.scenario.resources,
                                      create_celery(service.settings))
            service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)

        assert report.retries_lost == 0
        run = service.run(run_id)
        assert (run.status, run.attempts) == (RunStatus.PASSED, 2)
        assert service.posted_states(sha)[-1] == "success"


def test_a_run_waiting_for_the_database_past_the_stall_cutoff_is_graded_not_ended(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    """Before, the first sweep after an outage longer than the stall sweep's cutoff (about 36
    minutes by default) ended a run whose task was waiting for the database, if it came before
    the task's next try: 'stopped: its worker was lost or the hard time limit of 20 s was
    exceeded', an error of ours though the run was fine."""
    # The task's next try comes 10 s at the earliest after it met the database away: the
    # sweep comes before the run could be graded.
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": {**SHORT_LIMITS, "database_wait_seconds": 20.0}},
                       postgres=private_postgres) as service:
        deliveries: dict[int, tuple[str, str]] = {}
        log = service.logs / "worker.log"
        with service.worker("worker"):
            sha, run_id = deliver_after_start_sweep(service, deliveries, seconds=2)
            wait_for_tests_stage(service, run_id)
            private_postgres.stop()
            wait_for(lambda: f"run {run_id}: attempt 1 met the database away" in log.read_text(),
                     timeout=60, what="the run to wait for the database")
            private_postgres.start()
            report = swept_past_the_stall_cutoff(service, monkeypatch)
            service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)

        assert report.stalled_ended == 0
        assert_each_graded_once(service, deliveries)
        assert service.run(run_id).attempts == 1


def test_a_run_waiting_for_the_database_to_record_its_end_keeps_its_reason_past_the_cutoff(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    """Before, a task waiting for the database only to record its run's end (here its time
    limit) noted nothing in the broker, so the first sweep after an outage longer than the stall
    sweep's cutoff took the run for stalled: 'stopped: its worker was lost or the hard time limit
    of 20 s was exceeded', where the student should read the limit that stopped it."""
    soft_limit = SHORT_LIMITS["student_testing_soft_time_limit"]
    # GitLab holds the status showing the run running (the second a run's commit gets, after
    # pending) until the time limit strikes in it. The task's next try comes 10 s at the
    # earliest after its end met the database away: the sweep comes before it.
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": {**SHORT_LIMITS, "database_wait_seconds": 20.0},
                              "gitlab": {"request_timeout_seconds": soft_limit * 4}},
                       postgres=private_postgres) as service:
        log = service.logs / "worker.log"
        held = threading.Event()
        running = service.gitlab.inject_faults(FaultPlan(
            status=502, every=2, limit=1, hold=held, method="POST", path_pattern=r"/statuses/"))
        try:
            with service.worker("worker"):
                sha, answer = service.deliver("work", solution("hello"), key="k1")
                run_id, = answer["runs"]
                assert running.arrived.wait(60), "the run was never shown running"
                private_postgres.stop()
                wait_for(lambda: f"run {run_id}: recording its end met the database away"
                         in log.read_text(), timeout=60,
                         what="the run's end to wait for the database")
                private_postgres.start()
                report = swept_past_the_stall_cutoff(service, monkeypatch)
                service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)
        finally:
            held.set()

        assert report.stalled_ended == 0
        run = service.run(run_id)
        assert (run.status, run.status_reason) == \
            (RunStatus.ERROR, f"stopped by the time limit of {soft_limit:g} s")
        assert service.posted_states(sha)[-1] == "failed"


def test_a_run_whose_next_try_waits_for_a_free_process_after_a_long_outage_is_graded(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    """Before, once the database was back after an outage longer than the stall sweep's cutoff,
    a run whose task's next try waited for a free process of its worker for longer than the
    retry's patience had no note left in the broker, and the sweep ended it as error: 'stopped:
    its worker was lost or the hard time limit of 310 s was exceeded'. At a deadline every
    process grades the runs that waited; here the worker is stopped as long."""
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": {**SHORT_LIMITS, **OUTLASTS_THE_STOP,
                                         "database_wait_seconds": 1.0}},
                       postgres=private_postgres) as service:
        deliveries: dict[int, tuple[str, str]] = {}
        broker = service.broker.client()
        log = service.logs / "worker.log"
        with service.worker("worker") as worker:
            sha, run_id = deliver_after_start_sweep(service, deliveries, seconds=2)
            task_id = service.run(run_id).celery_task_id
            coming = RETRY_MARKER_PREFIX + task_id
            wait_for_tests_stage(service, run_id)
            private_postgres.stop()
            # The task notes its coming try before it sends the try's message; Celery logs
            # the retry once it is sent.
            wait_for(lambda: broker.exists(coming)
                     and f"student_testing[{task_id}] retry:" in log.read_text(), timeout=60,
                     what="the run's task to note that it tries again soon and send the try")
            os.killpg(worker.pid, signal.SIGSTOP)
            try:
                private_postgres.start()
                wait_for(lambda: not broker.exists(coming), timeout=60,
                         what="the note of the coming try to lapse")
                report = swept_past_the_stall_cutoff(service, monkeypatch)
            finally:
                os.killpg(worker.pid, signal.SIGCONT)
            service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)

        assert report.stalled_ended == 0
        assert_each_graded_once(service, deliveries)
        assert service.run(run_id).attempts == 1
