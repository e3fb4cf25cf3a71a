"""Lock names of the runs of a branch, a merge request and a commit, shared by their writers."""

from __future__ import annotations

# Kept as they are: processes of two releases running side by side must lock the same names.
_BRANCH_LOCK, _MERGE_REQUEST_LOCK = "intake branch", "intake merge request"


def branch_lock(project_path: str, branch: str, assignment: str) -> tuple[str, ...]:
    """Name the queued runs of a branch: whoever adds one or supersedes them holds it (but a
    request to grade a commit naming no branch: see pipeline.regrade._lock_runs)."""
    return (_BRANCH_LOCK, project_path, branch, assignment)


def merge_request_lock(project_path: str, iid: int) -> tuple[str, ...]:
    """Name the runs of a merge request: whoever adds one or cancels them holds it."""
    return (_MERGE_REQUEST_LOCK, project_path, str(iid))


def commit_lock(project_path: str, commit_sha: str, assignment: str) -> tuple[str, ...]:
    """Name the runs grading a commit: whoever adds one or looks for one to reuse holds it (the
    intake, a retest's delivery too, regrades, the sweep of unseen branch heads)."""
    return (project_path, commit_sha, assignment)
