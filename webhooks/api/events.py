"""A task's progress as a server-sent event stream: each stage in order, until the task ends."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable, Iterator

from celery import states

from pipeline.ledger.models import RunStatus
from pipeline.ledger.runs import STAGES
from webhooks.api.schemas import TaskStateSchema
from webhooks.api.task_state import PROGRESS_STATE, STAGE_ORDER, TaskProgress

HEARTBEAT_SECONDS = 15.0
TASK_GONE = "the task is no longer known"
# A run's task state and status while it was in a stage it has passed since; later stages are
# PROGRESS and running (as task_state reads them from the ledger).
_PASSED_STAGES = {"queued": (states.PENDING, RunStatus.QUEUED),
                  "init": (states.STARTED, RunStatus.RUNNING)}


def task_events(read: Callable[[], TaskProgress | None], *, poll_seconds: float,
                max_seconds: float, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """Yield `progress` events as a task moves on, then `end` (or `timeout` at the limit).

    A run's stages are each sent once, in order, including stages the run passed between two
    looks (the ledger's phase timestamps show them): a stage passed is shown as the task was
    while in it, so only the stage the run is in can be final.
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
    """Return the event data of a stage; an earlier one shows the task as it was in that stage.

    That is: not ready, at the stage's own percentage, with no reason and no result yet.
    """
    if stage == progress.stage:
        return TaskStateSchema().dump(progress)
    state, status = _PASSED_STAGES.get(stage, (PROGRESS_STATE, RunStatus.RUNNING))
    earlier = dataclasses.replace(progress, state=state, ready=False, status=status, stage=stage,
                                  percentage=STAGES[stage][0], reason=None, result=None)
    return TaskStateSchema().dump(earlier)


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
