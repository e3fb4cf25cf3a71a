"""Hand in a merge request's head as its webhook would: runs, submissions, a delivery, sent on."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Sequence

from celery import Celery
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from pipeline.config import CourseSettings
from pipeline.context import Resources
from pipeline.dispatch import request_reports, send_runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import Delivery, new_id, utcnow
from pipeline.regrade import REUSABLE_STATUSES, GradingTarget, gradings_in
from pipeline.submissions.dispatch import release_submissions, send_notices
from pipeline.submissions.ledger import (MERGE_REQUEST_SOURCE, CommitHandIns, commit_hand_ins,
                                         record_submissions, submission_row)
from pipeline.submissions.regrading import SUBMISSION_RUN_KIND
from pipeline.sweeps import SWEEP_SOURCE

log = logging.getLogger(__name__)

# One hand-in per merge request head and count of its commit's hand-ins: its unique delivery
# key keeps any later sweep (or one running beside this one) from handing that head in again,
# until it is handed in (and withdrawn) again since.
HAND_IN_KEY = "reconciler:merge-request:{project_id}!{iid}@{sha}"
AGAIN_SUFFIX = "+{hand_ins}"
# The event the delivery stands for; its source says that the reconciler delivered it.
HAND_IN_EVENT = "Merge Request Hook"


@dataclass(frozen=True)
class MergeRequestHead:
    """The head commit of a student's merge request into a submission branch."""

    course: CourseSettings
    project_path: str
    project_id: int
    iid: int
    source_branch: str
    target_branch: str
    commit_sha: str
    hand_ins: int = 0  # how often the ledger had its commit handed in when it was met

    @property
    def delivery_key(self) -> str:
        """Return the key of the delivery that hands this head in."""
        key = HAND_IN_KEY.format(project_id=self.project_id, iid=self.iid, sha=self.commit_sha)
        return key + AGAIN_SUFFIX.format(hand_ins=self.hand_ins) if self.hand_ins else key


def unseen(hand_ins: CommitHandIns | None) -> bool:
    """Tell whether a head whose commit the ledger has these hand-ins of is not handed in: no
    submission of it, or one withdrawn with its merge request."""
    return hand_ins is None or hand_ins.withdrawn


class _HandedInMeanwhile(Exception):
    """The head was handed in (a webhook) since it was met unseen."""


def hand_in(resources: Resources, celery: Celery, head: MergeRequestHead,
            assignments: Sequence[str], received_at: dt.datetime) -> bool:
    """Hand in a merge request's head for the assignments it submits, received at a time GitLab
    recorded, as the merge request's webhook would; return False, handing nothing in, if a sweep
    handed it in before, or anything did since it was met unseen (its webhook came after all).

    The runs and submissions are the webhook's: a run already grading the commit is reused,
    else one is queued that the worker diffs against the target branch, under the intake's
    locks; a commit already submitted keeps its one submission. Then the new runs go to the
    workers, GitLab is asked to show every run (the merge request's comment too), and the
    submissions whose run has ended go to submission processing.
    """
    targets = [GradingTarget(course=head.course, project_path=head.project_path,
                             commit_sha=head.commit_sha, assignment=assignment,
                             project_id=head.project_id, ref=head.source_branch,
                             merge_request_iid=head.iid, base_branch=head.target_branch)
               for assignment in sorted(assignments)]
    delivery_id = new_id()
    try:
        with transaction(resources.sessions) as session:
            # First: a second hand-in of this head waits here for this one, then fails.
            session.execute(insert(Delivery).values(
                id=delivery_id, delivery_key=head.delivery_key, source=SWEEP_SOURCE,
                event=HAND_IN_EVENT, project_id=head.project_id, project_path=head.project_path,
                received_at=utcnow(), response_status=200, response_body={}))
            runs = gradings_in(session, targets, kind=SUBMISSION_RUN_KIND,
                               reusable=REUSABLE_STATUSES, received_at=received_at, lock=True)
            # Under the intake's locks: a webhook recorded before is seen now.
            current = commit_hand_ins(session, head.project_path,
                                      [head.commit_sha]).get(head.commit_sha)
            if not unseen(current) or (current.hand_ins if current else 0) != head.hand_ins:
                raise _HandedInMeanwhile
            for run, created in runs:
                if created:
                    run.delivery_id = delivery_id
            recorded = record_submissions(session.connection(), [
                submission_row(run, source=MERGE_REQUEST_SOURCE, received_at=received_at,
                               branch=head.source_branch, merge_request_iid=head.iid)
                for run, _ in runs])
            new = [(run.id, run.celery_task_id) for run, created in runs if created]
            existing = [run.id for run, created in runs if not created]
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                response_status=202 if new else 200, response_body={
                    "status": "queued" if new else "recorded", "delivery_id": delivery_id,
                    "runs": [run_id for run_id, _ in new], "existing_runs": existing}))
    except IntegrityError:
        log.info("reconcile: %s !%d at %s was handed in by another sweep", head.project_path,
                 head.iid, head.commit_sha[:12])
        return False
    except _HandedInMeanwhile:
        log.info("reconcile: %s !%d at %s was handed in meanwhile, by its webhook; left to it",
                 head.project_path, head.iid, head.commit_sha[:12])
        return False
    log.info("reconcile: %s !%d at %s handed in, received %s: %d run(s) queued, %d reused",
             head.project_path, head.iid, head.commit_sha[:12], received_at.isoformat(),
             len(new), len(existing))
    request_reports(celery, [*(run_id for run_id, _ in new), *existing])
    send_runs(celery, resources.sessions, new)
    release_submissions(celery, resources.sessions, existing)
    send_notices(celery, resources.sessions,
                 [(recorded.ids[row], head.iid) for row in recorded.decided_elsewhere])
    return True
