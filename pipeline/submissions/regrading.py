"""Give a pending submission a new run of its commit: its run never graded it, or failed on us."""

from __future__ import annotations

import logging

from celery import Celery
from sqlalchemy import update

from pipeline.config import CourseSettings
from pipeline.context import Resources
from pipeline.dispatch import send_runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, Submission, TestRun
from pipeline.regrade import GradingTarget, grading_in
from pipeline.reports.model import read_report
from pipeline.submissions.verdict import PENDING

log = logging.getLogger(__name__)

SUBMISSION_RUN_KIND = "submission"


def ended_in_our_error(run: TestRun) -> bool:
    """Tell whether a run ended in an error of ours (git, GitLab, the database, the sandbox),
    which grading again may get past, not in the course's."""
    if run.status != RunStatus.ERROR:
        return False
    view = read_report(run.report)
    return view is None or view.course_error is None


def grade_again(resources: Resources, celery: Celery, course: CourseSettings,
                submission: Submission, *, retry: bool = False) -> TestRun:
    """Give a submission whose run never graded its commit (superseded, cancelled) a new run;
    with `retry`, also when its run ended in error."""
    target = GradingTarget(course=course, project_path=submission.project_path,
                           commit_sha=submission.commit_sha, assignment=submission.assignment,
                           project_id=submission.project_id,
                           merge_request_iid=submission.merge_request_iid)
    with transaction(resources.sessions) as session:
        # Moved in the transaction that finds (and locks) or makes the run: a run ending now
        # has ended when it is read here, or its hand-off waits for the move and sends it on.
        run, created = grading_in(session, target, kind=SUBMISSION_RUN_KIND, retry=retry,
                                  requested_by=submission.requested_by_user_id, lock=True)
        # A submission waiting on a run that has not ended has no message on its way: the
        # run's end sends one, and if the run ends without a hand-off (a newer push supersedes
        # it) the reconciler's next sweep does, instead of taking it for sent 15 minutes.
        unsent = {} if run.status.final else {"sent_at": None}
        session.execute(update(Submission).where(Submission.id == submission.id,
                                                 Submission.outcome == PENDING)
                        .values(run_id=run.id, **unsent))
    if created:
        log.info("submission %s: its commit graded again in run %s", submission.id, run.id)
        send_runs(celery, resources.sessions, [(run.id, run.celery_task_id)])
    return run
