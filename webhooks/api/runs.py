"""`GET /api/runs` and `GET /api/runs/<id>`: test runs and their results."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify

from pipeline.feedback import result_url
from pipeline.ledger.models import TestRun
from pipeline.reports.model import reason_for_students
from webhooks.api.auth import Caller
from webhooks.api.docs import error_responses, json_response
from webhooks.api.errors import ApiError, load_query
from webhooks.api.paging import page_size
from webhooks.api.run_queries import RunFilter, find_runs
from webhooks.api.schemas import (ID_PATTERN, RunDetailSchema, RunPageSchema, RunQuerySchema,
                                  RunSchema)
from webhooks.api.state import current_caller
from webhooks.app import services

runs = Blueprint("runs", __name__)

NO_SUCH_RUN = "no run {run_id}"
_RUN_ID = re.compile(ID_PATTERN)


PATHS = {
    "/api/runs": {"get": {
        "summary": "Runs, newest first, by project, course, assignment, commit or statuses",
        "description": "A GitLab token sees the runs of the projects it reaches as Developer.",
        "parameters": [{"in": "query", "schema": RunQuerySchema}],
        "responses": {200: json_response("a page of runs", RunPageSchema),
                      **error_responses(400, 401, 403, 503)}}},
    "/api/runs/{run_id}": {"get": {
        "summary": "One run and its result",
        "parameters": [{"name": "run_id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": ID_PATTERN}}],
        "responses": {200: json_response("the run; `report` for staff tokens only",
                                         RunDetailSchema),
                      **error_responses(401, 403, 404, 503)}}},
}


@runs.get("/api/runs")
def list_runs():
    """Answer with one page of the runs the caller may see."""
    caller = current_caller()
    query = load_query(RunQuerySchema())
    per_page = page_size(query)
    wanted = _filter(caller, query)
    found, total = find_runs(services().resources.sessions, wanted, page=query["page"],
                             per_page=per_page)
    return jsonify({"items": [_shown(run, with_report=False, staff=caller.staff)
                              for run in found],
                    "page": query["page"], "per_page": per_page, "total": total})


@runs.get("/api/runs/<run_id>")
def show_run(run_id: str):
    """Answer with one run, if the caller may see its project."""
    caller = current_caller()
    run = None
    if _RUN_ID.fullmatch(run_id):
        with services().resources.sessions() as session:
            run = session.get(TestRun, run_id)
    if run is None:
        raise ApiError(404, NO_SUCH_RUN.format(run_id=run_id[:64]))
    caller.require_project(run.project_path)
    return jsonify(_shown(run, with_report=caller.staff, staff=caller.staff))


def _filter(caller: Caller, query: dict) -> RunFilter:
    scope = caller.scope(query.get("project"))
    return RunFilter(project_path=scope.project_path, project_id=scope.project_id,
                     course=query.get("course"), assignment=query.get("assignment"),
                     commit_prefix=query.get("commit"), statuses=query.get("status"),
                     within=scope.within)


def _shown(run: TestRun, *, with_report: bool, staff: bool) -> dict:
    """Return a run as the API shows it: its reason as students may read it unless to staff (of
    a course error, the whole cause may quote the reference's code and hidden tests), and
    what GitLab refused of its update to staff alone."""
    shown = (RunDetailSchema() if with_report else RunSchema()).dump(run)
    if not staff:
        shown["status_reason"] = reason_for_students(run.status_reason, run.report)
        shown["report_refused"] = None
    shown["result_url"] = result_url(services().resources, run.id)
    return shown
