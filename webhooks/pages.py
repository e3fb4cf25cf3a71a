"""Result pages `/results/<run id>`, score badges `/badges/<project id>/<assignment>.svg` and
the latest result behind a badge."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from pipeline.badge_keys import badge_key_matches
from pipeline.branch_names import is_branch_name
from pipeline.directory_names import is_directory_name
from pipeline.feedback import COMMENTED_STATUSES, STANDS_FOR_ASSIGNMENT, result_url
from pipeline.ledger.models import TestRun
from pipeline.reports.badge import score_badge, unavailable_badge
from pipeline.reports.model import RunSummary
from pipeline.reports.page import VIEWPORT_META, result_page_html
from webhooks.api.project_ids import of_project_id
from webhooks.api.schemas import ID_PATTERN
from webhooks.app import services
from webhooks.events import MAX_ID
from webhooks.ledger_faults import ledger_fault

log = logging.getLogger(__name__)

pages = Blueprint("pages", __name__)

DEFAULT_BADGE_REF = "main"
_RUN_ID = re.compile(ID_PATTERN)


def _message_page(title: str, text: str) -> str:
    """Return a page of a heading and one paragraph."""
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">{VIEWPORT_META}"
            f"<title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p>"
            f"</main></body></html>\n")


NOT_FOUND_PAGE = _message_page("Result not found",
                               "There is no result at this address. Check the link in GitLab.")
UNAVAILABLE_PAGE = _message_page("Results unavailable for a moment",
                                 "The results cannot be read right now. Reload this page in a "
                                 "minute.")
# Seconds a browser or GitLab's image proxy is asked to wait before asking again.
UNAVAILABLE_RETRY_AFTER = "60"
BADGE_HEADERS = {"X-Content-Type-Options": "nosniff"}
# The page holds only inline CSS and no scripts; forbid everything else outright.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src data:; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@pages.get("/results/<run_id>")
def result_page(run_id: str) -> Response:
    """Show one run's report as a page; the run id is unguessable and is the only key."""
    svc = services()
    with svc.resources.sessions() as session:
        run = session.get(TestRun, run_id) if _RUN_ID.fullmatch(run_id) else None
        if run is None:
            return _not_found()
        body = result_page_html(RunSummary.from_record(run, result_url(svc.resources, run.id)),
                                run.report)
        final = run.status.final
    headers = {**PAGE_SECURITY_HEADERS,
               "Cache-Control": "private, max-age=300" if final else "no-store"}
    return Response(body, 200, mimetype="text/html", headers=headers)


@pages.get("/badges/<int:project_id>/<path:assignment>.svg")
def score_badge_svg(project_id: int, assignment: str) -> Response:
    """Show the latest score of an assignment on a branch (?ref=, default main) as a badge."""
    if _key_refused(project_id):
        return _not_found()
    ref = request.args.get("ref", DEFAULT_BADGE_REF)
    # No run has a project beyond the ledger's column, an assignment gradehook would not grade
    # or a ref git would not take: their badge shows no result, with no query (a NUL byte,
    # say, is more than PostgreSQL takes in text).
    if not _addressable(project_id, assignment, ref):
        return _badge(None)
    return _badge(_latest(TestRun.report, project_id, assignment, ref))


@pages.get("/results/latest/<int:project_id>/<path:assignment>")
def latest_result(project_id: int, assignment: str) -> Response:
    """Send to the result page behind a badge: the latest run of its assignment and ref.

    Only with a badge key: without one, anyone could reach every student's result page.
    """
    ref = request.args.get("ref", DEFAULT_BADGE_REF)
    if not services().settings.server.badge_key or _key_refused(project_id) \
            or not _addressable(project_id, assignment, ref):
        return _not_found()
    run_id = _latest(TestRun.id, project_id, assignment, ref)
    if run_id is None:
        return _not_found()
    return Response(status=302, headers={**PAGE_SECURITY_HEADERS, "Location": f"/results/{run_id}",
                                         "Cache-Control": "no-store"})


def _key_refused(project_id: int) -> bool:
    """Tell whether badges need a key and the request lacks the project's (?key=)."""
    secret = services().settings.server.badge_key
    return bool(secret) and not badge_key_matches(secret, project_id, request.args.get("key"))


def _addressable(project_id: int, assignment: str, ref: str) -> bool:
    """Tell whether a run could have this project id, assignment and ref."""
    return project_id <= MAX_ID and is_directory_name(assignment) and is_branch_name(ref)


def _latest(column, project_id: int, assignment: str, ref: str):
    """Return a column of the latest reported run of an assignment on a ref, else None."""
    with services().resources.sessions() as session:
        return session.scalar(
            select(column)
            .where(of_project_id(TestRun.project_id, TestRun.project_path, project_id),
                   TestRun.assignment == assignment,
                   TestRun.ref == ref, TestRun.status.in_(COMMENTED_STATUSES),
                   STANDS_FOR_ASSIGNMENT)
            .order_by(TestRun.finished_at.desc()).limit(1))


def _not_found() -> Response:
    """Answer as for an address with no result: the same for a wrong key and an unknown project."""
    return Response(NOT_FOUND_PAGE, 404, mimetype="text/html",
                    headers={**PAGE_SECURITY_HEADERS, "Cache-Control": "no-store"})


@pages.errorhandler(DBAPIError)
def _database_down(exc: DBAPIError) -> Response:
    """Answer a page or badge the ledger cannot serve now with 503, as for a moment (students
    read it: what the operator must do is in the log)."""
    fault = ledger_fault(exc)
    if fault is None:
        raise exc  # a fault of ours: logged with its traceback, a 500
    log.error("%s: %s", request.endpoint, fault.logged)
    unavailable = {"Cache-Control": "no-store", "Retry-After": UNAVAILABLE_RETRY_AFTER}
    if request.endpoint == "pages.score_badge_svg":
        # An image, so that GitLab's project page shows a badge rather than a broken one.
        return Response(unavailable_badge(), 503, mimetype="image/svg+xml",
                        headers={**BADGE_HEADERS, **unavailable})
    return Response(UNAVAILABLE_PAGE, 503, mimetype="text/html",
                    headers={**PAGE_SECURITY_HEADERS, **unavailable})


def _badge(report: dict | None) -> Response:
    return Response(score_badge(report), 200, mimetype="image/svg+xml",
                    headers={**BADGE_HEADERS, "Cache-Control": "no-cache, max-age=0"})
