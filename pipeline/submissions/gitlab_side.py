"""What a submission changes on GitLab: its branch, moved forward only, and its merge request."""

from __future__ import annotations

import logging

from gitlab_client import (GitLabClient, MergeRequest, NotFoundGitLabError, RejectedGitLabError,
                           id_or_path)
from pipeline.config import SUBMISSION_BRANCH_PREFIX
from pipeline.ledger.models import Submission
from pipeline.repos import RepositoryCache
from pipeline.submissions.verdict import NOT_FAST_FORWARD

log = logging.getLogger(__name__)

MERGE_REQUEST_TITLE = "Submission: {directory}"
MERGE_REQUEST_DESCRIPTION = ("gradehook hands in `{directory}` from this branch. Each accepted "
                             "submission moves the branch forward to the submitted commit; the "
                             "comment below records every submission and its result.")
OPENED, CLOSED, MERGED = "opened", "closed", "merged"
# GitLab's state of a merge request while it merges it (spec/gitlab.md §7): merged, or open
# again should the merge fail.
LOCKED = "locked"
MERGING_STATES = (LOCKED, MERGED)
# The states in which a merge request into a submission branch hands its head commit in: open,
# being merged, or merged (its merge being the hand-in).
HANDING_IN_STATES = (OPENED, *MERGING_STATES)


def project_of(submission: Submission) -> int | str:
    """Return how to name a submission's project to GitLab: its id, else its path."""
    return id_or_path(submission.project_id, submission.project_path)


class BranchMoveError(Exception):
    """The submission branch is somewhere the submitted commit does not descend from."""


def submission_branch(directory: str) -> str:
    """Return the branch an assignment directory is handed in from."""
    return SUBMISSION_BRANCH_PREFIX + directory


def branch_head(gitlab: GitLabClient, project: int | str, branch: str) -> str | None:
    """Return the commit a branch points at, or None when there is no such branch."""
    try:
        return gitlab.get_branch(project, branch).commit_sha
    except NotFoundGitLabError:
        return None


def forward_block(repos: RepositoryCache, project_path: str, branch: str, head: str | None,
                  sha: str) -> str | None:
    """Return why a branch at `head` cannot move to `sha` (not a fast-forward), or None."""
    if head is None or head == sha or _descends(repos, project_path, head, sha):
        return None
    return NOT_FAST_FORWARD.format(branch=branch, head=head[:12])


def put_branch_at(gitlab: GitLabClient, repos: RepositoryCache, project: int | str,
                  project_path: str, branch: str, sha: str) -> None:
    """Make a branch point at a commit: create it, or move it forward (never back or aside).

    GitLab's API cannot move a branch, so it is deleted and made again at the commit; GitLab
    closes merge requests from a deleted branch, and `open_or_reuse_merge_request` reopens them.
    A failure in between leaves no branch, and running this again completes the move.
    """
    head = branch_head(gitlab, project, branch)
    if head == sha or (head is not None and _descends(repos, project_path, sha, head)):
        return  # already there, or ahead with a later submission: never move it back
    if head is not None:
        if not _descends(repos, project_path, head, sha):
            raise BranchMoveError(NOT_FAST_FORWARD.format(branch=branch, head=head[:12]))
        gitlab.delete_branch(project, branch)
        log.info("%s: moving %s from %s to %s", project_path, branch, head[:12], sha[:12])
    gitlab.create_branch(project, branch, sha)


def merged_merge_request(gitlab: GitLabClient, project: int | str, branch: str,
                         target: str) -> MergeRequest | None:
    """Return a merge request from the branch into the target that was already merged."""
    merged = gitlab.find_merge_requests(project, branch, target, MERGED)
    return merged[0] if merged else None


def open_merge_request_of(gitlab: GitLabClient, project: int | str, branch: str,
                          target: str) -> MergeRequest | None:
    """Return the open merge request from the branch into the target, if any."""
    found = gitlab.find_open_merge_requests(project, branch, target)
    return found[0] if found else None


def open_or_reuse_merge_request(gitlab: GitLabClient, project: int | str, directory: str,
                                target: str) -> MergeRequest:
    """Return the branch's open merge request into the target: reused, reopened, or new."""
    branch = submission_branch(directory)
    found = open_merge_request_of(gitlab, project, branch, target)
    if found is not None:
        return found
    for closed in gitlab.find_merge_requests(project, branch, target, CLOSED):
        reopened = gitlab.reopen_merge_request(project, closed.iid)
        if reopened.state == OPENED:
            return reopened
    try:
        return gitlab.open_merge_request(
            project, branch, target, MERGE_REQUEST_TITLE.format(directory=directory),
            MERGE_REQUEST_DESCRIPTION.format(directory=directory))
    except RejectedGitLabError:
        # Another worker opened it a moment ago (GitLab: "Another open merge request already
        # exists for this source branch"): that one is ours too.
        found = open_merge_request_of(gitlab, project, branch, target)
        if found is None:
            raise
        return found


def _descends(repos: RepositoryCache, project_path: str, ancestor: str, sha: str) -> bool:
    """Tell whether `sha` has `ancestor` in its history (fetching `ancestor` if needed)."""
    repos.ensure_commit(project_path, ancestor)
    repos.ensure_commit(project_path, sha)
    return repos.merge_base(project_path, ancestor, sha) == ancestor
