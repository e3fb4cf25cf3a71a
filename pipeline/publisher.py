"""Publish task messages: straight onto Redis lists, all in one round trip, or through kombu."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Sequence

import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry
from kombu.utils.json import dumps

from pipeline.broker_marker import REDIS_SCHEMES, mark_in
from pipeline.celery_app import ROUTES, STUDENT_TESTING

# Celery's task message protocol 2, which workers of this Celery version read.
CONTENT_TYPE, CONTENT_ENCODING, BODY_ENCODING = "application/json", "utf-8", "base64"
PERSISTENT = 2
# The message's place in kombu's Redis envelope: the queue's list, read by the workers.
DELIVERY_INFO_EXCHANGE = ""
# One immediate retry, on a fresh connection, before the caller leaves its runs to the
# reconciler: the webhook answer stays fast while Redis is down.
PUBLISH_RETRY = Retry(NoBackoff(), 1)
# The task id a message template is built with; each message puts its own in its place.
TEMPLATE_ID = "template"


@dataclass(frozen=True)
class TaskMessage:
    """One task to send: its registered name, positional arguments and task id."""

    name: str
    args: tuple
    task_id: str


@dataclass(frozen=True)
class _Template:
    """What every message of one task shares: its queue, headers, properties and options."""

    queue: str
    headers: dict
    properties: dict
    embed: dict


class Publisher:
    """Send task messages to the broker, several at once.

    Celery's `send_task` builds and publishes one message through kombu's generic machinery,
    about a millisecond of CPU each. With Redis as the broker this publisher builds the same
    message from a template made once per task by Celery's own protocol builder, wraps it in
    kombu's Redis envelope and pushes every message of a call in one pipeline, one LPUSH per
    queue: what kombu's Redis transport does, without its per-message set-up. Other brokers
    (the embedded filesystem broker) go through `send_task`. Queues are fixed per task name
    (`ROUTES`), so routing is looked up once.
    """

    def __init__(self, celery: Celery, client: redis.Redis | None) -> None:
        self._celery = celery
        self._client = client
        self._default_queue = celery.conf.task_default_queue
        self._templates: dict[str, _Template] = {}

    @classmethod
    def for_app(cls, celery: Celery) -> Publisher:
        """Return a publisher for an app: straight to Redis when that is its broker."""
        if not celery.conf.broker_url.startswith(REDIS_SCHEMES):
            return cls(celery, None)
        transport = celery.conf.broker_transport_options
        return cls(celery, redis.Redis.from_url(
            celery.conf.broker_url, retry=PUBLISH_RETRY,
            # The timeouts of Celery's own connections to the broker.
            socket_connect_timeout=transport["socket_connect_timeout"],
            socket_timeout=transport["socket_timeout"]))

    def publish(self, messages: Sequence[TaskMessage]) -> None:
        """Publish messages in order; raise if the broker did not take all of them."""
        if not messages:
            return
        if self._client is None:
            for message in messages:
                self._celery.send_task(message.name, args=list(message.args),
                                       task_id=message.task_id, retry=False)
            return
        queues: dict[str, list[str]] = {}
        pipeline = self._client.pipeline(transaction=False)
        for message in messages:
            queue, envelope = self.envelope(message)
            queues.setdefault(queue, []).append(envelope)
            if message.name == STUDENT_TESTING:
                # Marked as waiting first: the reconciler then knows the message is there.
                mark_in(pipeline, message.task_id)
        for queue, envelopes in queues.items():
            # One LPUSH of several values pushes them in turn, as that many LPUSHes would.
            pipeline.lpush(queue, *envelopes)
        pipeline.execute()

    def envelope(self, message: TaskMessage) -> tuple[str, str]:
        """Return the Redis list of a message's queue and the message as kombu stores it."""
        template = self._templates.get(message.name) or self._template(message.name)
        args = list(message.args)
        headers = {**template.headers, "id": message.task_id, "root_id": message.task_id,
                   # The arguments are ids: their repr is the safe repr Celery would compute.
                   "argsrepr": repr(args)}
        properties = {**template.properties, "correlation_id": message.task_id,
                      "reply_to": self._celery.thread_oid, "delivery_tag": str(uuid.uuid4())}
        body = dumps([args, {}, template.embed]).encode(CONTENT_ENCODING)
        return template.queue, dumps({
            "body": base64.b64encode(body).decode("ascii"),
            "content-encoding": CONTENT_ENCODING, "content-type": CONTENT_TYPE,
            "headers": headers, "properties": properties})

    def _template(self, name: str) -> _Template:
        """Build a task's message once with Celery's protocol builder, as `send_task` does."""
        route = ROUTES.get(name, {})
        queue = route.get("queue", self._default_queue)
        headers, properties, (_args, _kwargs, embed), _sent_event = \
            self._celery.amqp.create_task_message(TEMPLATE_ID, name, [], {},
                                                  kwargsrepr="{}", ignore_result=None)
        properties.update(
            delivery_mode=PERSISTENT, priority=route.get("priority", 0),
            delivery_info={"exchange": DELIVERY_INFO_EXCHANGE, "routing_key": queue},
            body_encoding=BODY_ENCODING)
        template = _Template(queue, headers, properties, embed)
        self._templates[name] = template
        return template
