"""GET /api/tasks/<id>, its event stream and the workers' status, without a worker."""

from __future__ import annotations

import datetime as dt
import json

from celery import states
from sqlalchemy import update

from pipeline.celery_app import create_celery
from pipeline.dispatch import new_task_id
from pipeline.ledger.db import single_statements, transaction
from pipeline.ledger.models import RunStatus, Submission, TestRun, utcnow
from pipeline.ledger.runs import claim_run
from tests.api.world import ASSIGNMENT, SHA_A, SHA_B, STAFF_TOKEN, bearer, staff_digest
from tests.infra.ledger import end_run, queue_run
from tests.infra.ports import free_port
from webhooks.api.events import task_events
from webhooks.api.task_state import TaskProgress, mark_sent, task_progress
from webhooks.app import create_app


def advance(world, run_id, stage, progress, **values):
    with transaction(world.resources.sessions) as session:
        run = session.get(TestRun, run_id)
        run.status, run.stage, run.progress = RunStatus.RUNNING, stage, progress
        for name, value in values.items():
            setattr(run, name, value)


def read_events(response) -> list[tuple[str, dict | None]]:
    events = []
    for chunk in response.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith(":"):
            continue
        name, data = text.strip().split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_a_queued_run_is_pending_at_zero(world):
    run = queue_run(world.resources, commit_sha=SHA_A)

    answer = world.get(f"/api/tasks/{run.celery_task_id}").get_json()

    assert answer == {"task_id": run.celery_task_id, "state": "PENDING", "ready": False,
                      "run_id": run.id, "status": "queued", "stage": "queued",
                      "percentage": 0, "reason": None, "result": None}


def test_a_running_runs_task_state_follows_the_ledger_not_celery(world):
    run = queue_run(world.resources, commit_sha=SHA_A)
    # Whatever Celery's result backend holds for the task id, the run's task follows the run.
    world.app.extensions["gradehook"].celery.backend.store_result(
        run.celery_task_id, {"error": "stale"}, "FAILURE")
    advance(world, run.id, "init", 10, started_at=utcnow())
    started = world.get(f"/api/tasks/{run.celery_task_id}").get_json()
    advance(world, run.id, "tests", 50, cloned_at=utcnow())
    testing = world.get(f"/api/tasks/{run.celery_task_id}").get_json()

    assert (started["state"], started["ready"], started["stage"], started["percentage"]) == \
        ("STARTED", False, "init", 10)
    assert (testing["state"], testing["ready"], testing["status"], testing["stage"],
            testing["percentage"], testing["result"]) == \
        ("PROGRESS", False, "running", "tests", 50, None)


def test_a_run_waiting_for_another_attempt_is_retry_until_claimed_again(world):
    run = queue_run(world.resources, commit_sha=SHA_A)
    advance(world, run.id, "clone", 20, started_at=utcnow(),
            status_reason="attempt 1 failed (git); trying again in 5 s")
    waiting = world.get(f"/api/tasks/{run.celery_task_id}").get_json()
    with single_statements(world.resources.sessions) as session:
        claimed = claim_run(session, run.id, run.celery_task_id)
    again = world.get(f"/api/tasks/{run.celery_task_id}").get_json()

    assert (waiting["state"], waiting["ready"], waiting["reason"]) == \
        ("RETRY", False, "attempt 1 failed (git); trying again in 5 s")
    assert claimed.status_reason is None
    assert (again["state"], again["stage"], again["reason"]) == ("STARTED", "init", None)


def test_a_finished_run_is_ready_with_its_reason(world):
    run = queue_run(world.resources, commit_sha=SHA_A)
    end_run(world.resources, run.id, RunStatus.ERROR, status_reason="course error: x")

    answer = world.get(f"/api/tasks/{run.celery_task_id}").get_json()

    assert (answer["state"], answer["ready"], answer["status"], answer["reason"]) == \
        ("SUCCESS", True, "error", "course error: x")


def test_a_task_that_is_not_a_run_is_shown_to_staff_only(world):
    world.app.extensions["gradehook"].celery.backend.store_result(
        "regrade-task-1", {"runs": ["r1"], "projects": 1}, "SUCCESS")

    staff = world.get("/api/tasks/regrade-task-1")
    student = world.get("/api/tasks/regrade-task-1", token=world.alice.token)

    assert staff.get_json() == {"task_id": "regrade-task-1", "state": "SUCCESS", "ready": True,
                                "run_id": None, "status": None, "stage": None,
                                "percentage": None, "reason": None,
                                "result": {"runs": ["r1"], "projects": 1}}
    assert student.status_code == 404


def test_a_submissions_task_is_shown_to_the_students_of_its_project(world):
    answer = world.post("/api/tests-celery", {
        "directory": ASSIGNMENT, "version_identifier": SHA_A, "submit": True},
        token=world.alice.token).get_json()
    task_id = answer["submission_task_id"]

    waiting = world.get(f"/api/tasks/{task_id}", token=world.alice.token)
    other_student = world.get(f"/api/tasks/{task_id}", token=world.bob.token)
    with transaction(world.resources.sessions) as session:
        session.execute(update(Submission).where(Submission.celery_task_id == task_id)
                        .values(outcome="refused", reason="handed in after the deadline"))
    decided = world.get(f"/api/tasks/{task_id}", token=world.alice.token).get_json()

    assert waiting.status_code == 200 and other_student.status_code == 403
    submission_id = waiting.get_json()["result"]["submission_id"]
    assert waiting.get_json() == {
        "task_id": task_id, "state": "PENDING", "ready": False, "run_id": answer["id"],
        "status": None, "stage": None, "percentage": None, "reason": None,
        "result": {"submission_id": submission_id, "outcome": "pending", "late": False}}
    assert (decided["state"], decided["ready"], decided["reason"], decided["result"]) == (
        "SUCCESS", True, "handed in after the deadline",
        {"submission_id": submission_id, "outcome": "refused", "late": False})


def test_unknown_and_malformed_task_ids_are_404(world):
    assert world.get("/api/tasks/0f0e0d0c-0000-4000-8000-000000000000").status_code == 404
    assert world.get("/api/tasks/has%20space").status_code == 404
    assert world.get("/api/tasks/" + "a" * 65).status_code == 404


def test_the_event_stream_replays_the_stages_a_finished_run_went_through(world):
    run = queue_run(world.resources, commit_sha=SHA_B)
    advance(world, run.id, "results", 80, started_at=utcnow(), cloned_at=utcnow(),
            tested_at=utcnow())
    end_run(world.resources, run.id, RunStatus.PASSED)

    response = world.get(f"/api/tasks/{run.celery_task_id}/events", buffered=False)
    events = read_events(response)
    response.close()

    assert response.mimetype == "text/event-stream"
    assert [(name, data["stage"], data["percentage"]) for name, data in events] == [
        ("progress", "queued", 0), ("progress", "init", 10), ("progress", "clone", 20),
        ("progress", "environment", 40), ("progress", "tests", 50),
        ("progress", "results", 80), ("progress", "done", 100), ("end", "done", 100)]
    assert events[-1][1]["status"] == "passed" and events[-1][1]["ready"] is True


def test_replayed_stages_show_the_task_in_progress_and_only_the_end_is_final(world):
    run = queue_run(world.resources, commit_sha=SHA_B)
    advance(world, run.id, "clone", 20, started_at=utcnow())
    end_run(world.resources, run.id, RunStatus.FAILED, status_reason="Some or all tests failed")

    response = world.get(f"/api/tasks/{run.celery_task_id}/events", buffered=False)
    events = read_events(response)
    response.close()

    shown = [(name, data["state"], data["ready"], data["status"], data["stage"],
              data["percentage"], data["reason"]) for name, data in events]
    assert shown == [
        ("progress", "PENDING", False, "queued", "queued", 0, None),
        ("progress", "STARTED", False, "running", "init", 10, None),
        ("progress", "SUCCESS", True, "failed", "done", 100, "Some or all tests failed"),
        ("end", "SUCCESS", True, "failed", "done", 100, "Some or all tests failed")]


def test_a_running_task_replays_the_stages_it_passed_as_in_progress(world):
    run = queue_run(world.resources, commit_sha=SHA_A)
    advance(world, run.id, "tests", 55, started_at=utcnow(), cloned_at=utcnow())
    progress = task_progress(world.resources.sessions, world.app.extensions["gradehook"].celery,
                             run.celery_task_id, staff=True)

    events = task_events(lambda: progress, poll_seconds=0, max_seconds=0)
    shown = [json.loads(next(events).split("data: ")[1]) for _ in progress.reached]

    assert [(e["state"], e["status"], e["stage"], e["percentage"], e["ready"]) for e in shown] == [
        ("PENDING", "queued", "queued", 0, False), ("STARTED", "running", "init", 10, False),
        ("PROGRESS", "running", "clone", 20, False),
        ("PROGRESS", "running", "environment", 40, False),
        ("PROGRESS", "running", "tests", 55, False)]


def test_a_run_that_ended_early_shows_only_the_stages_it_reached(world):
    run = queue_run(world.resources, commit_sha=SHA_B)
    advance(world, run.id, "clone", 20, started_at=utcnow())
    end_run(world.resources, run.id, RunStatus.ERROR)

    response = world.get(f"/api/tasks/{run.celery_task_id}/events", buffered=False)
    stages = [data["stage"] for _, data in read_events(response)]
    response.close()

    assert stages == ["queued", "init", "done", "done"]


def test_event_streams_are_bounded_per_process(world):
    run = queue_run(world.resources, commit_sha=SHA_A)
    url = f"/api/tasks/{run.celery_task_id}/events"
    slots = max(1, world.settings.server.web_threads // 2)
    open_streams = [world.get(url, buffered=False) for _ in range(slots)]

    refused = world.get(url)
    for response in open_streams:
        response.close()
    accepted = world.get(url, buffered=False)
    accepted.close()

    assert all(r.status_code == 200 for r in open_streams)
    assert refused.status_code == 503
    assert accepted.status_code == 200


def test_the_stream_times_out_and_keeps_quiet_streams_alive():
    now = [0.0]
    waiting = TaskProgress(task_id="t", state="PENDING", ready=False, run_id="r",
                           stage="queued", percentage=0, reached=("queued",))

    def sleep(seconds):
        now[0] += seconds

    events = list(task_events(lambda: waiting, poll_seconds=5, max_seconds=40,
                              clock=lambda: now[0], sleep=sleep))

    assert [e.split("\n")[0] for e in events] == [
        "event: progress", ": keep-alive", ": keep-alive", "event: timeout"]


def test_workers_status_without_workers_is_an_empty_list(world):
    response = world.get("/api/tasks/workers/status")

    assert response.status_code == 200
    assert response.get_json() == {
        "workers": [], "timeout_seconds": 0.3,
        "runs": {"queued": 0, "running": 0, "oldest_queued_seconds": None}}


def test_workers_status_says_how_many_runs_wait_and_run_as_health_does(world):
    """Before, it listed the workers alone: whether they kept up with the runs waiting was
    only in health and `gradehook worker status`."""
    before = utcnow()
    oldest = queue_run(world.resources, commit_sha=SHA_A,
                       queued_at=before - dt.timedelta(minutes=20))
    queue_run(world.resources, commit_sha=SHA_B, queued_at=before - dt.timedelta(minutes=5))
    queue_run(world.resources, commit_sha="c" * 40, status=RunStatus.RUNNING)
    end_run(world.resources, queue_run(world.resources, commit_sha="d" * 40).id,
            RunStatus.PASSED)

    runs = world.get("/api/tasks/workers/status").get_json()["runs"]
    after = utcnow()

    waited = runs.pop("oldest_queued_seconds")
    assert runs == {"queued": 2, "running": 1}
    assert int((before - oldest.queued_at).total_seconds()) <= waited \
        <= int((after - oldest.queued_at).total_seconds())


def test_workers_status_with_the_database_down_shows_the_workers_and_no_backlog(
        service_settings, monkeypatch):
    """The backlog is read as health reads it: a ledger out of reach leaves the workers'
    answer and says nothing of the runs (null), never a 500."""
    monkeypatch.setenv("POSTGRES_PORT", str(free_port()))
    _, settings = service_settings({"api": {"staff_token_hashes": staff_digest()}})

    client = create_app(settings).test_client()
    response = client.get("/api/tasks/workers/status", headers=bearer(STAFF_TOKEN))

    assert response.status_code == 200
    assert response.get_json()["runs"] is None and response.get_json()["workers"] == []


def test_a_task_marked_sent_reads_pending_until_its_worker_stores_a_state(world):
    """The mark lives in Celery's result backend, where the worker's states replace it."""
    celery = create_celery(world.settings)
    task_id = new_task_id()
    mark_sent(celery, task_id)
    sent = world.get(f"/api/tasks/{task_id}").get_json()
    assert (sent["state"], sent["ready"]) == ("PENDING", False)

    celery.backend.store_result(task_id, {"queued": 2}, states.SUCCESS)
    done = world.get(f"/api/tasks/{task_id}").get_json()
    assert (done["state"], done["ready"], done["result"]) == ("SUCCESS", True, {"queued": 2})
