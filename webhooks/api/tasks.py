"""`GET /api/tasks/...`: a task's state, its events as a stream, and the workers' state."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify

from pipeline.ledger.backlog import backlog_if_readable
from pipeline.ledger.models import utcnow
from webhooks.api.auth import Caller
from webhooks.api.docs import error_responses, json_response
from webhooks.api.errors import ApiError
from webhooks.api.events import task_events
from webhooks.api.schemas import ID_PATTERN, TaskStateSchema, WorkersStatusSchema
from webhooks.api.state import api_state, current_caller
from webhooks.api.task_state import TaskProgress, task_progress
from webhooks.api.workers import BrokerUnavailable, inspect_workers
from webhooks.app import services

tasks = Blueprint("tasks", __name__)

NO_SUCH_TASK = "no task {task_id}"
STREAMS_BUSY = ("too many event streams are open on this web process; poll "
                "GET /api/tasks/{task_id} instead")
BROKER_DOWN = "the broker could not be reached to ask the workers"
INSPECT_ACTION = "inspect the workers"
_TASK_ID = re.compile(ID_PATTERN)
_TASK_PARAMETER = {"name": "task_id", "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": ID_PATTERN}}
PATHS = {
    "/api/tasks/{task_id}": {"get": {
        "summary": "State and progress of a task",
        "description": "For a task that grades a run, everything from the ledger: the state "
                       "follows the run (PENDING while queued, STARTED, PROGRESS through its "
                       "stages, RETRY while it waits for another attempt, with the reason, "
                       "SUCCESS once it has a final status) with its status, stage and "
                       "percentage. Other tasks: the state from Celery's result backend.",
        "parameters": [_TASK_PARAMETER],
        "responses": {200: json_response("the task", TaskStateSchema),
                      **error_responses(401, 403, 404, 503)}}},
    "/api/tasks/{task_id}/events": {"get": {
        "summary": "Progress of a task as server-sent events",
        "description": "`progress` events (TaskState as JSON), one per stage in order, then "
                       "`end` when the task ends, or `timeout` after api.event_stream_max_"
                       "seconds. A comment line keeps a quiet stream open.",
        "parameters": [_TASK_PARAMETER],
        "responses": {200: {"description": "an event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                      **error_responses(401, 403, 404, 503)}}},
    "/api/tasks/workers/status": {"get": {
        "summary": "Workers, their queues and their active and reserved tasks, and the runs "
                   "queued and running (staff)",
        "responses": {200: json_response("the workers that answered in time",
                                         WorkersStatusSchema),
                      **error_responses(401, 403, 503)}}},
}


@tasks.get("/api/tasks/<task_id>")
def task_state(task_id: str):
    """Answer with a task's state and progress."""
    progress = _visible_task(current_caller(), task_id)
    return jsonify(TaskStateSchema().dump(progress))


@tasks.get("/api/tasks/<task_id>/events")
def task_event_stream(task_id: str):
    """Stream a task's progress until it ends."""
    caller = current_caller()
    _visible_task(caller, task_id)
    svc, state = services(), api_state()
    if not state.event_streams.acquire(blocking=False):
        raise ApiError(503, STREAMS_BUSY.format(task_id=task_id))
    api = svc.settings.api
    events = task_events(lambda: task_progress(svc.resources.sessions, svc.celery, task_id,
                                               staff=caller.staff),
                         poll_seconds=api.event_poll_seconds,
                         max_seconds=api.event_stream_max_seconds)
    response = Response(events, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(state.event_streams.release)
    return response


@tasks.get("/api/tasks/workers/status")
def workers_status():
    """Answer with every worker's queues and tasks, and the runs queued and running."""
    current_caller().require_staff(INSPECT_ACTION)
    svc = services()
    timeout = svc.settings.api.inspect_timeout_seconds
    try:
        workers = inspect_workers(svc.celery, timeout)
    except BrokerUnavailable:
        raise ApiError(503, BROKER_DOWN) from None
    backlog = backlog_if_readable(svc.resources.engine)
    return jsonify(WorkersStatusSchema().dump({
        "workers": workers, "timeout_seconds": timeout,
        "runs": None if backlog is None else backlog.as_dict(utcnow())}))


def _visible_task(caller: Caller, task_id: str) -> TaskProgress:
    """Return a task the caller may see: of its run's or submission's project; staff: any."""
    missing = ApiError(404, NO_SUCH_TASK.format(task_id=task_id[:64]))
    if not _TASK_ID.fullmatch(task_id):
        raise missing
    svc = services()
    progress = task_progress(svc.resources.sessions, svc.celery, task_id, staff=caller.staff)
    if progress is None or (progress.project_path is None and not caller.staff):
        raise missing
    if progress.project_path is not None:
        caller.require_project(progress.project_path)
    return progress
