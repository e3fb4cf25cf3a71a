"""What Flower sees of a real worker: grading tasks' monitoring events, not the report task's."""

from __future__ import annotations

import threading

import pytest

from pipeline.celery_app import REPORT, STUDENT_TESTING, create_celery
from pipeline.dispatch import send_runs
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.processes import wait_for, worker_process

WORKER_EVENTS = ("worker-online", "worker-heartbeat")


class EventLog:
    """Every monitoring event the broker carries while the block runs, as Flower gets them."""

    def __init__(self, celery) -> None:
        self._celery = celery
        self._lock = threading.Lock()
        self._events: list[dict] = []

    def __enter__(self) -> EventLog:
        self._connection = self._celery.connection_for_read()
        self._receiver = self._celery.events.Receiver(self._connection,
                                                      handlers={"*": self._keep})
        self._thread = threading.Thread(target=self._receiver.capture, daemon=True,
                                        kwargs={"limit": None, "timeout": None})
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._receiver.should_stop = True
        self._thread.join(10)
        self._connection.release()

    def _keep(self, event: dict) -> None:
        with self._lock:
            self._events.append(event)

    def of(self, *types: str, uuid: str | None = None) -> list[dict]:
        """Return the events of some types so far, optionally of one task only."""
        with self._lock:
            return [event for event in self._events if event["type"] in types
                    and (uuid is None or event.get("uuid") == uuid)]


@pytest.mark.slow
def test_flower_sees_grading_tasks_and_not_the_report_task(
        tmp_path, service_settings, git_server):
    config, settings = service_settings()
    resources = migrated_resources(settings)
    student_sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 1\n"})
    git_server.commit("staff/reference", {"week1/hello/hello.py": "greeting = 'hello'\n",
                                          "week1/hello/test.yaml": ONE_TEST})
    run = queue_run(resources, commit_sha=student_sha)
    celery = create_celery(settings)
    log = tmp_path / "worker.log"
    with EventLog(celery) as events, worker_process(config, log_path=log):
        wait_for(lambda: events.of(*WORKER_EVENTS), timeout=60,
                 what="the worker's first monitoring event")
        report = celery.send_task(REPORT, args=[[run.id]])
        wait_for(lambda: f"{REPORT}[{report.id}] succeeded" in log.read_text(), timeout=60,
                 what="the report task to finish")
        assert send_runs(celery, resources.sessions, [(run.id, run.celery_task_id)]) == [run.id]
        wait_for(lambda: events.of("task-succeeded", uuid=run.celery_task_id), timeout=60,
                 what="the grading task's task-succeeded event")
    grading = {event["type"] for event in events.of(
        "task-received", "task-started", "task-succeeded", uuid=run.celery_task_id)}
    assert grading == {"task-received", "task-started", "task-succeeded"}
    assert events.of("task-received", uuid=run.celery_task_id)[0]["name"] == STUDENT_TESTING
    assert events.of("task-received", "task-started", "task-succeeded", "task-failed",
                     "task-retried", uuid=report.id) == []
