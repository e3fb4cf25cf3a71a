"""Hand in students' merge requests into a submission branch that no webhook brought, found
through GitLab's API.

A merge request hands its head commit in while it is open (or being merged: locked), and once
merged, its merge being the hand-in; a closed one is withdrawn. As for webhooks, only one from a
branch of the student project itself counts, not one from a fork. Its head is unseen while the
ledger has no submission of that commit, or has one withdrawn (which the lost webhook of a
reopen, of a retarget back, or of a new merge request would have processed again), and no sweep
handed it in since its commit was last handed in (a second lost reopen is handed in again). The
sweep runs once per period across all workers, as the one of unseen branch heads does
(pipeline.ungraded), and hands a head in when the sweep of the period before met it unseen too,
so a webhook still queued at GitLab is not raced; one recorded during the hand-in all the same
finds its runs and submissions (the intake's locks and unique keys), or the hand-in finds them
and hands nothing in.

A hand-in is received when GitLab recorded the commit as the merge request's head: the first of
its diff versions naming it. A merged merge request whose versions do not name its head was
handed in when GitLab merged it. Neither the commit's dates (the student sets them) nor the
sweep's time (which would make a lost webhook late) counts. An open one without such a version
waits for the next period. A merge request merged before gradehook graded anything of its course
was merged before gradehook watched the course (a course taking up gradehook, or submission
branches, part-way through a term): no webhook of it was lost, and it is not handed in.

Each sweep lists only the merge requests GitLab updated since the previous sweep listed them
(less a margin for the clocks of GitLab and gradehook), and no later than the last update of a
merge request it met unseen, so that the next sweep meets it again: opening, pushing, closing,
reopening, retargeting and merging all update a merge request. Where GitLab did not show a
project, or failed the sweep, the next sweep lists from where this one did, and hands in the
heads met before there if they are still unseen.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gitlab_client import GitLabError, MergeRequest, MergeRequestVersion, id_or_path
from pipeline.assignments import AssignmentDirectory
from pipeline.config import CourseSettings
from pipeline.context import Resources
from pipeline.ledger.models import Delivery, TestRun, utcnow
from pipeline.repos import InvalidInputError, check_ref, check_sha
from pipeline.student_projects import course_projects
from pipeline.submissions.gitlab_side import HANDING_IN_STATES, MERGED
from pipeline.submissions.ledger import commit_hand_ins
from pipeline.submissions.merge_request_hand_in import MergeRequestHead, hand_in, unseen
from pipeline.sweeps import claim_gitlab_sweep, gitlab_sweep_period, keep_sweep_record, \
    stops_the_sweep, sweep_record

log = logging.getLogger(__name__)

SWEEP_KEY = "reconciler:merge-requests:{period}"
SWEEP_EVENT = "Merge Requests Sweep"
# What a sweep keeps for the next: the heads met unseen, which the next hands in if they still
# are, and the time from which the next lists merge requests (none: all of them).
UNSEEN_FIELD, LIST_FROM_FIELD = "unseen_merge_requests", "list_merge_requests_from"
# Listing starts this much before the previous sweep began.
LISTING_OVERLAP = dt.timedelta(minutes=10)

Key = tuple[str, int, str]  # project path, merge request iid, head commit


@dataclass
class _Sweep:
    """What one sweep met: heads left unseen, with their merge request's last update, the
    projects GitLab did not show, and how many heads it handed in."""

    met_before: set[Key]
    unseen: dict[Key, dt.datetime | None] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    handed_in: int = 0


def hand_in_unseen_merge_requests(resources: Resources, celery: Celery) -> int:
    """Hand in, once per period, the merge requests into a submission branch whose head no
    webhook handed in; return how many were.

    GitLab being unreachable, or refusing the token, leaves the rest to the next period,
    which hands in what this one's predecessor met unseen; a project or merge request GitLab
    refuses to show is skipped.
    """
    period = _current_period(resources)
    delivery_id = claim_gitlab_sweep(resources, SWEEP_KEY, SWEEP_EVENT, period)
    if delivery_id is None:
        return 0
    before = sweep_record(resources.sessions, SWEEP_KEY.format(period=period - 1))
    sweep = _Sweep({tuple(key) for key in before.get(UNSEEN_FIELD, [])})
    started = utcnow()
    since = before.get(LIST_FROM_FIELD)
    failed = False
    try:
        for course in resources.settings.courses:
            _sweep_course(resources, celery, course, _moment(since), sweep)
    except GitLabError as exc:  # only those stops_the_sweep lets through
        failed = True
        log.warning("reconcile: merge requests into submission branches not all checked, "
                    "left to the next period: %s", exc)
    keep_sweep_record(resources.sessions, delivery_id,
                      _record_for_next(sweep, failed, since, started))
    return sweep.handed_in


def receipt_time(merge_request: MergeRequest,
                 versions: Sequence[MergeRequestVersion]) -> dt.datetime | None:
    """Return when GitLab recorded a merge request's head commit: its first diff version naming
    it; for a merged one whose versions do not, its merge. None when GitLab does not tell."""
    recorded = [version.created_at for version in versions
                if version.head_commit_sha == merge_request.sha and version.created_at]
    if recorded:
        return min(recorded)
    return merge_request.merged_at if merge_request.state == MERGED else None


def _current_period(resources: Resources) -> int:
    return gitlab_sweep_period(resources.settings)


def _sweep_course(resources: Resources, celery: Celery, course: CourseSettings,
                  since: dt.datetime | None, sweep: _Sweep) -> None:
    """Meet the merge requests into a course's submission branches; hand in those unseen now
    and last period."""
    assignments = AssignmentDirectory(resources.sessions, max_age=0).known(course)
    branches = sorted({course.submission_branch_for(assignment) for assignment in assignments})
    if not branches:
        return
    watched_since = _first_graded(resources, course)
    listed = course_projects(resources.sessions, resources.gitlab, course)
    for group, reason in listed.unlisted_groups.items():
        log.warning("reconcile: projects of group %s not listed: %s", group, reason)
    for project_path, project_id in sorted(listed.projects.items()):
        if resources.settings.course_for(project_path) is not course:
            continue  # another course's project, as its webhooks are
        try:
            found = _merge_requests_into(resources, course, project_path, project_id, branches,
                                         since)
        except GitLabError as exc:
            if stops_the_sweep(exc):
                raise
            log.warning("reconcile: merge requests of %s not listed: %s", project_path, exc)
            sweep.skipped.add(project_path)
            continue
        with resources.sessions() as session:
            unseen = _not_handed_in(session, project_path, found)
        for head, merge_request in unseen:
            key = (project_path, head.iid, head.commit_sha)
            if key not in sweep.met_before:
                sweep.unseen[key] = merge_request.updated_at
                continue
            submitted = [assignment for assignment in assignments
                         if course.submission_branch_for(assignment) == head.target_branch]
            _hand_in_met_before(resources, celery, head, merge_request, submitted,
                                watched_since, sweep)


def _merge_requests_into(resources: Resources, course: CourseSettings, project_path: str,
                         project_id: int | None, branches: list[str],
                         since: dt.datetime | None) -> list[tuple[MergeRequestHead, MergeRequest]]:
    """Return the heads of a project's merge requests into submission branches that hand in."""
    found = []
    for branch in branches:
        for merge_request in resources.gitlab.list_merge_requests_into(
                id_or_path(project_id, project_path), branch, updated_after=since):
            if merge_request.state not in HANDING_IN_STATES or merge_request.sha is None:
                continue
            try:
                check_ref(merge_request.source_branch)
                check_sha(merge_request.sha)
            except InvalidInputError as exc:
                log.warning("reconcile: merge request !%d of %s skipped: %s", merge_request.iid,
                            project_path, exc)
                continue
            found.append((MergeRequestHead(
                course=course, project_path=project_path, project_id=merge_request.project_id,
                iid=merge_request.iid, source_branch=merge_request.source_branch,
                target_branch=merge_request.target_branch, commit_sha=merge_request.sha),
                merge_request))
    return found


def _not_handed_in(session: Session, project_path: str,
                   found: list[tuple[MergeRequestHead, MergeRequest]]
                   ) -> list[tuple[MergeRequestHead, MergeRequest]]:
    """Keep the heads the ledger has no hand-in of: no submission of the commit, or a
    withdrawn one, and no sweep's hand-in delivery since the commit was last handed in; each
    with how often its commit was handed in."""
    if not found:
        return []
    hand_ins = commit_hand_ins(session, project_path, [head.commit_sha for head, _ in found])
    counted = [(dataclasses.replace(head, hand_ins=hand_ins[head.commit_sha].hand_ins)
                if head.commit_sha in hand_ins else head, merge_request)
               for head, merge_request in found if unseen(hand_ins.get(head.commit_sha))]
    delivered = set(session.scalars(select(Delivery.delivery_key).where(
        Delivery.delivery_key.in_([head.delivery_key for head, _ in counted]))))
    return [(head, merge_request) for head, merge_request in counted
            if head.delivery_key not in delivered]


def _hand_in_met_before(resources: Resources, celery: Celery, head: MergeRequestHead,
                        merge_request: MergeRequest, assignments: list[str],
                        watched_since: dt.datetime | None, sweep: _Sweep) -> None:
    """Hand in a head the sweep before met unseen too, received when GitLab recorded it,
    unless it was merged before `watched_since` (or gradehook graded nothing of its course)."""
    key = (head.project_path, head.iid, head.commit_sha)
    try:
        versions = resources.gitlab.merge_request_versions(head.project_id, head.iid)
    except GitLabError as exc:
        if stops_the_sweep(exc):
            raise
        log.warning("reconcile: versions of %s !%d not read, left to the next period: %s",
                    head.project_path, head.iid, exc)
        sweep.unseen[key] = merge_request.updated_at
        return
    received_at = receipt_time(merge_request, versions)
    if received_at is None:
        log.info("reconcile: GitLab has no version of %s !%d at %s yet; left to the next "
                 "period", head.project_path, head.iid, head.commit_sha[:12])
        sweep.unseen[key] = merge_request.updated_at
        return
    if merge_request.state == MERGED and not _watched_when_merged(watched_since, merge_request,
                                                                  received_at):
        log.info("reconcile: %s !%d was merged before gradehook graded anything of course %s; "
                 "not handed in", head.project_path, head.iid, head.course.name)
        return
    if hand_in(resources, celery, head, assignments, received_at):
        sweep.handed_in += 1


def _first_graded(resources: Resources, course: CourseSettings) -> dt.datetime | None:
    """Return when gradehook received its first run of a course, read once per sweep before
    it hands anything in: its hand-ins' runs are received when GitLab recorded their heads,
    which may be before then."""
    with resources.sessions() as session:
        first = session.scalar(select(func.min(TestRun.received_at))
                               .where(TestRun.course == course.name))
    return first


def _watched_when_merged(watched_since: dt.datetime | None, merge_request: MergeRequest,
                         received_at: dt.datetime) -> bool:
    """Tell whether gradehook had graded anything of the course when the merge request was
    merged (GitLab not telling when: when its head was recorded)."""
    return watched_since is not None and watched_since <= (merge_request.merged_at
                                                           or received_at)


def _record_for_next(sweep: _Sweep, failed: bool, since: str | None,
                     started: dt.datetime) -> dict:
    """Return what the next sweep needs: the heads it hands in if still unseen, and from when
    it lists merge requests. Heads met before in projects this sweep did not read (all, when
    it failed) stay, and the next sweep lists from where this one did."""
    carried = sweep.met_before if failed else {
        key for key in sweep.met_before if key[0] in sweep.skipped}
    list_from = since if failed or sweep.skipped else \
        _next_listing_start(started, sweep.unseen.values())
    return {UNSEEN_FIELD: [list(key) for key in sorted(sweep.unseen.keys() | carried)],
            LIST_FROM_FIELD: list_from}


def _next_listing_start(started: dt.datetime,
                        unseen_updates: Iterable[dt.datetime | None]) -> str | None:
    """Return from when the next sweep lists merge requests: before this one began, and no
    later than the last update of one met unseen (none known: list them all)."""
    updates = list(unseen_updates)
    if None in updates:
        return None
    return min([started - LISTING_OVERLAP, *updates]).isoformat()


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None
