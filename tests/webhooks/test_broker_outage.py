"""Redis stopped while a push arrives: the answer is 202, and the run is graded once it is back."""

from __future__ import annotations

import json

import pytest

from pipeline.ledger.models import TestRun
from tests.infra.ledger import migrated_resources
from tests.infra.processes import wait_for, worker_process
from tests.infra.servers import PrivateRedis
from tests.webhooks.deliveries import headers_for, payload_of
from webhooks.app import create_app

SECRET = "outage-secret"


@pytest.mark.slow
def test_push_during_redis_outage_is_processed_when_redis_returns(
        tmp_path, service_settings, git_server, monkeypatch):
    broker = PrivateRedis(tmp_path)
    broker.start()
    monkeypatch.setenv("REDIS_PORT", str(broker.port))
    monkeypatch.setenv("REDIS_DB", "0")
    payload = payload_of("push_hook__assignment_commits")
    project = payload["project"]["path_with_namespace"]
    config, settings = service_settings({
        "gitlab": {"webhook_secret": SECRET},
        "worker": {"reconcile_interval_seconds": 1.0},
        "courses": [{"name": "prog1", "student_projects": ["prog1-2026/students/"],
                     "reference_project": "prog1-2026/reference",
                     "discover_assignments": False,
                     "assignments": [{"directory": "week1/assignment1"}]}]})
    resources = migrated_resources(settings)
    sha = git_server.commit(project, {"week1/assignment1/main.py": "print(1)\n"})
    git_server.commit("prog1-2026/reference", {"week1/assignment1/main.py": "print(1)\n"})
    payload.update(after=sha, checkout_sha=sha)
    try:
        broker.stop()
        response = create_app(settings).test_client().post(
            "/webhooks/gitlab", data=json.dumps(payload).encode(),
            headers={**headers_for("push_hook__assignment_commits"), "X-Gitlab-Token": SECRET})
        assert response.status_code == 202
        run_id, = response.get_json()["runs"]
        with resources.sessions() as session:
            assert session.get(TestRun, run_id).sent_at is None
        broker.start()
        with worker_process(config, log_path=tmp_path / "worker.log"):
            def finished():
                with resources.sessions() as session:
                    return session.get(TestRun, run_id).finished_at
            wait_for(finished, timeout=90, what="the reconciler to send the run and a worker "
                                                "to grade it")
    finally:
        broker.stop()
    with resources.sessions() as session:
        run = session.get(TestRun, run_id)
        assert run.attempts == 1 and run.cloned_at is not None
