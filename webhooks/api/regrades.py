"""`POST /api/regrade`: grade runs again on the low_priority queue (staff tokens)."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from pipeline.celery_app import REGRADE
from pipeline.dispatch import new_task_id
from pipeline.regrade import (NoSuchRunError, Queued, RegradeError, publish_regrades,
                              regrade_assignment, regrade_run, regrade_student)
from webhooks.api.docs import error_responses, json_body, json_response
from webhooks.api.errors import ApiError, load_json_body
from webhooks.api.schemas import RegradeRequestSchema, RegradeResponseSchema
from webhooks.api.state import current_caller
from webhooks.api.targets import resolve_project
from webhooks.api.task_state import mark_sent
from webhooks.app import services

log = logging.getLogger(__name__)

regrades = Blueprint("regrades", __name__)

REGRADE_ACTION = "regrade"
UNKNOWN_COURSE = "course: no course named {course!r} is configured"
BROKER_DOWN = "the broker is unavailable; the regrade task was not sent"
PATHS = {
    "/api/regrade": {"post": {
        "summary": "Grade again: a run, a student's assignment, an assignment, or branch heads",
        "description": "Regrades run on the low_priority queue. A commit whose grading is "
                       "already queued or running is not queued twice: its run is listed in "
                       "existing_runs. branch_heads sends a regrade task that lists student "
                       "branches on GitLab; follow it with GET /api/tasks/{task_id}.",
        "requestBody": json_body(RegradeRequestSchema),
        "responses": {202: json_response("runs or a task were queued", RegradeResponseSchema),
                      200: json_response("every commit is already being graded",
                                         RegradeResponseSchema),
                      **error_responses(400, 401, 403, 404, 415, 422, 503)}}},
}


@regrades.post("/api/regrade")
def regrade():
    """Queue a regrade."""
    caller = current_caller()
    caller.require_staff(REGRADE_ACTION)
    body = load_json_body(RegradeRequestSchema())
    svc = services()
    scope, course = body["scope"], body.get("course")
    if course is not None and svc.settings.course_named(course) is None:
        raise ApiError(422, UNKNOWN_COURSE.format(course=course), field="course")
    if scope == "branch_heads":
        return _send_branch_heads_task(course)
    sessions = svc.resources.sessions
    try:
        if scope == "run":
            queued = regrade_run(sessions, svc.settings, body["run_id"])
        elif scope == "student":
            path, _ = resolve_project(caller, body["project"], svc.settings, sessions,
                                      svc.resources.gitlab)
            queued = regrade_student(sessions, svc.settings, path, body["assignment"])
        else:
            queued = regrade_assignment(sessions, svc.settings, body["assignment"], course)
    except NoSuchRunError as exc:
        raise ApiError(404, str(exc)) from None
    except RegradeError as exc:
        raise ApiError(422, str(exc)) from None
    publish_regrades(svc.celery, sessions, queued.created)
    log.info("regrade (%s): %d run(s) queued, %d already queued", scope, len(queued.created),
             len(queued.existing))
    return _answer(scope, queued, None), 202 if queued.created else 200


def _send_branch_heads_task(course: str | None):
    celery = services().celery
    task_id = new_task_id()
    # Before it is sent: GET /api/tasks/<id> answers PENDING, not "no task", until it starts.
    mark_sent(celery, task_id)
    try:
        celery.send_task(REGRADE, kwargs={"course": course}, task_id=task_id)
    except Exception as exc:  # kombu raises many types for an unreachable broker
        log.warning("regrade task not sent: %s", type(exc).__name__)
        celery.backend.forget(task_id)
        raise ApiError(503, BROKER_DOWN) from None
    return _answer("branch_heads", Queued(), task_id), 202


def _answer(scope: str, queued: Queued, task_id: str | None):
    return jsonify(RegradeResponseSchema().dump({
        "scope": scope, "runs": queued.created_ids, "existing_runs": queued.existing,
        "task_id": task_id}))
