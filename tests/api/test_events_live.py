"""The event stream of a real run: a real worker grades real repositories; stages in order."""

from __future__ import annotations

import json

import pytest

from pipeline.dispatch import send_runs
from pipeline.broker_marker import broker_forgot
from pipeline.ledger.runs import STAGES
from pipeline.regrade import GradingTarget, request_grading
from tests.api.world import ASSIGNMENT, build_world
from tests.infra.processes import wait_for, worker_process
from tests.infra.assignments import ONE_TEST

STAGE_ORDER = list(STAGES)
TEST_YAML = ONE_TEST


def parse(chunk) -> tuple[str, dict] | None:
    text = chunk.decode() if isinstance(chunk, bytes) else chunk
    if text.startswith(":"):
        return None
    name, data = text.strip().split("\n")
    return name.removeprefix("event: "), json.loads(data.removeprefix("data: "))


@pytest.mark.slow
def test_the_stream_follows_a_real_run_stage_by_stage(tmp_path, service_settings,
                                                      gitlab_standin, redis_db, git_server):
    world = build_world(service_settings, gitlab_standin, redis_db,
                        {"api": {"event_stream_max_seconds": 60.0}})
    hello = f"{ASSIGNMENT}/hello.py"
    git_server.commit("staff/reference", {hello: "greeting = 'hello'\n",
                                          f"{ASSIGNMENT}/test.yaml": TEST_YAML})
    sha = git_server.commit("students/alice", {hello: "greeting = 'hello'\n"})
    course = world.settings.courses[0]
    run, _ = request_grading(world.resources.sessions, GradingTarget(
        course=course, project_path="students/alice", commit_sha=sha, assignment=ASSIGNMENT),
        kind="api")
    celery = world.app.extensions["gradehook"].celery
    # The broker is known from here on: the worker's first sweep must not take this run's
    # absence from the fresh Redis database as a lost message and send it before the test does.
    broker_forgot(world.settings)

    with worker_process(world.config, log_path=tmp_path / "worker.log"):
        wait_for(lambda: world.get("/api/tests-celery/health").status_code == 200, timeout=60,
                 what="the worker to come up")
        response = world.get(f"/api/tasks/{run.celery_task_id}/events", buffered=False)
        chunks = iter(response.response)
        first = parse(next(chunks))
        send_runs(celery, world.resources.sessions, [(run.id, run.celery_task_id)])
        events = [first] + [e for e in map(parse, chunks) if e is not None]
        response.close()

    final = world.run(run.id)
    names = [name for name, _ in events]
    stages = [data["stage"] for _, data in events[:-1]]
    assert first == ("progress", {"task_id": run.celery_task_id, "state": "PENDING",
                                  "ready": False, "run_id": run.id, "status": "queued",
                                  "stage": "queued", "percentage": 0, "reason": None,
                                  "result": None})
    assert names == ["progress"] * (len(events) - 1) + ["end"]
    assert stages == sorted(stages, key=STAGE_ORDER.index)  # a stage may report more progress
    assert list(dict.fromkeys(stages)) == \
        ["queued", "init", "clone", "environment", "tests", "results", "done"]
    percentages = [data["percentage"] for _, data in events]
    assert percentages == sorted(percentages) and percentages[-1] == 100
    assert final.status.value == "passed"
    assert events[-1][1]["status"] == "passed" and events[-1][1]["ready"] is True
