"""Celery wiring: each task reaches its queue with its priority, JSON only, late acknowledgement."""

from __future__ import annotations

import json
import logging

import pytest

from pipeline.celery_app import ROUTES, create_celery
from pipeline.config import load_settings
from tests.infra.services import redis_client


@pytest.mark.parametrize("task, queue, priority", [
    ("student_testing", "high_priority", 8),
    ("submission_processing", "default", 6),
    ("regrade", "low_priority", 3),
    ("reconcile", "low_priority", 3),
    ("refresh_rosters", "low_priority", 3),
    ("report_runs", "notify", 9),
])
def test_task_reaches_its_queue_with_its_priority(service_settings, redis_db, task, queue,
                                                  priority):
    _, settings = service_settings()
    app = create_celery(settings)
    result = app.send_task(task, args=["some-id"])
    client = redis_client(redis_db)
    assert client.llen(queue) == 1
    message = json.loads(client.lindex(queue, 0))
    assert message["headers"]["task"] == task
    assert message["headers"]["id"] == result.id
    assert message["properties"]["priority"] == priority
    assert message["properties"]["delivery_info"]["routing_key"] == queue
    assert message["content-type"] == "application/json"
    for other in {"notify", "high_priority", "default", "low_priority"} - {queue}:
        assert client.llen(other) == 0


def test_reliability_settings(service_settings):
    _, settings = service_settings()
    conf = create_celery(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.result_extended
    assert conf.result_backend.startswith("db+postgresql")
    longest = max(settings.worker.student_testing_time_limit,
                  settings.worker.submission_processing_time_limit)
    assert conf.broker_transport_options["visibility_timeout"] > longest
    assert conf.task_annotations["student_testing"] == {"soft_time_limit": 1740.0,
                                                        "time_limit": 1800.0}
    assert conf.task_annotations["submission_processing"] == {"soft_time_limit": 540.0,
                                                              "time_limit": 600.0}
    assert ROUTES["student_testing"] == {"queue": "high_priority", "priority": 8}


def test_the_embedded_broker_connects_without_a_warning(tmp_path, caplog):
    """Before, kombu warned 'No hostname was supplied' at every connection: some eight
    warnings at each start of `gradehook run`, for a broker needing none."""
    (tmp_path / "config.toml").write_text("")
    settings = load_settings(tmp_path / "config.toml", environ={})
    with caplog.at_level(logging.WARNING), \
            create_celery(settings).connection_for_write() as connection:
        # Control pings (the health answer's, `worker status`) and pools clone connections.
        connection.clone().info()
    assert [record.getMessage() for record in caplog.records] == []
