"""A run whose task meets Celery's time limits while its student's program runs in the sandbox."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from pipeline.ledger.models import RunStatus
from tests.faults.service import SHORT_LIMITS, deliver_after_start_sweep, fault_service, \
    wait_for_tests_stage
from tests.infra.processes import wait_for

pytestmark = pytest.mark.slow
# Seconds the student's program sleeps: past the soft and the hard time limit (SHORT_LIMITS),
# within the sandbox's own limit (180 s).
SLEEP_PAST_THE_LIMITS = 60
SOFT_LIMIT = SHORT_LIMITS["student_testing_soft_time_limit"]
HARD_LIMIT = SHORT_LIMITS["student_testing_time_limit"]


def test_the_soft_time_limit_stops_a_program_still_running_and_ends_its_run(
        tmp_path, service_settings, git_server, monkeypatch):
    """Before, the limit struck in the task's thread while the program ran on in a thread of
    the grading's pool, which the task waited for: the hard limit killed the worker process and
    the run stayed running until the stall sweep, some 36 minutes later by default."""
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": SHORT_LIMITS}) as service:
        with service.worker("worker"):
            sha, run_id = deliver_after_start_sweep(service, {}, seconds=SLEEP_PAST_THE_LIMITS)
            service.wait_ended([run_id], timeout=HARD_LIMIT + 30)
        log = (service.logs / "worker.log").read_text()

        run = service.run(run_id)
        assert (run.status, run.status_reason) == \
            (RunStatus.ERROR, f"stopped by the time limit of {SOFT_LIMIT:g} s")
        assert service.posted_states(sha)[-1] == "failed"
        assert "Hard time limit" not in log


def grading_process(worker_pid: int) -> int:
    """Return the pid of the worker's process running a sandbox now (bwrap's parent), or 0."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != "bwrap":
                continue
            parent = int((comm.parent / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if os.getsid(parent) == worker_pid:
                return parent
        except (OSError, ValueError):  # the process ended meanwhile
            continue
    return 0


def test_a_run_whose_worker_process_the_hard_time_limit_killed_ends_as_error(
        tmp_path, service_settings, git_server, monkeypatch):
    """Before, the worker acknowledged the message of a task its hard time limit killed, and
    nothing recorded the run's end: it stayed running until the stall sweep, some 36 minutes
    later by default. Here the process grading it is stopped (as one stuck in the kernel on a
    disk that does not answer), so that its soft limit cannot stop it."""
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": SHORT_LIMITS}) as service:
        with service.worker("worker") as worker:
            sha, run_id = deliver_after_start_sweep(service, {}, seconds=SLEEP_PAST_THE_LIMITS)
            wait_for_tests_stage(service, run_id)
            grading = wait_for(lambda: grading_process(worker.pid), timeout=30,
                               what="the worker's process to start the sandbox")
            os.kill(grading, signal.SIGSTOP)
            service.wait_ended([run_id], timeout=HARD_LIMIT + 30)

        run = service.run(run_id)
        assert (run.status, run.status_reason) == (RunStatus.ERROR, (
            f"stopped by the hard time limit of {HARD_LIMIT:g} s, as gradehook could not stop "
            f"it at its time limit of {SOFT_LIMIT:g} s; it has been logged"))
        assert service.posted_states(sha)[-1] == "failed"
