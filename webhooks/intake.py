"""Record a decided delivery in one transaction: the delivery, its runs, superseded and cancelled."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import CourseSettings
from pipeline.dispatch import new_task_id
from pipeline.ledger.db import transaction
from pipeline.ledger.models import Delivery, RunStatus, TestRun, new_id, utcnow
from webhooks.events import Event
from webhooks.handlers.decisions import CancelRuns, Decision, Ignored, JobRequest

log = logging.getLogger(__name__)

SUPERSEDED_REASON = "superseded by a newer push ({sha})"
RUN_KINDS = {"push": "push", "merge_request": "merge_request", "note": "retest"}
SUBMISSION_KIND = "submission"
# Runs that already grade a commit: a second request for the same commit and assignment
# (a push and its merge request update, say) reuses them. A retest always makes a new run.
REUSABLE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PASSED, RunStatus.FAILED)


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to a delivery, and the runs to publish once it is committed."""

    status: int
    body: dict
    to_send: tuple[tuple[str, str], ...] = ()
    duplicate: bool = False


def record_delivery(sessions: sessionmaker[Session], event: Event, decision: Decision,
                    course: CourseSettings | None, *, source: str = "webhook") -> Answer:
    """Store a delivery and what it asks for; a repeated delivery key gets the first answer."""
    delivery = Delivery(id=new_id(), delivery_key=event.delivery_key, source=source,
                        event=event.event_header, project_id=event.project_id,
                        project_path=event.project_path, ref=event.ref, received_at=utcnow())
    try:
        with transaction(sessions) as session:
            session.add(delivery)
            session.flush()  # the unique delivery key settles a race here, before any work
            answer = _apply(session, delivery, event, decision, course)
            delivery.response_status, delivery.response_body = answer.status, answer.body
    except IntegrityError:
        first = _first_answer(sessions, event.delivery_key)
        if first is None:
            raise
        return first
    return answer


def _apply(session: Session, delivery: Delivery, event: Event, decision: Decision,
           course: CourseSettings | None) -> Answer:
    if isinstance(decision, Ignored):
        return Answer(200, {"status": "ignored", "reason": decision.reason,
                            "delivery_id": delivery.id})
    cancelled = _cancel(session, event, decision.cancel) if decision.cancel else []
    superseded = _supersede(session, event, decision.requests)
    created, reused = [], []
    for request in decision.requests:
        existing = None if event.kind == "note" else _reusable_run(session, event, request)
        if existing is not None:
            reused.append(existing)
            continue
        run = _new_run(delivery, event, request, course)
        session.add(run)
        created.append(run)
    session.flush()
    body = {"status": "queued" if created else "recorded", "delivery_id": delivery.id,
            "runs": [run.id for run in created], "existing_runs": reused,
            "superseded": superseded, "cancelled": cancelled}
    if decision.cancel:
        body["reason"] = decision.cancel.reason
    return Answer(202 if created else 200, body,
                  to_send=tuple((run.id, run.celery_task_id) for run in created))


def _new_run(delivery: Delivery, event: Event, request: JobRequest,
             course: CourseSettings) -> TestRun:
    now = utcnow()
    kind = SUBMISSION_KIND if request.task == "submission_processing" \
        else RUN_KINDS.get(event.kind, event.kind)
    return TestRun(
        id=new_id(), delivery_id=delivery.id, kind=kind, course=course.name,
        assignment=request.assignment, project_id=event.project_id,
        project_path=event.project_path, ref=request.branch, commit_sha=request.commit_sha,
        before_sha=request.before_sha, base_branch=request.base_branch,
        needs_diff=request.needs_diff, merge_request_iid=request.merge_request_iid,
        requested_by_user_id=request.requested_by_user_id,
        reference_project=course.reference_project, reference_ref=course.reference_branch,
        status=RunStatus.QUEUED, received_at=delivery.received_at, queued_at=now, sent_at=now,
        celery_task_id=new_task_id())


def _reusable_run(session: Session, event: Event, request: JobRequest) -> str | None:
    return session.scalar(
        select(TestRun.id).where(TestRun.project_path == event.project_path,
                                 TestRun.commit_sha == request.commit_sha,
                                 TestRun.assignment == request.assignment,
                                 TestRun.status.in_(REUSABLE_STATUSES)).limit(1))


def _supersede(session: Session, event: Event, requests: tuple[JobRequest, ...]) -> list[str]:
    superseded: list[str] = []
    for request in requests:
        if not request.supersedes:
            continue
        result = session.execute(
            update(TestRun)
            .where(TestRun.project_path == event.project_path, TestRun.ref == request.branch,
                   TestRun.assignment == request.assignment,
                   TestRun.status == RunStatus.QUEUED,
                   TestRun.commit_sha != request.commit_sha)
            .values(status=RunStatus.SUPERSEDED, superseded_by=request.commit_sha,
                    status_reason=SUPERSEDED_REASON.format(sha=request.commit_sha[:12]),
                    stage="done", finished_at=utcnow())
            .returning(TestRun.id)
            .execution_options(synchronize_session=False))
        superseded.extend(result.scalars())
    return superseded


def _cancel(session: Session, event: Event, cancel: CancelRuns) -> list[str]:
    result = session.execute(
        update(TestRun)
        .where(TestRun.project_path == event.project_path,
               TestRun.merge_request_iid == cancel.merge_request_iid,
               TestRun.status == RunStatus.QUEUED)
        .values(status=RunStatus.CANCELLED, status_reason=cancel.reason, stage="done",
                finished_at=utcnow())
        .returning(TestRun.id)
        .execution_options(synchronize_session=False))
    return list(result.scalars())


def _first_answer(sessions: sessionmaker[Session], delivery_key: str) -> Answer | None:
    with sessions() as session:
        first = session.scalars(select(Delivery).where(Delivery.delivery_key == delivery_key)
                                ).one_or_none()
        if first is None:
            return None
        log.info("delivery %s repeats %s; answering as the first time", delivery_key, first.id)
        return Answer(first.response_status, first.response_body, duplicate=True)
