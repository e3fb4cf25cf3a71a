"""Notice a broker that lost messages: marker keys in Redis vanish together with them.

One marker stands for the broker's data as a whole; one per grading message, set as it is
published and removed when a worker takes it, tells whether that message still waits; two per
grading task about to try again tell that its task is alive: one lapsing when its try is
overdue, one when the broker would have handed the try's message out again.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Sequence

import redis

from pipeline.config import Settings

log = logging.getLogger(__name__)

MARKER_KEY = "gradehook:broker-marker"
MARKER_TIMEOUT_SECONDS = 2.0
# A waiting message's marker outlives any backlog a course builds up; a message gone without
# a worker taking it (a purged queue) is then sent again at the latest a day later.
MESSAGE_MARKER_PREFIX = "gradehook:waiting:"
MESSAGE_MARKER_SECONDS = 24 * 3600
RETRY_MARKER_PREFIX = "gradehook:retry-coming:"
SENT_MARKER_PREFIX = "gradehook:retry-sent:"
REDIS_SCHEMES = ("redis://", "rediss://")


def broker_forgot(settings: Settings) -> bool:
    """Tell whether the broker's data is new since the last look (the marker was gone); mark it.

    Redis keeps the marker as long as it keeps its queues: a restart without persistence, a
    flush or a failover to an empty replica removes both. Exactly one caller sees True for
    each loss. The embedded broker and an unreachable Redis answer False.
    """
    if not _is_redis(settings.broker_url):
        return False
    try:
        forgot = bool(_client(settings.broker_url).set(MARKER_KEY, "1", nx=True))
    except redis.RedisError as exc:
        log.warning("broker marker not checked: %s", type(exc).__name__)
        return False
    if forgot:
        log.warning("the broker holds none of the messages sent before now (new or restarted "
                    "without its data): queued runs are sent again")
    return forgot


def message_marker(task_id: str) -> str:
    """Return the key that marks a grading message with this task id as waiting in the broker."""
    return MESSAGE_MARKER_PREFIX + task_id


def mark_waiting(broker_url: str, task_ids: Sequence[str]) -> None:
    """Mark grading messages as waiting, just before they are published (Redis brokers only).

    Raises the client's error when Redis cannot be reached: the publish would fail too.
    """
    if not _is_redis(broker_url) or not task_ids:
        return
    pipeline = _client(broker_url).pipeline(transaction=False)
    for task_id in task_ids:
        mark_in(pipeline, task_id)
    pipeline.execute()


def mark_in(pipeline: redis.client.Pipeline, task_id: str) -> None:
    """Add the marking of a grading message as waiting to a Redis pipeline."""
    pipeline.set(message_marker(task_id), 1, ex=MESSAGE_MARKER_SECONDS)


def waiting_messages(broker_url: str, task_ids: Sequence[str]) -> set[str]:
    """Return the task ids whose messages still wait in the broker, untaken by any worker.

    The embedded broker keeps no markers and an unreachable Redis answers nothing: both
    return the empty set, and callers fall back to judging a message by its age.
    """
    return _marked(broker_url, [message_marker(task_id) for task_id in task_ids], task_ids,
                   "waiting messages")


def retry_coming(broker_url: str, task_id: str, within_seconds: float,
                 held_seconds: float) -> None:
    """Note that a grading task is alive and tries again within some seconds (after a fault,
    or a wait for the database), and that its try's message is held by a worker for
    `held_seconds` at the most; each note lapses then (Redis brokers only)."""
    if not _is_redis(broker_url):
        return
    try:
        pipeline = _client(broker_url).pipeline()
        pipeline.set(RETRY_MARKER_PREFIX + task_id, 1, ex=math.ceil(within_seconds))
        pipeline.set(SENT_MARKER_PREFIX + task_id, 1, ex=math.ceil(held_seconds))
        pipeline.execute()
    except redis.RedisError as exc:  # the reconciler judges the retry by its age instead
        log.warning("coming retry of task %s not noted: %s", task_id, type(exc).__name__)


def retries_coming(broker_url: str, task_ids: Sequence[str]) -> set[str]:
    """Return the task ids whose task noted it tries again soon, a note not yet lapsed.

    The embedded broker keeps no notes and an unreachable Redis answers nothing: both return
    the empty set, and callers fall back to judging a retry by its age.
    """
    return _marked(broker_url, [RETRY_MARKER_PREFIX + task_id for task_id in task_ids],
                   task_ids, "coming retries")


def retries_sent(broker_url: str, task_ids: Sequence[str]) -> set[str]:
    """Return the task ids whose task sent its next try recently enough that a worker may
    hold it still, waiting for a free process: the broker has not handed it out again yet.

    The embedded broker keeps no notes and an unreachable Redis answers nothing: both return
    the empty set, and callers fall back to judging a run by when its task last started.
    """
    return _marked(broker_url, [SENT_MARKER_PREFIX + task_id for task_id in task_ids],
                   task_ids, "sent retries")


def _marked(broker_url: str, keys: Sequence[str], task_ids: Sequence[str],
            what: str) -> set[str]:
    """Return the task ids whose marker key (`keys`, in the same order) is in Redis."""
    if not _is_redis(broker_url) or not task_ids:
        return set()
    try:
        pipeline = _client(broker_url).pipeline(transaction=False)
        for key in keys:
            pipeline.exists(key)
        return {task_id for task_id, present in zip(task_ids, pipeline.execute()) if present}
    except redis.RedisError as exc:
        log.warning("%s not checked: %s", what, type(exc).__name__)
        return set()


def message_taken(broker_url: str, task_id: str) -> None:
    """Note that a worker took a grading message: it no longer waits in the broker."""
    if not _is_redis(broker_url):
        return
    try:
        _client(broker_url).delete(message_marker(task_id))
    except redis.RedisError as exc:
        # The run is claimed next, and the reconciler only looks at runs still queued.
        log.warning("message marker of task %s not removed: %s", task_id, type(exc).__name__)


def _is_redis(broker_url: str) -> bool:
    """Tell whether a broker is Redis, which keeps marks; the embedded broker keeps none."""
    return broker_url.startswith(REDIS_SCHEMES)


@functools.cache
def _client(url: str) -> redis.Redis:
    """Return this process's client of the broker's Redis (its pool survives forks)."""
    return redis.Redis.from_url(url, socket_timeout=MARKER_TIMEOUT_SECONDS,
                                socket_connect_timeout=MARKER_TIMEOUT_SECONDS)
