"""Which merge request holds a pending submission once the one holding it no longer hands its
commit in: the first of those that handed the commit in after it and still do."""

from __future__ import annotations

import logging

from sqlalchemy import update

from gitlab_client import NotFoundGitLabError
from pipeline.config import CourseSettings
from pipeline.context import Resources
from pipeline.ledger.db import transaction
from pipeline.ledger.models import Submission
from pipeline.submissions.gitlab_side import HANDING_IN_STATES, project_of
from pipeline.submissions.notices import notices_of
from pipeline.submissions.verdict import PENDING

log = logging.getLogger(__name__)


def hand_over(resources: Resources, course: CourseSettings, submission: Submission) -> bool:
    """Hand a pending submission, whose merge request no longer hands its commit in, to the
    first merge request with a notice of it that still does (open or merged into the
    submission branch, its head at the commit); tell whether it was handed over.

    It is handed in through that one, received when that one handed the commit in. Nothing
    changes when the submission was handed in again, or decided, since it was read.
    """
    target = course.submission_branch_for(submission.assignment)
    project = project_of(submission)
    with resources.sessions() as session:
        notified = notices_of(session, submission.id)
    for iid, handed_in_at in notified:
        if iid == submission.merge_request_iid:
            continue
        try:
            merge_request = resources.gitlab.get_merge_request(project, iid)
        except NotFoundGitLabError:
            continue
        if merge_request.sha != submission.commit_sha or merge_request.target_branch != target \
                or merge_request.state not in HANDING_IN_STATES:
            continue
        with transaction(resources.sessions) as session:
            moved = session.execute(update(Submission).where(
                Submission.id == submission.id, Submission.outcome == PENDING,
                Submission.celery_task_id == submission.celery_task_id,
                Submission.hand_ins == submission.hand_ins,
                Submission.merge_request_iid == submission.merge_request_iid).values(
                previous_merge_request_iid=submission.merge_request_iid, merge_request_iid=iid,
                branch=merge_request.source_branch, received_at=handed_in_at)
                .execution_options(synchronize_session=False)).rowcount == 1
        if moved:
            log.info("submission %s: merge request !%d no longer hands it in; handed over to "
                     "!%d", submission.id, submission.merge_request_iid, iid)
        return moved
    return False
