"""Merge request events: grade the head of an opened or updated merge request."""

from __future__ import annotations

from webhooks.events import BRANCH_PREFIX, Event, MergeRequest
from webhooks.handlers.assignments import REASON_NO_ASSIGNMENTS, known_assignments
from webhooks.handlers.decisions import (STUDENT_TESTING, SUBMISSION_PROCESSING, CancelRuns,
                                         Context, Decision, Ignored, JobRequest, Jobs)
from webhooks.handlers.routing import Router

REASON_NO_CODE_CHANGE = "the merge request was updated without new code or target branch"
REASON_NOT_GRADING_ACTION = "merge request action {action} does not grade"
REASON_CLOSED = "the merge request was closed"
REASON_NOT_OPEN = "the merge request is not open"
OPEN_STATE = "opened"
REASON_NO_HEAD_COMMIT = "the merge request has no head commit"
REASON_FROM_FORK = ("the merge request comes from another project (a fork): its commits are "
                    "graded by the pushes to that project, if a course claims it")

router = Router()


@router.register("merge_request", "open")
@router.register("merge_request", "reopen")
def opened(event: Event, context: Context) -> Decision:
    """Grade the head commit of a merge request that was opened or reopened."""
    return merge_request_jobs(event.merge_request, context)


@router.register("merge_request", "update")
def updated(event: Event, context: Context) -> Decision:
    """Grade the head when its code changed (`oldrev`, spec §3) or its target branch did."""
    # A new target is a new diff base, and onto a submission branch it makes a submission.
    if event.merge_request.oldrev is None and not event.target_branch_changed:
        return Ignored(REASON_NO_CODE_CHANGE)
    if not is_open(event.merge_request):
        return Ignored(REASON_NOT_OPEN)
    return merge_request_jobs(event.merge_request, context)


def is_open(merge_request: MergeRequest) -> bool:
    """Tell whether a merge request is open (a payload without its state counts as open)."""
    return merge_request.state in (None, OPEN_STATE)


@router.register("merge_request", "close")
def closed(event: Event, context: Context) -> Decision:
    """Cancel the runs of a closed merge request that are still queued."""
    return Jobs(cancel=CancelRuns(merge_request_iid=event.merge_request.iid,
                                  reason=REASON_CLOSED))


@router.register("merge_request")
def other_action(event: Event, context: Context) -> Decision:
    """Ignore approvals, merges and every other action that does not change the code."""
    return Ignored(REASON_NOT_GRADING_ACTION.format(action=event.action or "(none)"))


def merge_request_jobs(merge_request: MergeRequest, context: Context,
                       requested_by_user_id: int | None = None) -> Decision:
    """Request grading of a merge request's head for every known assignment, diffed later.

    The payload does not list the merge request's changed files, so the worker diffs the head
    against the target branch. A merge request into an assignment's submission branch (its
    own, else the course's) is a submission of that assignment.

    A merge request from a fork is not graded: its head belongs to the fork, yet the run would
    be the target project's, its status posted on the target's branch of the source branch's
    name, and a submission credited to the target's owner.
    """
    if merge_request.comes_from_fork:
        return Ignored(REASON_FROM_FORK)
    if merge_request.last_commit_sha is None:
        return Ignored(REASON_NO_HEAD_COMMIT)
    assignments = known_assignments(context.assignments)
    if not assignments:
        return Ignored(REASON_NO_ASSIGNMENTS)
    course = context.course
    return Jobs(tuple(
        JobRequest(task=(SUBMISSION_PROCESSING
                         if merge_request.target_branch == course.submission_branch_for(assignment)
                         else STUDENT_TESTING),
                   assignment=assignment, commit_sha=merge_request.last_commit_sha,
                   ref=BRANCH_PREFIX + merge_request.source_branch,
                   branch=merge_request.source_branch, base_branch=merge_request.target_branch,
                   needs_diff=True, merge_request_iid=merge_request.iid,
                   requested_by_user_id=requested_by_user_id)
        for assignment in assignments))
