"""A task's progress as a server-sent event stream: each stage in order, until the task ends."""

from __future__ import annotations

import json
import time
from typing import Callable, Iterator

from pipeline.ledger.runs import STAGES
from webhooks.api.schemas import TaskStateSchema
from webhooks.api.task_state import STAGE_ORDER, TaskProgress

HEARTBEAT_SECONDS = 15.0
TASK_GONE = "the task is no longer known"


def task_events(read: Callable[[], TaskProgress | None], *, poll_seconds: float,
                max_seconds: float, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """Yield `progress` events as a task moves on, then `end` (or `timeout` at the limit).

    A run's stages are each sent once, in order, including stages the run passed between two
    looks (the ledger's phase timestamps show them).
    """
    deadline = clock() + max_seconds
    last_stage, last_seen = -1, None
    quiet_since = clock()
    while True:
        progress = read()
        if progress is None:
            yield _event("end", {"reason": TASK_GONE})
            return
        sent = False
        for stage in progress.reached:
            index = STAGE_ORDER.index(stage)
            if index <= last_stage:
                continue
            last_stage = index
            sent = True
            yield _event("progress", _at_stage(progress, stage))
        seen = (progress.state, progress.stage, progress.percentage)
        if not sent and seen != last_seen:
            sent = True
            yield _event("progress", TaskStateSchema().dump(progress))
        last_seen = seen
        if progress.ready:
            yield _event("end", TaskStateSchema().dump(progress))
            return
        now = clock()
        if now >= deadline:
            yield _event("timeout", TaskStateSchema().dump(progress))
            return
        if sent:
            quiet_since = now
        elif now - quiet_since >= HEARTBEAT_SECONDS:
            quiet_since = now
            yield ": keep-alive\n\n"
        sleep(min(poll_seconds, max(0.0, deadline - now)))


def _at_stage(progress: TaskProgress, stage: str) -> dict:
    """Return the event data of a stage; an earlier stage shows its own percentage, not ready."""
    shown = TaskStateSchema().dump(progress)
    if stage != progress.stage:
        shown.update(stage=stage, percentage=STAGES[stage][0], ready=False)
    return shown


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
