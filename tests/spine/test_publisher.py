"""The publisher's Redis messages are the messages Celery itself would send, in one round trip."""

from __future__ import annotations

import json

import pytest

from pipeline.broker_marker import MESSAGE_MARKER_SECONDS, message_marker, message_taken, \
    waiting_messages
from pipeline.celery_app import REPORT, ROUTES, STUDENT_TESTING, create_celery
from pipeline.dispatch import send_runs
from pipeline.publisher import Publisher, TaskMessage
from tests.infra.ledger import migrated_resources
from tests.infra.services import redis_client


@pytest.mark.parametrize("name, args", [(STUDENT_TESTING, ("run-1",)),
                                        (REPORT, (["run-1", "run-2"],))])
def test_a_published_message_equals_celerys_own(service_settings, redis_db, name, args):
    _, settings = service_settings()
    celery = create_celery(settings)
    queue = ROUTES[name]["queue"]
    celery.send_task(name, args=list(args), task_id="task-1")
    Publisher.for_app(celery).publish(
        [TaskMessage(name, args, "task-1")])
    ours, celerys = (json.loads(m) for m in redis_client(redis_db).lrange(queue, 0, -1))
    for message in (ours, celerys):
        assert message["properties"].pop("delivery_tag")
    assert ours == celerys


def test_messages_keep_their_order_within_a_queue(service_settings, redis_db):
    _, settings = service_settings()
    publisher = Publisher.for_app(create_celery(settings))
    publisher.publish([TaskMessage(STUDENT_TESTING, (f"run-{n}",), f"task-{n}")
                       for n in range(5)])
    stored = redis_client(redis_db).lrange(ROUTES[STUDENT_TESTING]["queue"], 0, -1)
    # Workers take from the right end of the list (BRPOP): the first published comes first.
    assert [json.loads(m)["headers"]["id"] for m in reversed(stored)] == \
        [f"task-{n}" for n in range(5)]


def test_grading_messages_are_marked_as_waiting_on_every_publish_path(service_settings,
                                                                      redis_db):
    _, settings = service_settings()
    celery = create_celery(settings)
    Publisher.for_app(celery).publish([TaskMessage(STUDENT_TESTING, ("run-1",), "task-1"),
                                       TaskMessage(REPORT, (["run-1"],), "task-2")])
    # The other path: the API, regrades and the reconciler publish through send_runs.
    assert send_runs(celery, migrated_resources(settings).sessions, [("run-3", "task-3")]) == \
        ["run-3"]
    client = redis_client(redis_db)
    assert waiting_messages(celery.conf.broker_url, ["task-1", "task-2", "task-3", "task-4"]) \
        == {"task-1", "task-3"}
    assert 0 < client.ttl(message_marker("task-1")) <= MESSAGE_MARKER_SECONDS
    message_taken(celery.conf.broker_url, "task-1")
    assert waiting_messages(celery.conf.broker_url, ["task-1", "task-3"]) == {"task-3"}
