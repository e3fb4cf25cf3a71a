"""`GET /api/submissions`: submissions with their scores, and each student's final one."""

from __future__ import annotations

from flask import Blueprint, jsonify

from pipeline.ledger.models import Submission, TestRun
from webhooks.api.course_rosters import read_roster, roster_within
from webhooks.api.docs import error_responses, json_response
from webhooks.api.errors import load_query
from webhooks.api.paging import page_size
from webhooks.api.missing_grades import find_missing_grades, has_missing_grades
from webhooks.api.schemas import (MissingGradeSchema, SubmissionPageSchema,
                                  SubmissionQuerySchema, SubmissionSchema)
from webhooks.api.state import current_caller
from webhooks.api.submission_queries import (FROM_THE_RUN, SubmissionFilter, find_submissions,
                                             run_fields)
from webhooks.app import services

submissions = Blueprint("submissions", __name__)


PATHS = {
    "/api/submissions": {"get": {
        "summary": "Submissions with their scores, by course, assignment, project, outcome "
                   "or lateness; or each student's final one (final=true)",
        "description": "All submissions come newest first, final ones by project and "
                       "assignment; a gradebook (final=true) also names, in missing, each "
                       "known student's assignment without an accepted submission, and why, "
                       "its students including those of the course's student projects "
                       "GitLab lists that gradehook never received a push from, as GitLab "
                       "last listed them (gradehook lists them on an interval and keeps "
                       "them: the request asks GitLab nothing). "
                       "A GitLab token sees the submissions of the projects it reaches as "
                       "Developer; its gradebook's students who never pushed are those of "
                       "its projects a course claims.",
        "parameters": [{"in": "query", "schema": SubmissionQuerySchema}],
        "responses": {200: json_response("a page of submissions", SubmissionPageSchema),
                      **error_responses(400, 401, 403, 503)}}},
}


@submissions.get("/api/submissions")
def list_submissions():
    """Answer with one page of the submissions the caller may see."""
    caller = current_caller()
    query = load_query(SubmissionQuerySchema())
    per_page = page_size(query)
    scope = caller.scope(query.get("project"))
    wanted = SubmissionFilter(
        course=query.get("course"), assignment=query.get("assignment"),
        project_path=scope.project_path, project_id=scope.project_id,
        outcome=query.get("outcome"), late=query.get("late"), final=query["final"],
        within=scope.within)
    resources = services().resources
    found, total = find_submissions(resources.sessions, wanted, page=query["page"],
                                    per_page=per_page)
    missing = roster_problems = None
    if has_missing_grades(wanted):
        # A GitLab user's gradebook is of the projects they reach: GitLab lists no group for it.
        roster = read_roster(resources, wanted.course) if caller.staff \
            else roster_within(resources.settings, wanted.course, caller.projects)
        missing = MissingGradeSchema(many=True).dump(
            find_missing_grades(resources.sessions, wanted, roster))
        roster_problems = roster.problems
    return jsonify({"items": [_shown(submission, run) for submission, run in found],
                    "page": query["page"], "per_page": per_page, "total": total,
                    "missing": missing, "roster_problems": roster_problems})


def _shown(submission: Submission, run: TestRun | None) -> dict:
    """Show a submission with its run's score and result page (None before it has a run)."""
    shown = SubmissionSchema(exclude=FROM_THE_RUN).dump(submission)
    shown.update(run_fields(services().resources, run))
    return shown
