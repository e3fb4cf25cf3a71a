"""A task's PROGRESS state, written into Celery's result table with one statement."""

from __future__ import annotations

from celery import Task, states
from kombu.utils.encoding import ensure_bytes
from sqlalchemy import update
from sqlalchemy.engine import Engine

PROGRESS_STATE = "PROGRESS"


def store_progress(task: Task, engine: Engine, meta: dict) -> None:
    """Set the running task's state to PROGRESS with `meta`, as `update_state` would.

    Celery's own path opens a session, reads the task's row twice (once locked) and writes it
    back; the row is there already (task_track_started stored STARTED before the task ran), so
    one UPDATE through the ledger's connections does the same. A row that is missing or holds a
    final state is left to Celery's own path, which knows what to do with either.
    """
    backend = task.backend
    table = backend.task_cls.__table__
    with engine.begin() as connection:
        updated = connection.execute(
            update(table)
            .where(table.c.task_id == task.request.id,
                   table.c.status.not_in(tuple(states.READY_STATES)))
            .values(status=PROGRESS_STATE, result=ensure_bytes(backend.encode(meta)),
                    traceback=None, date_done=None)).rowcount
    if updated != 1:
        task.update_state(state=PROGRESS_STATE, meta=meta)
