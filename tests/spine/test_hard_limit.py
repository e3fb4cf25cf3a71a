"""A task its hard time limit killed is sent again by the worker's main process, to end its item."""

from __future__ import annotations

import base64
import json

from celery.exceptions import TimeLimitExceeded

from pipeline.celery_app import SUBMISSION_PROCESSING, create_celery
from tests.infra.services import redis_client


def test_a_submission_whose_processing_the_hard_time_limit_killed_is_sent_again_to_end(
        service_settings, redis_db):
    """Before, nothing was sent: the worker acknowledged the killed task's message, and nothing
    recorded the submission's end."""
    _, settings = service_settings()
    celery = create_celery(settings)
    celery.loader.import_default_modules()
    task = celery.tasks[SUBMISSION_PROCESSING]

    # As the worker's main process calls it at the hard limit (celery.worker.request).
    task.on_failure(TimeLimitExceeded(600.0), "the-task-id", ["the-submission"],
                    {"database_waits": 1}, None)

    [message] = [json.loads(m) for m in redis_client(redis_db).lrange("default", 0, -1)]
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (message["headers"]["id"], args, kwargs) == ("the-task-id", ["the-submission"], {
        "database_waits": 1,
        "ending": "stopped by the hard time limit of 600 s, as gradehook could not stop it at "
                  "its time limit of 540 s; it has been logged"})
