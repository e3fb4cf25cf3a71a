"""The embedded default: `gradehook run` serves and grades with no Redis or PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from pipeline.celery_app import create_celery
from pipeline.config import load_settings
from pipeline.dispatch import send_runs
from pipeline.ledger.models import TestRun
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.ports import free_port
from tests.infra.processes import alive, descendants, gradehook_argv, service_health, \
    stop_process_group, wait_for, write_config
from tests.api.world import STAFF_TOKEN, staff_digest
from tests.infra.services import SERVICE_VARIABLES


@pytest.mark.slow
def test_run_serves_grades_and_stops_on_ctrl_c(tmp_path, git_server, monkeypatch):
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, {
        "data_dir": str(tmp_path / "data"), "gitlab": {"clone_base": git_server.base_url},
        "api": {"staff_token_hashes": staff_digest()}})
    port = free_port()
    process = subprocess.Popen(gradehook_argv(config, "run", "--port", str(port)),
                               stdout=open(tmp_path / "run.log", "wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        health = wait_for(lambda: (h := service_health(port)) and h["workers"] >= 1 and h,
                          timeout=90, what="embedded service to be healthy")
        assert health["status"] == "healthy"
        assert health["broker"] == "filesystem" and health["broker_status"] == "up"

        settings = load_settings(config)
        assert settings.embedded and settings.database_url.startswith("sqlite")
        resources = migrated_resources(settings)
        sha = git_server.commit("students/alice", {"week1/hello/hello.py": "print(1)\n"})
        git_server.commit("staff/reference", {"week1/hello/hello.py": "print(1)\n"})
        run = queue_run(resources, commit_sha=sha)
        send_runs(create_celery(settings), resources.sessions, [(run.id, run.celery_task_id)])

        def finished():
            with resources.sessions() as session:
                return session.get(TestRun, run.id).finished_at
        wait_for(finished, timeout=60, what="embedded worker to finish the run")
        # Links name the port served (--port), not the configured default.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/runs/{run.id}",
                                         headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer)["result_url"] == \
                f"http://127.0.0.1:{port}/results/{run.id}"

        family = descendants(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert process.wait(timeout=45) == 0
        assert [pid for pid in family if alive(pid)] == []
    finally:
        stop_process_group(process)
    # Ctrl-C reached gunicorn and Celery once, through `gradehook run`: neither took a second
    # signal for an order to stop at once (gunicorn's SIGKILLed workers, Celery's cold shutdown).
    log = (tmp_path / "run.log").read_text()
    assert log.count("Handling signal:") == 1 and log.count("Warm shutdown (MainProcess)") == 1
    assert "gradehook: stopping (Ctrl-C again stops at once)\n" in log
    for stopped_at_once in ("Cold shutdown", "SIGKILL", "exited with 'signal"):
        assert stopped_at_once not in log
