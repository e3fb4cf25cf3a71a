"""What a handler is given (Context) and what it decides (Ignored, or Jobs of JobRequests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

from pipeline.config import CourseSettings

STUDENT_TESTING = "student_testing"
SUBMISSION_PROCESSING = "submission_processing"
DEFAULT_RETEST_COMMAND = "/retest"


@dataclass(frozen=True)
class Context:
    """What a decision needs beyond the event, looked up by the caller.

    `course` is `settings.course_for(event.project_path)` (None when no course claims the
    project); `assignments` are that course's known assignment directories.
    """

    course: CourseSettings | None
    assignments: Sequence[str] = ()
    bot_username: str = ""
    retest_command: str = DEFAULT_RETEST_COMMAND


@dataclass(frozen=True)
class JobRequest:
    """One grading job: a task for one (commit, assignment).

    When `needs_diff` is True the payload could not tell which assignments changed; the worker
    diffs the commit against `before_sha` if set, else against its merge base with
    `base_branch`, and drops the request if the assignment is untouched. With neither set
    (the first push to a project's default branch) every assignment present counts as changed.
    """

    task: str
    assignment: str
    commit_sha: str
    ref: str
    branch: str
    before_sha: str | None = None
    base_branch: str | None = None
    needs_diff: bool = False
    merge_request_iid: int | None = None
    requested_by_user_id: int | None = None
    supersedes: bool = False


@dataclass(frozen=True)
class CancelRuns:
    """Cancel the runs of a merge request that are still queued."""

    merge_request_iid: int
    reason: str


@dataclass(frozen=True)
class Ignored:
    """Nothing to do; reason is a short human sentence for the 2xx answer and the log."""

    reason: str


@dataclass(frozen=True)
class Jobs:
    """Work to record and enqueue: job requests, and optionally runs to cancel."""

    requests: tuple[JobRequest, ...] = ()
    cancel: CancelRuns | None = field(default=None)


Decision = Union[Ignored, Jobs]
