"""SQLAlchemy models of the ledger: deliveries, test runs, submissions, course rosters,
execution backends."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Enum, Float, ForeignKey, Index,
                        Integer, MetaData, String, Text, TypeDecorator, UniqueConstraint)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.timezone.utc)


def in_utc(moment: dt.datetime) -> dt.datetime:
    """Return a moment in UTC; a naive one is taken to be UTC already, as the ledger stores it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


class UtcTime(TypeDecorator):
    """A moment stored in UTC and read back aware, in UTC, from either database.

    SQLite keeps no time zone: it stores a moment's wall-clock time and gives it back naive.
    PostgreSQL gives moments back in its session's time zone, which need not be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        """Bind moments compared with a ledger time as ledger times; others (the interval of
        `finished_at - interval`) as their own type."""
        if isinstance(value, dt.datetime):
            return self
        return self.impl.coerce_compared_value(op, value)

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else in_utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else in_utc(value)


def new_id() -> str:
    """Return a new unguessable identifier (128 random bits, URL-safe), never beginning with
    `-`, which a command line would take for an option (`gradehook regrade run <id>`)."""
    while (identifier := secrets.token_urlsafe(16)).startswith("-"):
        continue
    return identifier


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RunStatus(str, enum.Enum):
    """Where a test run is; the last five are final."""

    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """Tell whether no further transition is possible."""
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


FINAL_STATUSES = tuple(s for s in RunStatus if s.final)
# Final statuses of a run withdrawn before it graded its commit (a newer push superseded it, a
# close cancelled it): it gives no grade, to regrade from or to judge a submission by.
UNGRADED_STATUSES = (RunStatus.SUPERSEDED, RunStatus.CANCELLED)


class Delivery(Base):
    """One webhook delivery or API request, unique by its delivery key, with its first answer."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    delivery_key: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # webhook, api, reconciler, cli
    event: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    project_path: Mapped[str | None] = mapped_column(String(255))
    ref: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)
    response_status: Mapped[int] = mapped_column(Integer, default=202)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    runs: Mapped[list[TestRun]] = relationship(back_populates="delivery")


class TestRun(Base):
    """The grading of one commit for one assignment, from queued to a final status."""

    __tablename__ = "test_runs"
    __test__ = False  # not a pytest class

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    delivery_id: Mapped[str | None] = mapped_column(ForeignKey("deliveries.id"))
    kind: Mapped[str] = mapped_column(String(16), default="push")  # push, merge_request, ...
    course: Mapped[str] = mapped_column(String(128))
    assignment: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    project_path: Mapped[str] = mapped_column(String(255))
    ref: Mapped[str | None] = mapped_column(String(255))
    commit_sha: Mapped[str] = mapped_column(String(64))
    before_sha: Mapped[str | None] = mapped_column(String(64))
    merge_request_iid: Mapped[int | None] = mapped_column(Integer)
    # The payload could not tell which assignments changed: the worker diffs against
    # before_sha, else against the merge base with base_branch, and cancels untouched runs.
    needs_diff: Mapped[bool] = mapped_column(Boolean, default=False)
    base_branch: Mapped[str | None] = mapped_column(String(255))
    requested_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    reference_project: Mapped[str] = mapped_column(String(255))
    reference_ref: Mapped[str] = mapped_column(String(255))
    reference_sha: Mapped[str | None] = mapped_column(String(64))

    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="run_status", values_callable=lambda e: [m.value for m in e],
             native_enum=False, length=16),
        default=RunStatus.QUEUED)
    status_reason: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float | None] = mapped_column(Float)
    tests_passed: Mapped[int | None] = mapped_column(Integer)
    tests_total: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reported_status: Mapped[str | None] = mapped_column(String(16))

    received_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)
    queued_at: Mapped[dt.datetime | None] = mapped_column(UtcTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    cloned_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    tested_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    reported_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    # When the comments of the run's merge requests were last brought up to date with it (or
    # it was found to have none): unset on a graded run, the reconciler asks for them again.
    commented_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    # How often the reconciler asked again for the run's GitLab update, and when it may next;
    # why GitLab refused that update for good (the project gone, or the token's access to it),
    # after which nobody asks again.
    report_requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    report_due_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    report_refused: Mapped[str | None] = mapped_column(Text)

    delivery: Mapped[Delivery | None] = relationship(back_populates="runs")

    __table_args__ = (
        Index("ix_test_runs_branch", "project_path", "ref", "assignment", "status"),
        Index("ix_test_runs_commit", "project_path", "commit_sha", "assignment"),
        Index("ix_test_runs_status", "status", "sent_at"),
        Index("ix_test_runs_task", "celery_task_id"),
        Index("ix_test_runs_badge", "project_id", "assignment", "ref", "finished_at"),
    )


class CourseAssignment(Base):
    """An assignment directory found in a course's reference repository (holding test.yaml)."""

    __tablename__ = "course_assignments"

    course: Mapped[str] = mapped_column(String(128), primary_key=True)
    directory: Mapped[str] = mapped_column(String(255), primary_key=True)
    reference_sha: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)


class ReferenceCheck(Base):
    """What the reconciler last met fetching a course's reference: a problem for staff, or none."""

    __tablename__ = "reference_checks"

    course: Mapped[str] = mapped_column(String(128), primary_key=True)
    # The reference checked: a check of another one (config.toml changed since) says nothing.
    reference_project: Mapped[str] = mapped_column(String(255))
    reference_branch: Mapped[str] = mapped_column(String(255))
    checked_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)
    problem: Mapped[str | None] = mapped_column(Text)


class CourseRoster(Base):
    """When a course's student projects were last read from GitLab, and what that read could
    not list."""

    __tablename__ = "course_rosters"

    course: Mapped[str] = mapped_column(String(128), primary_key=True)
    read_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)
    # When GitLab last listed the course's projects (None: never): a read it failed keeps them.
    listed_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    # What the last read could not list, each {"group": a group, or None for the whole course,
    # "reason": GitLab's answer, "kept_from": when the projects kept for it were listed, or None}.
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)


class RosterProject(Base):
    """A student project of a course as GitLab last listed it (its id), or as the course names
    it by path (no id)."""

    __tablename__ = "roster_projects"

    course: Mapped[str] = mapped_column(String(128), primary_key=True)
    project_path: Mapped[str] = mapped_column(String(255), primary_key=True)
    project_id: Mapped[int | None] = mapped_column(BigInteger)


class MergeRequestComment(Base):
    """gradehook's one comment on a merge request; its row serialises concurrent updates."""

    __tablename__ = "merge_request_comments"

    project_path: Mapped[str] = mapped_column(String(255), primary_key=True)
    merge_request_iid: Mapped[int] = mapped_column(Integer, primary_key=True)
    note_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)


class Submission(Base):
    """A graded hand-in of one assignment at one commit: the record staff grade from."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("test_runs.id"))
    course: Mapped[str] = mapped_column(String(128))
    assignment: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    project_path: Mapped[str] = mapped_column(String(255))
    commit_sha: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(255))
    merge_request_iid: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16), default="pending")  # accepted, refused, error
    reason: Mapped[str | None] = mapped_column(Text)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api, merge_request
    requested_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    # When gradehook first received the commit: the moment the deadline is checked against.
    counted_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    deadline: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    # The assignment's limit on accepted submissions when this one was judged, and how many
    # the student had used with it: what its comment says, however often it is written.
    submission_limit: Mapped[int | None] = mapped_column(Integer)
    submissions_used: Mapped[int | None] = mapped_column(Integer)
    # Refused only because its merge request was closed or pointed elsewhere when processed:
    # reopening it (or pointing it back) at the same commit processes it again.
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    # How often the commit was handed in: a judge that finds it grown since it looked at GitLab
    # knows that a reopen came meanwhile.
    hand_ins: Mapped[int] = mapped_column(Integer, default=0)
    # The merge request it was handed in through before its current one (closed, retargeted,
    # or left for a newer one): that one's comment is written again to name the current one.
    previous_merge_request_iid: Mapped[int | None] = mapped_column(Integer)
    # Ended in an error of ours: when it first did, and when the reconciler processes it again
    # (None: not again, as after the course's errors).
    failing_since: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    retry_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)

    __table_args__ = (UniqueConstraint("project_path", "assignment", "commit_sha",
                                       name="uq_submissions_commit"),
                      Index("ix_submissions_run", "run_id", "outcome"),
                      Index("ix_submissions_student", "project_path", "assignment", "outcome"),
                      Index("ix_submissions_retry_at", "retry_at"))


class MergeRequestNotice(Base):
    """A merge request that handed in a commit whose submission is held by another (or the
    API): its comment is to say where and how that submission was decided."""

    __tablename__ = "merge_request_notices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"))
    merge_request_iid: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcTime, default=utcnow)
    # When its message went to the broker (None: not yet, or the broker refused it).
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)
    # When its comment was first written (or found not to be needed any more).
    told_at: Mapped[dt.datetime | None] = mapped_column(UtcTime)

    __table_args__ = (UniqueConstraint("submission_id", "merge_request_iid",
                                       name="uq_merge_request_notices"),
                      Index("ix_merge_request_notices_untold", "told_at", "created_at"))


class ExecutionBackend(Base):
    """How a course's runs are executed: `celery` workers by default, or `local`."""

    __tablename__ = "execution_backends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32), default="celery")
    slug: Mapped[str] = mapped_column(String(128), unique=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
