"""A task whose next try the soft time limit cuts short as Celery sends it ends by the limit."""

from __future__ import annotations

import base64
import json

import kombu
import pytest
from celery.app.trace import build_tracer
from celery.exceptions import SoftTimeLimitExceeded
from celery.states import SUCCESS

from pipeline.celery_app import STUDENT_TESTING, create_celery
from pipeline.ledger.models import RunStatus, TestRun
from pipeline.repos import RepositoryError
from pipeline.tasks.retry import TIME_LIMIT_REASON, drive
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import end_meeting_the_database_away, migrated_resources, queue_run
from tests.infra.services import redis_client


@pytest.fixture
def limit_struck_in_the_retrys_send(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Have the soft time limit strike while the first retry's message is published, as its
    signal does when it comes as the worker process writes to the broker; return the headers
    of the messages it cut short (later messages are published as usual)."""
    publish = kombu.Producer.publish
    struck: list[dict] = []

    def publish_struck(producer, body, *args, **kwargs):
        if kwargs.get("headers", {}).get("retries", 0) >= 1 and not struck:
            struck.append(kwargs["headers"])
            raise SoftTimeLimitExceeded()
        return publish(producer, body, *args, **kwargs)
    monkeypatch.setattr(kombu.Producer, "publish", publish_struck)
    return struck


def run_as_a_worker_process(task, task_id: str, args: list, kwargs: dict):
    """Run a task's delivery through Celery's tracer, as a worker's process does (not eagerly:
    its retries are published to the broker); return the trace's state and result."""
    traced = build_tracer(task.name, task, app=task.app, eager=False, propagate=False)
    result, info, _, _ = traced(task_id, args, kwargs, {"id": task_id, "delivery_info": {}})
    return (info.state if info else SUCCESS), result


def test_a_run_whose_retry_the_time_limit_cut_short_as_it_was_sent_ends_by_the_limit(
        service_settings, git_server, limit_struck_in_the_retrys_send):
    """Before, Celery's Task.retry turned the limit striking as it sent the next try into
    Reject(requeue=False): the message was acknowledged and gone, and the run stayed running
    until the stall sweep took it for lost, half an hour on ('stopped: its worker was lost or
    the hard time limit of 1800 s was exceeded'), where it had run out of its time limit."""
    git_server.commit("staff/reference", {"week1/hello/hello.py": "greeting = 'hello'\n",
                                          "week1/hello/test.yaml": ONE_TEST})
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 'hello'\n"})
    student = git_server.bare("students/alice")
    student.rename(student.with_name("away.git"))  # the fetch fails: a fault of ours, retried
    _, settings = service_settings({"worker": {"max_attempts": 2}})
    resources = migrated_resources(settings)
    run = queue_run(resources, commit_sha=sha)
    celery = create_celery(settings)
    celery.loader.import_default_modules()

    state, _ = run_as_a_worker_process(celery.tasks[STUDENT_TESTING], run.celery_task_id,
                                       [run.id], {})

    assert state == SUCCESS
    assert len(limit_struck_in_the_retrys_send) == 1
    with resources.sessions() as session:
        ended = session.get(TestRun, run.id)
    assert (ended.status, ended.status_reason) == (RunStatus.ERROR, TIME_LIMIT_REASON.format(
        limit=settings.worker.student_testing_soft_time_limit))


ends_tried: list[str] = []


def failing_with_the_database_going_away(task, database_waits: int = 0,
                                         ending: str | None = None) -> str:
    """Fail with a passing fault of ours; find the database unreachable the first time the end
    is recorded."""
    def work() -> str:
        raise RepositoryError("git is down")

    end = end_meeting_the_database_away(ends_tried, 1)
    return drive(task, work, end, soft_limit=60, max_attempts=2, database_wait=0.1,
                 database_waits=database_waits, ending=ending,
                 what="failing_with_the_database_going_away", places={})


def test_a_task_whose_retry_the_time_limit_cut_short_with_the_database_away_is_sent_to_end(
        service_settings, redis_db, limit_struck_in_the_retrys_send):
    """Before, nothing was sent: with the database away the reason was not written either, and
    the run waited for the stall sweep."""
    _, settings = service_settings()
    celery = create_celery(settings)
    task = celery.task(bind=True, name="tests.failing_with_the_database_going_away")(
        failing_with_the_database_going_away)
    ends_tried.clear()

    state, _ = run_as_a_worker_process(task, "the-task-id", [], {})

    assert state == "RETRY"
    reason = TIME_LIMIT_REASON.format(limit=60)
    assert ends_tried == [reason]
    [message] = [json.loads(m) for m in redis_client(redis_db).lrange("default", 0, -1)]
    _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (message["headers"]["id"], kwargs) == (
        "the-task-id", {"database_waits": 1, "ending": reason})
