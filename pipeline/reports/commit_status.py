"""Build the commit status GitLab shows for a run (spec/gitlab.md §4), as plain data."""

from __future__ import annotations

from typing import Any, Mapping

from pipeline.reports.text import one_line
from pipeline.reports.model import ReportInputError, RunSummary, read_report
from pipeline.reports.wording import REASON_LINES_SEPARATOR, is_scored, outcome_text
from pipeline.withheld_causes import WITHHELD_NOTE

DEFAULT_STATUS_NAME = "gradehook"
MAX_DESCRIPTION_CHARS = 255
MAX_TARGET_URL_CHARS = 255
# A course error cut to fit is cut in its cause: its last words, where staff read the cause
# whole, stay.
KEPT_END = REASON_LINES_SEPARATOR + WITHHELD_NOTE
PUSH_GRADED_SINCE = "This commit has since been graded: see each assignment's own status."

# Run status -> GitLab commit status state. Errors are "failed" without a score: GitLab has
# no error state, and a red mark with the reason is what students should see.
_STATES = {"queued": "pending", "running": "running", "passed": "success", "failed": "failed",
           "error": "failed", "superseded": "canceled", "cancelled": "canceled"}


def status_name(assignment: str, prefix: str = DEFAULT_STATUS_NAME) -> str:
    """Return the commit status name of an assignment, e.g. `gradehook/week1/assignment1`."""
    if not assignment:
        raise ReportInputError("a commit status needs the assignment's name")
    return f"{prefix}/{assignment}"


def commit_status_payload(run: RunSummary, report: Mapping[str, Any] | None, *,
                          prefix: str = DEFAULT_STATUS_NAME) -> dict[str, Any]:
    """Return the keyword arguments of GitLabClient.set_commit_status for this run.

    A run that diffs its commit and ended before the diff showed its assignment changed (an
    error of gradehook's fetching the commit) graded nothing of its assignment: it is shown
    as the push's status, named `prefix` alone, without its assignment's result page.
    """
    view = read_report(report)
    for_assignment = run.stands_for_assignment
    payload: dict[str, Any] = {
        "state": _STATES[run.status],
        "ref": run.ref,
        "name": status_name(run.assignment, prefix) if for_assignment else prefix,
        "description": one_line(outcome_text(run, view), MAX_DESCRIPTION_CHARS, KEPT_END),
        "target_url": run.result_url if for_assignment and run.result_url and
        len(run.result_url) <= MAX_TARGET_URL_CHARS else None,
        "coverage": None,
    }
    if is_scored(run, view):
        payload["coverage"] = round(view.score * 100, 2)
    return payload


def push_graded_since_payload(ref: str | None, *,
                              prefix: str = DEFAULT_STATUS_NAME) -> dict[str, Any]:
    """Return the keyword arguments of GitLabClient.set_commit_status that replace the push's
    failed status (named `prefix` alone) once a run of the commit graded its assignment."""
    return {"state": "success", "ref": ref, "name": prefix, "description": PUSH_GRADED_SINCE,
            "target_url": None, "coverage": None}
