"""Record a decided delivery in one transaction: the delivery, its runs, superseded, cancelled."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import CourseSettings
from pipeline.dispatch import new_task_id
from pipeline.ledger.db import transaction
from pipeline.ledger.models import Delivery, RunStatus, TestRun, new_id, utcnow
from pipeline.submissions.ledger import MERGE_REQUEST_SOURCE, record_submissions, submission_row
from webhooks.events import Event
from webhooks.handlers.decisions import (SUBMISSION_PROCESSING, CancelRuns, Decision, Ignored,
                                         JobRequest)

log = logging.getLogger(__name__)

SUPERSEDED_REASON = "superseded by a newer push ({sha})"
RUN_KINDS = {"push": "push", "merge_request": "merge_request", "note": "retest"}
SUBMISSION_KIND = "submission"
# Runs that already grade a commit: a second request for the same commit and assignment
# (a push and its merge request update, say) reuses them. A retest always makes a new run.
REUSABLE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PASSED, RunStatus.FAILED)
# Intake writes through the tables, not the ORM, with statements built once: a delivery costs
# a few statements and no flushes.
DELIVERIES = Delivery.__table__
RUNS = TestRun.__table__
INSERT_DELIVERY = insert(DELIVERIES)
INSERT_RUNS = insert(RUNS)
SELECT_REUSABLE = (
    select(RUNS.c.assignment, RUNS.c.commit_sha, RUNS.c.id)
    .where(RUNS.c.project_path == bindparam("project"),
           RUNS.c.commit_sha.in_(bindparam("commit_shas", expanding=True)),
           RUNS.c.assignment.in_(bindparam("assignments", expanding=True)),
           RUNS.c.status.in_(REUSABLE_STATUSES))
    .order_by(RUNS.c.queued_at))
SUPERSEDE_QUEUED = (
    update(RUNS)
    .where(RUNS.c.project_path == bindparam("project"), RUNS.c.ref == bindparam("branch"),
           RUNS.c.assignment.in_(bindparam("assignments", expanding=True)),
           RUNS.c.status == RunStatus.QUEUED, RUNS.c.commit_sha != bindparam("newer_sha"))
    .values(status=RunStatus.SUPERSEDED, superseded_by=bindparam("newer_sha"),
            status_reason=bindparam("reason"), stage="done", finished_at=bindparam("now"))
    .returning(RUNS.c.id))
CANCEL_QUEUED = (
    update(RUNS)
    .where(RUNS.c.project_path == bindparam("project"),
           RUNS.c.merge_request_iid == bindparam("iid"), RUNS.c.status == RunStatus.QUEUED)
    .values(status=RunStatus.CANCELLED, status_reason=bindparam("reason"), stage="done",
            finished_at=bindparam("now"))
    .returning(RUNS.c.id))


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to a delivery, and the runs to publish once it is committed."""

    status: int
    body: dict
    to_send: tuple[tuple[str, str], ...] = ()
    duplicate: bool = False


def record_delivery(sessions: sessionmaker[Session], event: Event, decision: Decision,
                    course: CourseSettings | None, *, source: str = "webhook") -> Answer:
    """Store a delivery and what it asks for; a repeated delivery key gets the first answer.

    The delivery row, with its answer, is written after the supersede and cancel updates, in
    the same transaction: a concurrent delivery with the same key then fails on the unique key
    and rolls everything back, and the caller answers it as the first time.
    """
    try:
        with transaction(sessions) as session:
            return _record(session.connection(), event, decision, course, source)
    except IntegrityError:
        first = _first_answer(sessions, event.delivery_key)
        if first is None:
            raise
        return first


def _record(connection: Connection, event: Event, decision: Decision,
            course: CourseSettings | None, source: str) -> Answer:
    delivery_id, received_at = new_id(), utcnow()
    if isinstance(decision, Ignored):
        answer = Answer(200, {"status": "ignored", "reason": decision.reason,
                              "delivery_id": delivery_id})
        _insert_delivery(connection, event, delivery_id, received_at, source, answer)
        return answer
    cancelled = _cancel(connection, event, decision.cancel) if decision.cancel else []
    superseded = _supersede(connection, event, decision.requests)
    # A retest always makes a new run.
    reusable = {} if event.kind == "note" else \
        _reusable_runs(connection, event, decision.requests)
    runs, reused = [], []
    for request in decision.requests:
        existing = reusable.get((request.assignment, request.commit_sha))
        if existing is not None:
            reused.append(existing)
        else:
            runs.append(_new_run(delivery_id, received_at, event, request, course))
    body = {"status": "queued" if runs else "recorded", "delivery_id": delivery_id,
            "runs": [run["id"] for run in runs], "existing_runs": reused,
            "superseded": superseded, "cancelled": cancelled}
    if decision.cancel:
        body["reason"] = decision.cancel.reason
    answer = Answer(202 if runs else 200, body,
                    to_send=tuple((run["id"], run["celery_task_id"]) for run in runs))
    _insert_delivery(connection, event, delivery_id, received_at, source, answer)
    if runs:
        connection.execute(INSERT_RUNS, runs)
    record_submissions(connection, _submissions(event, decision.requests, course, received_at,
                                                reusable, runs))
    return answer


def _submissions(event: Event, requests: tuple[JobRequest, ...], course: CourseSettings,
                 received_at: dt.datetime, reusable: dict[tuple[str, str], str],
                 runs: list[dict]) -> list[dict]:
    """Return the submissions that merge requests into the submission branch hand in."""
    created = {(run["assignment"], run["commit_sha"]): run["id"] for run in runs}
    rows = []
    for request in requests:
        if request.task != SUBMISSION_PROCESSING:
            continue
        key = (request.assignment, request.commit_sha)
        run = dict(id=reusable.get(key) or created[key], course=course.name,
                   assignment=request.assignment, project_id=event.project_id,
                   project_path=event.project_path, commit_sha=request.commit_sha)
        rows.append(submission_row(run, source=MERGE_REQUEST_SOURCE, received_at=received_at,
                                   requested_by=request.requested_by_user_id,
                                   branch=request.branch,
                                   merge_request_iid=request.merge_request_iid))
    return rows


def _insert_delivery(connection: Connection, event: Event, delivery_id: str,
                     received_at: dt.datetime, source: str, answer: Answer) -> None:
    connection.execute(INSERT_DELIVERY, dict(
        id=delivery_id, delivery_key=event.delivery_key, source=source,
        event=event.event_header, project_id=event.project_id, project_path=event.project_path,
        ref=event.ref, received_at=received_at, response_status=answer.status,
        response_body=answer.body))


def _new_run(delivery_id: str, received_at: dt.datetime, event: Event, request: JobRequest,
             course: CourseSettings) -> dict:
    now = utcnow()
    kind = SUBMISSION_KIND if request.task == SUBMISSION_PROCESSING \
        else RUN_KINDS.get(event.kind, event.kind)
    return dict(
        id=new_id(), delivery_id=delivery_id, kind=kind, course=course.name,
        assignment=request.assignment, project_id=event.project_id,
        project_path=event.project_path, ref=request.branch, commit_sha=request.commit_sha,
        before_sha=request.before_sha, base_branch=request.base_branch,
        needs_diff=request.needs_diff, merge_request_iid=request.merge_request_iid,
        requested_by_user_id=request.requested_by_user_id,
        reference_project=course.reference_project, reference_ref=course.reference_branch,
        status=RunStatus.QUEUED, received_at=received_at, queued_at=now, sent_at=now,
        celery_task_id=new_task_id())


def _reusable_runs(connection: Connection, event: Event, requests: tuple[JobRequest, ...]
                   ) -> dict[tuple[str, str], str]:
    """Return a run already grading each requested (assignment, commit), in one query."""
    if not requests:
        return {}
    rows = connection.execute(SELECT_REUSABLE, dict(
        project=event.project_path, commit_shas=sorted({r.commit_sha for r in requests}),
        assignments=sorted({r.assignment for r in requests})))
    found: dict[tuple[str, str], str] = {}
    for assignment, commit_sha, run_id in rows:
        found.setdefault((assignment, commit_sha), run_id)
    return found


def _supersede(connection: Connection, event: Event, requests: tuple[JobRequest, ...]
               ) -> list[str]:
    """Supersede older queued runs of each pushed branch: one update per (branch, commit)."""
    assignments: dict[tuple[str, str], list[str]] = {}
    for request in requests:
        if request.supersedes:
            assignments.setdefault((request.branch, request.commit_sha), []).append(
                request.assignment)
    superseded: list[str] = []
    for (branch, commit_sha), names in assignments.items():
        result = connection.execute(SUPERSEDE_QUEUED, dict(
            project=event.project_path, branch=branch, assignments=names,
            newer_sha=commit_sha, reason=SUPERSEDED_REASON.format(sha=commit_sha[:12]),
            now=utcnow()))
        superseded.extend(result.scalars())
    return superseded


def _cancel(connection: Connection, event: Event, cancel: CancelRuns) -> list[str]:
    result = connection.execute(CANCEL_QUEUED, dict(
        project=event.project_path, iid=cancel.merge_request_iid, reason=cancel.reason,
        now=utcnow()))
    return list(result.scalars())


def _first_answer(sessions: sessionmaker[Session], delivery_key: str) -> Answer | None:
    with sessions() as session:
        first = session.scalars(select(Delivery).where(Delivery.delivery_key == delivery_key)
                                ).one_or_none()
        if first is None:
            return None
        log.info("delivery %s repeats %s; answering as the first time", delivery_key, first.id)
        return Answer(first.response_status, first.response_body, duplicate=True)
