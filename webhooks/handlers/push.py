"""Push and tag push events: grade the assignments a branch push touched."""

from __future__ import annotations

from webhooks.events import BRANCH_PREFIX, Event, is_zero_sha
from webhooks.handlers.assignments import (REASON_NO_ASSIGNMENTS, known_assignments,
                                           touched_assignments)
from webhooks.handlers.decisions import (STUDENT_TESTING, Context, Decision, Ignored, JobRequest,
                                         Jobs)
from webhooks.handlers.routing import Router

REASON_TAG_PUSH = "tag pushes are not graded"
REASON_NOT_A_BRANCH = "the push is not to a branch"
REASON_BRANCH_DELETED = "the branch was deleted"
REASON_NO_ASSIGNMENT_TOUCHED = "the push touched no assignment"

router = Router()


@router.register("tag_push")
def tag_push(event: Event, context: Context) -> Decision:
    """Ignore tag pushes: a tag names a commit that its branch push already graded."""
    return Ignored(REASON_TAG_PUSH)


@router.register("push")
def push(event: Event, context: Context) -> Decision:
    """Grade the new head of a branch for every assignment the push touched."""
    if event.branch is None:
        return Ignored(REASON_NOT_A_BRANCH)
    # GitLab docs give no example of a deletion: zeros in `after` or a null checkout_sha.
    if is_zero_sha(event.after) or event.checkout_sha is None:
        return Ignored(REASON_BRANCH_DELETED)
    if is_zero_sha(event.before):
        return _new_branch(event, context)
    # A push listing no commits moved the branch back or aside (a forced push to an older
    # commit): the commits' files cannot tell what changed, a diff with `before` can.
    if event.changed_paths is None or not event.commit_ids:
        return _jobs(event, known_assignments(context.assignments), needs_diff=True,
                     before_sha=event.before)
    touched = touched_assignments(event.changed_paths, context.assignments)
    if not touched:
        return Ignored(REASON_NO_ASSIGNMENT_TOUCHED)
    return _jobs(event, touched, needs_diff=False, before_sha=event.before)


def _new_branch(event: Event, context: Context) -> Decision:
    """Compare a new branch with the default branch; the default branch itself has no base."""
    base = event.default_branch if event.default_branch != event.branch else None
    return _jobs(event, known_assignments(context.assignments), needs_diff=True,
                 base_branch=base)


def _jobs(event: Event, assignments: tuple[str, ...], *, needs_diff: bool,
          before_sha: str | None = None, base_branch: str | None = None) -> Decision:
    if not assignments:
        return Ignored(REASON_NO_ASSIGNMENTS)
    return Jobs(tuple(
        JobRequest(task=STUDENT_TESTING, assignment=assignment, commit_sha=event.after,
                   ref=BRANCH_PREFIX + event.branch, branch=event.branch,
                   before_sha=before_sha, base_branch=base_branch, needs_diff=needs_diff,
                   supersedes=True)
        for assignment in assignments))
