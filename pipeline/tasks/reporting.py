"""Celery task `report_runs(run_ids)`: post what GitLab should show for runs; retry its faults."""

from __future__ import annotations

import logging

from celery import Celery, shared_task

from gitlab_client.errors import GitLabError, TransientGitLabError
from pipeline.celery_app import REPORT
from pipeline.context import Resources, resources_for
from pipeline.feedback import (COMMENTED_STATUSES, mark_commented, sync_commit_status,
                               update_merge_request_comments)
from pipeline.ledger import runs
from pipeline.ledger.db import single_statements
from pipeline.submissions.ledger import GRADED_STATUSES
from pipeline.submissions.processing import show_regrade
from pipeline.tasks.retry import backoff_seconds

log = logging.getLogger(__name__)

# GitLab's answers that asking again for the run gets too: the project is gone (or the commit
# with it), or the token lost its access to it. Such a run is asked for again only once GitLab
# takes another run's status in its project (pipeline.feedback): the access was given back.
REFUSED_FOR_GOOD = (403, 404)
REPORT_REFUSED = "GitLab refused the run's update for good: {error}"
# A decided submission's comment the run's grade is shown in (a regrade's): the run's own
# updates stand, and the run is not failed for it.
SUBMISSION_COMMENT_REFUSED = ("GitLab refused the submission's comment on merge request !{iid} "
                              "for good: {error}")


def report_run(resources: Resources, run_id: str) -> None:
    """Post the run's commit status and, once it has a result, its merge request comments;
    a grade of a commit handed in already shows in its submissions' comments too.

    The run's own comments come first: a submission's comment GitLab fails to take does not
    keep them back (show_regrade passes over one it refuses, and lets a passing fault through
    to be retried). The run is marked as commented only once every comment is written: one a
    passing fault outlasts the retries of is written when the reconciler asks again. One GitLab
    refuses is kept on the run, for staff, as its own refusals are: it is asked for again once
    GitLab takes an update of the project.
    """
    run = sync_commit_status(resources, run_id)
    if run is not None and run.status in COMMENTED_STATUSES:
        # The comment updates are idempotent: a retry after a fault redoes them.
        update_merge_request_comments(resources, run)
        refusals = show_regrade(resources, run_id) if run.status in GRADED_STATUSES else []
        if refusals:
            _keep_refusal(resources, run_id, "; ".join(
                SUBMISSION_COMMENT_REFUSED.format(iid=refusal.merge_request_iid,
                                                  error=refusal.error)
                for refusal in refusals))
        else:
            mark_commented(resources, run_id)


def report_now_or_later(resources: Resources, celery: Celery, run_id: str) -> None:
    """Report a run inline; on a passing GitLab fault, leave it to the report_runs task."""
    try:
        report_run(resources, run_id)
    except TransientGitLabError as exc:
        log.warning("run %s: GitLab unavailable (%s); reporting later", run_id, exc)
        celery.send_task(REPORT, args=[[run_id]], countdown=backoff_seconds(0))
    except GitLabError as exc:
        refused(resources, run_id, exc)


def refused(resources: Resources, run_id: str, exc: GitLabError) -> None:
    """Log that GitLab refused a run's report; keep why on the run when it always will, so
    that nobody asks for it again."""
    log.error("run %s: GitLab refused the report: %s", run_id, exc)
    if exc.status_code in REFUSED_FOR_GOOD:
        _keep_refusal(resources, run_id, REPORT_REFUSED.format(error=exc))


def _keep_refusal(resources: Resources, run_id: str, reason: str) -> None:
    """Keep on the run why GitLab refused (part of) its update for good."""
    with single_statements(resources.sessions) as session:
        runs.refuse_report(session, run_id, reason)


# No result stored, no STARTED state and no monitoring events: nobody follows a report's task
# (the run's ledger row says what GitLab was shown), and the result backend's writes and the
# three events Flower would get for each pending status cost the worker more than the report.
@shared_task(name=REPORT, bind=True, ignore_result=True, send_events=False)
def report_runs(self, run_ids: list[str]) -> dict:
    """Report each run; retry the ones GitLab could not take now."""
    resources = resources_for(self.app.gradehook_settings)
    failed = []
    for run_id in run_ids:
        try:
            report_run(resources, run_id)
        except TransientGitLabError as exc:
            log.warning("run %s: GitLab unavailable (%s)", run_id, exc)
            failed.append(run_id)
        except GitLabError as exc:
            refused(resources, run_id, exc)
    if failed:
        if self.request.retries + 1 >= resources.settings.worker.max_attempts:
            log.error("giving up reporting runs %s after %d attempts", failed,
                      self.request.retries + 1)
        else:
            raise self.retry(args=[failed], countdown=backoff_seconds(self.request.retries),
                             max_retries=resources.settings.worker.max_attempts)
    return {"reported": len(run_ids) - len(failed), "failed": failed}
