"""A run whose task meets Celery's time limits while its student's program runs in the sandbox."""

from __future__ import annotations

import pytest

from pipeline.ledger.models import RunStatus
from tests.faults.service import SHORT_LIMITS, deliver_after_start_sweep, fault_service

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
