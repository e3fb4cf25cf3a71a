"""A commit status GitLab takes long to accept does not hold up the webhook answers."""

from __future__ import annotations

import threading

import pytest

from tests.e2e.scenario import solution
from tests.faults.service import fault_service
from tests.support.gitlab_standin import HOLD_LIMIT_SECONDS, FaultPlan

pytestmark = pytest.mark.slow


def test_a_push_supersedes_a_run_whose_pending_status_gitlab_still_holds(
        tmp_path, service_settings, git_server, monkeypatch):
    # GitLab answers within the client's timeout, however long it takes.
    patient = {"gitlab": {"request_timeout_seconds": HOLD_LIMIT_SECONDS}}
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra=patient) as service:
        release = threading.Event()
        held = service.gitlab.inject_faults(FaultPlan(
            status=None, every=1, limit=1, method="POST", path_pattern=r"/statuses/",
            hold=release))
        try:
            with service.worker("worker"):
                first_sha, first = service.deliver("work", solution("hi"), key="first")
                # The only worker process is in the report task, posting the first run's
                # pending status, which the stand-in holds: the run stays queued meanwhile.
                assert held.arrived.wait(60), "the pending status was never posted"
                # The push answers while GitLab still holds that post (before, the intake
                # waited for the run's row, locked by the report until GitLab answered).
                _sha, second = service.deliver("work", solution("hello"), key="second",
                                               timeout=20)
                release.set()
                service.wait_ended([*first["runs"], *second["runs"]], timeout=120)
        finally:
            release.set()
        assert second["superseded"] == first["runs"]
        assert service.posted_states(first_sha) == ["pending", "canceled"]
