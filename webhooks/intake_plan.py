"""Decide, without I/O, what a batch of deliveries writes: new runs, ended runs and answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

from pipeline.config import CourseSettings
from pipeline.dispatch import new_task_id
from pipeline.ledger.models import RunStatus, new_id, utcnow
from pipeline.regrade import REUSABLE_STATUSES
from webhooks.events import Event, is_zero_sha
from webhooks.handlers.decisions import SUBMISSION_PROCESSING, Decision, Ignored, JobRequest

SUPERSEDED_REASON = "superseded by a newer push ({sha})"
RUN_KINDS = {"push": "push", "merge_request": "merge_request", "note": "retest"}
SUBMISSION_KIND = "submission"


@dataclass(frozen=True)
class Delivered:
    """A verified, parsed and decided delivery, waiting to be recorded."""

    event: Event
    decision: Decision
    course: CourseSettings | None
    source: str = "webhook"


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to a delivery, and the runs to publish once it is committed.

    `decided_elsewhere`: (submission id, merge request iid) of each merge request of the
    delivery that handed in a commit already decided through another, whose comment is to
    say so.
    """

    status: int
    body: dict
    to_send: tuple[tuple[str, str], ...] = ()
    duplicate: bool = False
    decided_elsewhere: tuple[tuple[str, int], ...] = ()


@dataclass
class KnownRun:
    """A run the batch can see: read from the ledger (queued or reusable) or made by the batch."""

    id: str
    project_path: str
    ref: str | None
    assignment: str
    commit_sha: str
    merge_request_iid: int | None
    status: RunStatus


@dataclass
class Recorded:
    """One delivery's share of the batch: its ledger row and the runs it asked for."""

    delivery_row: dict
    new_runs: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    reason: str | None = None
    answer: Answer | None = None


class BatchPlan:
    """Apply deliveries one after another to the runs they can see, as if each were alone.

    `known` are the queued runs the deliveries may supersede or cancel and the runs they may
    reuse, oldest first. Runs made by an earlier delivery of the batch are seen by later ones:
    a newer push supersedes them, a merge request update of the same commit reuses them.
    """

    def __init__(self, known: list[KnownRun]) -> None:
        self._by_branch: dict[tuple, list[KnownRun]] = {}
        self._by_merge_request: dict[tuple, list[KnownRun]] = {}
        self._by_commit: dict[tuple, list[KnownRun]] = {}
        for run in known:
            self._see(run)
        self.new_rows: dict[str, dict] = {}
        self.ended: dict[str, dict] = {}
        self.submissions: list[tuple[Delivered, JobRequest, str, dt.datetime]] = []
        self.recorded: list[Recorded] = []

    def add(self, delivered: Delivered) -> Recorded:
        """Plan one delivery and return its share; its answer is final once the plan is."""
        event, decision = delivered.event, delivered.decision
        delivery_id, received_at = new_id(), utcnow()
        recorded = Recorded(dict(
            id=delivery_id, delivery_key=event.delivery_key, source=delivered.source,
            event=event.event_header, project_id=event.project_id,
            project_path=event.project_path, ref=event.ref, received_at=received_at))
        self.recorded.append(recorded)
        if isinstance(decision, Ignored):
            recorded.answer = Answer(200, {"status": "ignored", "reason": decision.reason,
                                           "delivery_id": delivery_id})
            return recorded
        if decision.cancel:
            recorded.reason = decision.cancel.reason
            recorded.cancelled = self._end(
                self._by_merge_request.get((event.project_path,
                                            decision.cancel.merge_request_iid), ()),
                status=RunStatus.CANCELLED, reason=decision.cancel.reason)
        for request in decision.requests:
            if request.supersedes:
                recorded.superseded += self._end(
                    [run for run in self._by_branch.get(
                        (event.project_path, request.branch, request.assignment), ())
                     if run.commit_sha != request.commit_sha],
                    status=RunStatus.SUPERSEDED, superseded_by=request.commit_sha,
                    reason=SUPERSEDED_REASON.format(sha=request.commit_sha[:12]))
        for request in decision.requests:
            existing = None if event.kind == "note" else self._reusable(event, request)
            run_id = existing or self._new_run(delivery_id, received_at, delivered, request)
            (recorded.reused if existing else recorded.new_runs).append(run_id)
            if request.task == SUBMISSION_PROCESSING:
                self.submissions.append((delivered, request, run_id, received_at))
        return recorded

    def answers(self) -> list[Answer]:
        """Return each delivery's answer, now that no later delivery can change its runs."""
        for recorded in self.recorded:
            if recorded.answer is None:
                recorded.answer = self._answer(recorded)
            recorded.delivery_row.update(response_status=recorded.answer.status,
                                         response_body=recorded.answer.body)
        return [recorded.answer for recorded in self.recorded]

    def _answer(self, recorded: Recorded) -> Answer:
        body = {"status": "queued" if recorded.new_runs else "recorded",
                "delivery_id": recorded.delivery_row["id"], "runs": recorded.new_runs,
                "existing_runs": recorded.reused, "superseded": recorded.superseded,
                "cancelled": recorded.cancelled}
        if recorded.reason:
            body["reason"] = recorded.reason
        to_send = tuple((run_id, self.new_rows[run_id]["celery_task_id"])
                        for run_id in recorded.new_runs
                        if self.new_rows[run_id]["status"] == RunStatus.QUEUED)
        return Answer(202 if recorded.new_runs else 200, body, to_send=to_send)

    def _see(self, run: KnownRun) -> None:
        """Index a run by the keys deliveries look runs up by."""
        for index, key in (
                (self._by_branch, (run.project_path, run.ref, run.assignment)),
                (self._by_merge_request, (run.project_path, run.merge_request_iid)),
                (self._by_commit, (run.project_path, run.commit_sha, run.assignment))):
            index.setdefault(key, []).append(run)

    def _end(self, runs: Iterable[KnownRun], *, status: RunStatus, reason: str,
             superseded_by: str | None = None) -> list[str]:
        """End those of the runs that are still queued, and return their ids."""
        ended = []
        now = utcnow()
        for run in runs:
            if run.status != RunStatus.QUEUED:
                continue
            run.status = status
            values = dict(status=status, superseded_by=superseded_by, status_reason=reason,
                          stage="done", finished_at=now)
            if run.id in self.new_rows:
                self.new_rows[run.id].update(values)
            else:
                self.ended[run.id] = values
            ended.append(run.id)
        return ended

    def _reusable(self, event: Event, request: JobRequest) -> str | None:
        """Return a run grading the request's commit: the branch's own, else (unless a push
        moves an existing branch there) another branch's; None when there is none."""
        runs = [run for run in self._by_commit.get(
                (event.project_path, request.commit_sha, request.assignment), ())
                if run.status in REUSABLE_STATUSES]
        own = next((run.id for run in runs if run.ref == request.branch), None)
        if own is not None or (event.kind == "push" and not is_zero_sha(event.before)):
            return own
        return runs[0].id if runs else None

    def _new_run(self, delivery_id: str, received_at: dt.datetime, delivered: Delivered,
                 request: JobRequest) -> str:
        event, course = delivered.event, delivered.course
        now = utcnow()
        kind = SUBMISSION_KIND if request.task == SUBMISSION_PROCESSING \
            else RUN_KINDS.get(event.kind, event.kind)
        row = dict(
            id=new_id(), delivery_id=delivery_id, kind=kind, course=course.name,
            assignment=request.assignment, project_id=event.project_id,
            project_path=event.project_path, ref=request.branch,
            commit_sha=request.commit_sha, before_sha=request.before_sha,
            base_branch=request.base_branch, needs_diff=request.needs_diff,
            merge_request_iid=request.merge_request_iid,
            requested_by_user_id=request.requested_by_user_id,
            reference_project=course.reference_project, reference_ref=course.reference_branch,
            status=RunStatus.QUEUED, status_reason=None, superseded_by=None, stage="queued",
            finished_at=None, received_at=received_at, queued_at=now, sent_at=now,
            celery_task_id=new_task_id())
        self.new_rows[row["id"]] = row
        self._see(KnownRun(row["id"], event.project_path, request.branch, request.assignment,
                           request.commit_sha, request.merge_request_iid, RunStatus.QUEUED))
        return row["id"]
