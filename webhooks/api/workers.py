"""Celery workers as they answer an inspection: names, queues, running and reserved tasks."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from celery import Celery

from pipeline.celery_app import STUDENT_TESTING

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker could not carry the inspection to the workers."""


@dataclass(frozen=True)
class TaskBrief:
    """A task a worker holds; `run_id` for student_testing tasks."""

    id: str
    name: str
    run_id: str | None
    started_at: dt.datetime | None


@dataclass(frozen=True)
class WorkerState:
    """One worker: the queues it consumes and its active and reserved tasks."""

    name: str
    queues: tuple[str, ...]
    active: tuple[TaskBrief, ...]
    reserved: tuple[TaskBrief, ...]


def inspect_workers(celery: Celery, timeout: float) -> list[WorkerState]:
    """Ask every worker for its state, waiting at most about `timeout` seconds per question.

    A ping finds the workers; the other questions then wait only for those to answer.
    """
    try:
        names = sorted(celery.control.inspect(timeout=timeout).ping() or {})
        if not names:
            return []
        inspect = celery.control.inspect(timeout=timeout, destination=names, limit=len(names))
        queues = inspect.active_queues() or {}
        active = inspect.active() or {}
        reserved = inspect.reserved() or {}
    except Exception as exc:  # kombu raises many types for an unreachable broker
        log.warning("worker inspection failed: %s", type(exc).__name__)
        raise BrokerUnavailable(type(exc).__name__) from exc
    return [WorkerState(name=name,
                        queues=tuple(sorted(q["name"] for q in queues.get(name) or ())),
                        active=tuple(_brief(t) for t in active.get(name) or ()),
                        reserved=tuple(_brief(t) for t in reserved.get(name) or ()))
            for name in names]


def _brief(task: dict[str, Any]) -> TaskBrief:
    args = task.get("args")
    run_id = args[0] if (task.get("name") == STUDENT_TESTING and isinstance(args, list)
                         and args and isinstance(args[0], str)) else None
    started = task.get("time_start")
    return TaskBrief(id=str(task.get("id")), name=str(task.get("name")), run_id=run_id,
                     started_at=dt.datetime.fromtimestamp(started, dt.timezone.utc)
                     if isinstance(started, (int, float)) else None)
