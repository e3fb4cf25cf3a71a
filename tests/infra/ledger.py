"""Ledger helpers for tests: a migrated database and runs inserted as the receiver would."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.context import Resources, build_resources
from pipeline.dispatch import new_task_id
from pipeline.ledger.db import transaction
from pipeline.ledger.migrate import upgrade
from pipeline.ledger.models import TestRun, utcnow


def migrated_resources(settings: Settings) -> Resources:
    """Return fresh resources on a database brought to the newest schema."""
    resources = build_resources(settings)
    upgrade(resources.engine)
    return resources


def queue_run(resources: Resources, **fields) -> TestRun:
    """Insert a queued run with a task id, as intake does before sending it."""
    values = {"course": "prog1", "assignment": "week1/hello", "project_path": "students/alice",
              "ref": "main", "reference_project": "staff/reference", "reference_ref": "main",
              "queued_at": utcnow(), "sent_at": utcnow(), "celery_task_id": new_task_id(), **fields}
    with transaction(resources.sessions) as session:
        run = TestRun(**values)
        session.add(run)
    return run
