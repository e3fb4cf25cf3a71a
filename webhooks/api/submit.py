"""`POST /api/tests-celery` and `POST /api/tests`: grade a commit of a student project."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from pipeline.dispatch import send_runs
from pipeline.feedback import result_url
from pipeline.ledger.models import TestRun
from pipeline.regrade import GradingTarget, request_grading
from pipeline.submissions.dispatch import release_submissions
from pipeline.submissions.ledger import request_submission
from webhooks.api.docs import error_responses, json_body, json_response
from webhooks.api.errors import load_json_body
from webhooks.api.schemas import TestCreateSchema, TestRunResponseSchema
from webhooks.api.state import api_state, current_caller
from webhooks.api.targets import (check_assignment, course_of, execution_backend,
                                  resolve_project)
from webhooks.app import services

log = logging.getLogger(__name__)

submit = Blueprint("submit", __name__)

API_KIND = "api"
BRANCH_ACTION = "name the branch a run is recorded on"
CELERY, LOCAL = "celery", "local"
SUBMIT_NOTE = ("`submit: true` also hands the commit in: once its run has ended, the task "
               "`submission_task_id` validates the submission, records it and opens or updates "
               "the merge request of the branch `submission/<directory>`; its result says "
               "whether it was accepted and why not. The same commit submitted again is the "
               "same submission; one refused only because its merge request was closed (or "
               "retargeted) before it was processed is handed in again, through the API.")
BRANCH_NOTE = ("A staff token may name the `branch` to record the run on: the branch's score "
               "badge, the commit's status on it and the comment of the branch's open merge "
               "requests then show its result, and only a run of that branch is returned as "
               "the commit's (a run of another branch, or of none, is not). "
               "Without a branch, the run is recorded on the branch an earlier run saw the "
               "commit on, if any. gradehook does not check that the commit is on the branch "
               "named: the caller vouches for it.")
_ANSWERS = {
    202: json_response("a run was created and sent", TestRunResponseSchema),
    200: json_response("the commit is already graded or being graded: its run",
                       TestRunResponseSchema),
    **error_responses(400, 401, 403, 415, 422, 503),
}
PATHS = {
    "/api/tests-celery": {"post": {
        "summary": "Grade a commit on the Celery workers",
        "description": "A commit already graded or being graded is not graded again: its run "
                       "is returned (`retry: true` grades a failed or errored one again). "
                       "The project is required when the token reaches more than one. "
                       + BRANCH_NOTE + " " + SUBMIT_NOTE,
        "requestBody": json_body(TestCreateSchema), "responses": _ANSWERS}},
    "/api/tests": {"post": {
        "summary": "Grade a commit on the course's execution backend",
        "description": "As /api/tests-celery, routed by the course's execution backend type: "
                       "`celery` (workers) or `local` (a thread of the web process, answered "
                       "at once). Any other type is a 422 that says how to migrate.",
        "requestBody": json_body(TestCreateSchema), "responses": _ANSWERS}},
}


@submit.post("/api/tests-celery")
def create_test_on_celery():
    """Grade a commit on the Celery workers."""
    return _create_test(CELERY)


@submit.post("/api/tests")
def create_test():
    """Grade a commit on the course's execution backend."""
    return _create_test(None)


def _create_test(backend: str | None):
    caller = current_caller()
    body = load_json_body(TestCreateSchema())
    if body["branch"] is not None:
        caller.require_staff(BRANCH_ACTION)
    svc, state = services(), api_state()
    sessions = svc.resources.sessions
    path, project_id = resolve_project(caller, body["project"], svc.settings, sessions,
                                       svc.resources.gitlab)
    course = course_of(svc.settings, path)
    check_assignment(svc.assignments.known(course), course, body["directory"])
    backend = backend or execution_backend(sessions, course)
    target = GradingTarget(course=course, project_path=path,
                           commit_sha=body["version_identifier"],
                           assignment=body["directory"], project_id=project_id,
                           ref=body["branch"])
    run, created = request_grading(sessions, target, kind=API_KIND, retry=body["retry"],
                                   requested_by=caller.user_id)
    if created:
        if backend == LOCAL:
            state.local_runs.submit(run.id, run.celery_task_id)
        else:
            send_runs(svc.celery, sessions, [(run.id, run.celery_task_id)])
        log.info("run %s created by %s for %s %s (%s)", run.id, caller.describe(), path,
                 target.commit_sha[:12], backend)
    submission_task_id = None
    if body["submit"]:
        submission = request_submission(sessions, run.id, requested_by=caller.user_id)
        release_submissions(svc.celery, sessions, [submission.run_id])
        submission_task_id = submission.celery_task_id
    return jsonify(_answer(run, created, backend, submission_task_id)), 202 if created else 200


def _answer(run: TestRun, created: bool, backend: str, submission_task_id: str | None) -> dict:
    return TestRunResponseSchema().dump({
        "id": run.id, "test_system_id": run.celery_task_id, "status": run.status,
        "stage": run.stage, "percentage": run.progress, "created": created,
        "backend": backend, "project": run.project_path, "project_id": run.project_id,
        "directory": run.assignment, "version_identifier": run.commit_sha,
        "submission_task_id": submission_task_id,
        "result_url": result_url(services().resources, run.id)})
