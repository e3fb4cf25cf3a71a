"""A commit status GitLab takes long to accept: webhook answers go on, and nothing is lost."""

from __future__ import annotations

import threading

import pytest

from gitlab_client import UnansweredGitLabError
from pipeline.feedback import sync_commit_status
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
                # To a branch GitLab has: the run of the assignment the push changed is shown
                # as it is queued (a new branch's runs are shown once their diff is made).
                first_sha, first = service.deliver("main", solution("hi"), key="first")
                # The only worker process is in the report task, posting the first run's
                # pending status, which the stand-in holds: the run stays queued meanwhile.
                assert held.arrived.wait(60), "the pending status was never posted"
                # The push answers while GitLab still holds that post (before, the intake
                # waited for the run's row, locked by the report until GitLab answered).
                _sha, second = service.deliver("main", solution("hello"), key="second",
                                               timeout=20)
                release.set()
                service.wait_ended([*first["runs"], *second["runs"]], timeout=120)
        finally:
            release.set()
        assert second["superseded"] == first["runs"]
        assert service.posted_states(first_sha) == ["pending", "canceled"]


def test_a_pending_status_gitlab_took_without_answering_is_withdrawn_when_superseded(
        tmp_path, service_settings, git_server, monkeypatch):
    impatient = {"gitlab": {"request_timeout_seconds": 1}}
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra=impatient) as service:
        resources = service.scenario.resources
        release = threading.Event()
        held = service.gitlab.inject_faults(FaultPlan(
            status=None, every=1, limit=1, method="POST", path_pattern=r"/statuses/",
            hold=release))
        # No worker: the run stays queued, and its pending status is posted from here.
        # To a branch GitLab has, so that the queued run is shown (see above).
        first_sha, first = service.deliver("main", solution("hi"), key="first")
        run_id, = first["runs"]
        try:
            with pytest.raises(UnansweredGitLabError):
                sync_commit_status(resources, run_id)
            assert held.arrived.is_set()
        finally:
            release.set()
        # GitLab carried the post out after gradehook stopped waiting for the answer.
        assert service.gitlab.wait_for(lambda: service.posted_states(first_sha) == ["pending"],
                                       timeout=30)
        _sha, second = service.deliver("main", solution("hello"), key="second")
        assert second["superseded"] == [run_id]
        sync_commit_status(resources, run_id)
        assert service.posted_states(first_sha) == ["pending", "canceled"]
