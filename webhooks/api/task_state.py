"""A task's state and progress: a run's from the ledger alone, other tasks' also from Celery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery, states
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.ledger.models import RunStatus, Submission, TestRun
from pipeline.ledger.runs import STAGES
from pipeline.reports.model import reason_for_students
from pipeline.submissions.verdict import PENDING

STAGE_ORDER = tuple(STAGES)
PROGRESS_STATE = "PROGRESS"
# What the result backend holds for a task the API sent and no worker has started: Celery's
# own PENDING is also what it says of a task it never heard of.
SENT_STATE = "SENT"


@dataclass(frozen=True)
class TaskProgress:
    """Where a task is; for a run's task, also the run's status, stage and the stages reached.

    A submission's task names the run graded for it and shows the submission's outcome as its
    result.
    """

    task_id: str
    state: str
    ready: bool
    run_id: str | None = None
    project_path: str | None = None
    status: RunStatus | None = None
    stage: str | None = None
    percentage: int | None = None
    reason: str | None = None
    result: dict | None = None
    reached: tuple[str, ...] = ()


def task_progress(sessions: sessionmaker[Session], celery: Celery, task_id: str, *,
                  staff: bool) -> TaskProgress | None:
    """Return a task's progress; None when neither the ledger nor Celery knows the task. A run's
    reason is the whole of it for staff, else as students may read it.

    A student_testing task stores nothing in Celery's result backend: the ledger records its
    run's stages and outcome, so the task's state is the run's.
    """
    with sessions() as session:
        run = session.scalars(select(TestRun).where(TestRun.celery_task_id == task_id)
                              .limit(1)).first()
        submission = None if run is not None else session.scalars(
            select(Submission).where(Submission.celery_task_id == task_id).limit(1)).first()
    if run is not None:
        return _run_progress(task_id, run, staff)
    meta = celery.backend.get_task_meta(task_id)
    state = meta.get("status") or states.PENDING
    if submission is not None:
        return _submission_progress(task_id, submission, state)
    if state == states.PENDING:
        return None
    if state == SENT_STATE:
        return TaskProgress(task_id=task_id, state=states.PENDING, ready=False)
    return TaskProgress(task_id=task_id, state=state, ready=state in states.READY_STATES,
                        result=_as_result(meta.get("result")))


def mark_sent(celery: Celery, task_id: str) -> None:
    """Record that a task is about to be sent, so that its progress reads PENDING until a
    worker starts it (the worker's states replace the mark)."""
    celery.backend.store_result(task_id, None, SENT_STATE)


def _task_state_of(run: TestRun) -> str:
    """Return the Celery state a run's task is in, from the run: the task ends with the run.

    A running run with a reason waits for another attempt (its claim clears the reason).
    """
    if run.status.final:
        return states.SUCCESS
    if run.status == RunStatus.QUEUED:
        return states.PENDING
    if run.status_reason is not None:
        return states.RETRY
    return states.STARTED if run.stage == "init" else PROGRESS_STATE


def reached_stages(run: TestRun) -> tuple[str, ...]:
    """Return the stages a run has been through, in order, as far as the ledger shows them.

    Stages with a phase timestamp are known from it even when nobody looked at the right moment;
    `clone` and `tests` are known from the timestamp of the stage after them.
    """
    evidence = {"queued": True, "init": run.started_at is not None,
                "clone": run.cloned_at is not None, "environment": run.cloned_at is not None,
                "tests": run.tested_at is not None, "results": run.tested_at is not None,
                "done": run.status.final}
    current = run.stage if run.stage in STAGES else STAGE_ORDER[0]
    last = STAGE_ORDER.index(current)
    return tuple(stage for index, stage in enumerate(STAGE_ORDER)
                 if index <= last and (evidence[stage] or stage == current))


def _run_progress(task_id: str, run: TestRun, staff: bool) -> TaskProgress:
    reason = run.status_reason if staff else reason_for_students(run.status_reason, run.report)
    return TaskProgress(task_id=task_id, state=_task_state_of(run), ready=run.status.final,
                        run_id=run.id, project_path=run.project_path, status=run.status,
                        stage=run.stage, percentage=run.progress, reason=reason,
                        reached=reached_stages(run))


def _submission_progress(task_id: str, submission: Submission, state: str) -> TaskProgress:
    decided = submission.outcome != PENDING
    if state == states.PENDING and decided:
        state = states.SUCCESS
    return TaskProgress(task_id=task_id, state=state,
                        ready=decided or state in states.READY_STATES,
                        run_id=submission.run_id, project_path=submission.project_path,
                        reason=submission.reason,
                        result={"submission_id": submission.id, "outcome": submission.outcome,
                                "late": submission.late})


def _as_result(result: Any) -> dict | None:
    if isinstance(result, dict):
        return result
    if isinstance(result, BaseException):
        return {"error": f"{type(result).__name__}: {result}"}
    return None
