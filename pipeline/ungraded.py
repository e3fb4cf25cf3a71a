"""Grade student branch heads whose push webhook never arrived, found through GitLab's API.

A branch head is unseen when the ledger has no run of its commit at all. Its runs are made as
the push handler makes them for a push whose changes are unknown: one per assignment of the
course, diffed by the worker against the branch's last commit gradehook saw (or, for a branch it
never saw, against the default branch), so only the assignments the lost pushes changed are
graded and the others are cancelled. The sweep runs once per period across all workers: a
ledger delivery keyed by the period claims it and keeps the unseen heads it met. A head is
graded when the sweep of the period before met it unseen too, so a webhook still on its way
(GitLab sends them from a queue) is never raced.
"""

from __future__ import annotations

import dataclasses
import logging

from celery import Celery
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from gitlab_client import DEVELOPER_ACCESS, GitLabError, id_or_path
from gitlab_client.models import Branch
from pipeline.assignments import AssignmentDirectory
from pipeline.config import CourseSettings
from pipeline.context import Resources
from pipeline.dispatch import new_task_id, send_runs
from pipeline.ledger.db import transaction
from pipeline.ledger.locks import lock_names_for_ledger_work
from pipeline.ledger.models import RunStatus, TestRun, new_id, utcnow
from pipeline.ledger.run_locks import branch_lock, commit_lock
from pipeline.repos import InvalidInputError, check_ref, check_sha
from pipeline.sweeps import claim_gitlab_sweep, gitlab_sweep_period, keep_sweep_record, \
    stops_the_sweep, sweep_record

log = logging.getLogger(__name__)

SWEEP_KEY = "reconciler:branch-heads:{period}"
SWEEP_EVENT = "Branch Heads Sweep"
UNSEEN_FIELD = "unseen_heads"
RUN_KIND = "push"


@dataclasses.dataclass(frozen=True)
class _Project:
    """A student project of a course, as GitLab or the ledger names it."""

    course: CourseSettings
    path: str
    id: int | None


def grade_unseen_heads(resources: Resources, celery: Celery) -> int:
    """Queue runs for student branch heads the ledger never saw, once per period; return how many.

    GitLab being unreachable, or refusing the token, leaves the sweep to the next period; a
    project GitLab refuses to show (deleted, say) is skipped, and the heads of it met unseen
    before are kept for the next period.
    """
    period = _current_period(resources)
    delivery_id = claim_gitlab_sweep(resources, SWEEP_KEY, SWEEP_EVENT, period)
    if delivery_id is None:
        return 0
    met_before = _unseen_heads_of(resources, period - 1)
    created, unseen = [], []
    try:
        for project in _student_projects(resources):
            try:
                runs, heads = _queue_unseen(resources, project, delivery_id, met_before)
            except GitLabError as exc:
                if stops_the_sweep(exc):
                    raise
                log.warning("reconcile: branch heads of %s not checked: %s", project.path, exc)
                runs, heads = [], [head for head in met_before if head[0] == project.path]
            created.extend(runs)
            unseen.extend(heads)
    except GitLabError as exc:  # only those stops_the_sweep lets through
        log.warning("reconcile: branch heads not all checked: %s", exc)
    else:
        _keep_unseen_heads(resources, delivery_id, unseen)
    if created:
        log.info("reconcile: %d run(s) queued for branch heads no webhook brought",
                 len(created))
        send_runs(celery, resources.sessions, created)
    return len(created)


def _current_period(resources: Resources) -> int:
    return gitlab_sweep_period(resources.settings)


def _unseen_heads_of(resources: Resources, period: int) -> set[tuple[str, str, str]]:
    """Return the (project, branch, commit) heads the sweep of a period met unseen."""
    record = sweep_record(resources.sessions, SWEEP_KEY.format(period=period))
    return {tuple(head) for head in record.get(UNSEEN_FIELD, [])}


def _keep_unseen_heads(resources: Resources, delivery_id: str,
                       heads: list[tuple[str, str, str]]) -> None:
    keep_sweep_record(resources.sessions, delivery_id,
                      {UNSEEN_FIELD: [list(head) for head in sorted(heads)]})


def _student_projects(resources: Resources) -> list[_Project]:
    """Return the course projects the bot reaches as a Developer, and those with runs."""
    settings = resources.settings
    found: dict[str, int | None] = {
        p.path_with_namespace: p.id
        for p in resources.gitlab.user_projects(min_access_level=DEVELOPER_ACCESS)}
    with resources.sessions() as session:
        for path, project_id in session.execute(
                select(TestRun.project_path, TestRun.project_id).distinct()):
            found.setdefault(path, project_id)
    projects = []
    for path, project_id in sorted(found.items()):
        course = settings.course_for(path)
        if course is not None:
            projects.append(_Project(course, path, project_id))
    return projects


def _queue_unseen(resources: Resources, project: _Project, delivery_id: str,
                  met_before: set[tuple[str, str, str]]
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Make runs for a project's heads unseen now and last period.

    Return the (run id, task id) pairs made, and the heads met unseen that the next period
    grades if they are still unseen then.
    """
    # GitLab's listing is older news than a webhook recorded after it: a push of a newer
    # commit, recorded before this transaction locks its branch, leaves the listed head behind,
    # and its runs would be graded after the newer commit's and post their status and comment
    # after theirs. The ledger is the one clock: runs are never deleted, so a branch with more
    # runs under the locks than before the listing had one recorded after GitLab was asked,
    # and its head waits for the next period. Counted only where a head may be queued.
    counted = _runs_per_branch(resources.sessions, project.path) \
        if any(path == project.path for path, _, _ in met_before) else {}
    branches = [b for b in resources.gitlab.list_branches(id_or_path(project.id, project.path))
                if _acceptable(project, b)]
    default = next((b.name for b in branches if b.default), None)
    assignments = AssignmentDirectory(resources.sessions, max_age=0).known(project.course)
    if not branches or not assignments:
        return [], []
    created, left_unseen = [], []
    with transaction(resources.sessions) as session:
        # A push of one of these branches, or a request for one of these commits, recorded at
        # this moment waits for this transaction, or this one for it: the later sees the runs
        # the earlier made (the intake's and regrades' locks).
        # Only heads met unseen last period get runs: with none, nothing is locked (and the
        # embedded ledger's one writer is not taken).
        names = [name for branch in branches
                 if (project.path, branch.name, branch.commit_sha) in met_before
                 for assignment in assignments
                 for name in (branch_lock(project.path, branch.name, assignment),
                              commit_lock(project.path, branch.commit_sha, assignment))]
        if names:
            lock_names_for_ledger_work(session, names)
        runs = _runs_per_head(session, project.path)
        graded, counted_now = _GradedHeads(runs), _per_branch(runs)
        for branch in branches:
            head = (project.path, branch.name, branch.commit_sha)
            if graded.covers(branch.name, branch.commit_sha):
                continue
            graded.add(branch.name, branch.commit_sha)
            if head not in met_before:
                left_unseen.append(head)
                continue
            if counted_now.get(branch.name) != counted.get(branch.name):
                log.info("reconcile: %s %s had a run recorded since its head %s was listed; "
                         "left to the next period", project.path, branch.name,
                         branch.commit_sha[:12])
                left_unseen.append(head)
                continue
            before = _last_seen_commit(session, project.path, branch.name)
            base = default if before is None and default != branch.name else None
            rows = [_run_row(project, branch, assignment, before, base, delivery_id)
                    for assignment in assignments]
            session.execute(insert(TestRun), rows)
            created.extend((row["id"], row["celery_task_id"]) for row in rows)
            log.info("reconcile: %s %s at %s was never graded; %d run(s) queued", project.path,
                     branch.name, branch.commit_sha[:12], len(rows))
    return created, left_unseen


class _GradedHeads:
    """The (branch, commit) pairs a project's runs grade, and whether a branch head is among them.

    As for a push webhook: a head is graded when its branch has a run of its commit, and a
    branch without runs (new, made at a graded commit) when any branch has one; a branch moved
    onto a commit graded elsewhere (a fast-forward of main) is not.
    """

    def __init__(self, pairs) -> None:
        self._pairs: set[tuple[str | None, str]] = set()
        self._commits: set[str] = set()
        self._branches: set[str | None] = set()
        for ref, sha in pairs:
            self.add(ref, sha)

    def add(self, branch: str | None, sha: str) -> None:
        """Count a branch's commit as graded."""
        self._pairs.add((branch, sha))
        self._commits.add(sha)
        self._branches.add(branch)

    def covers(self, branch: str, sha: str) -> bool:
        """Tell whether a branch head needs no run of its own."""
        return (branch, sha) in self._pairs or \
            (sha in self._commits and branch not in self._branches)


def _runs_per_head(session: Session, project_path: str) -> dict[tuple[str | None, str], int]:
    """Return how many runs a project has of each (branch, commit)."""
    return {(ref, sha): count for ref, sha, count in session.execute(
        select(TestRun.ref, TestRun.commit_sha, func.count())
        .where(TestRun.project_path == project_path)
        .group_by(TestRun.ref, TestRun.commit_sha))}


def _runs_per_branch(sessions: sessionmaker[Session], project_path: str) -> dict[str | None, int]:
    """Return how many runs a project has on each branch."""
    with sessions() as session:
        return _per_branch(_runs_per_head(session, project_path))


def _per_branch(runs: dict[tuple[str | None, str], int]) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for (branch, _), count in runs.items():
        counts[branch] = counts.get(branch, 0) + count
    return counts


def _acceptable(project: _Project, branch: Branch) -> bool:
    try:
        check_ref(branch.name)
        check_sha(branch.commit_sha)
    except InvalidInputError as exc:
        log.warning("reconcile: a branch of %s skipped: %s", project.path, exc)
        return False
    return True


def _last_seen_commit(session: Session, project_path: str, branch: str) -> str | None:
    """Return the commit of the newest run on a branch: where the lost pushes started."""
    return session.scalar(
        select(TestRun.commit_sha)
        .where(TestRun.project_path == project_path, TestRun.ref == branch)
        .order_by(TestRun.received_at.desc()).limit(1))


def _run_row(project: _Project, branch: Branch, assignment: str, before: str | None,
             base: str | None, delivery_id: str) -> dict:
    now = utcnow()
    course = project.course
    return dict(
        id=new_id(), delivery_id=delivery_id, kind=RUN_KIND, course=course.name,
        assignment=assignment, project_id=project.id, project_path=project.path,
        ref=branch.name, commit_sha=branch.commit_sha, before_sha=before, base_branch=base,
        needs_diff=True, reference_project=course.reference_project,
        reference_ref=course.reference_branch, status=RunStatus.QUEUED, received_at=now,
        queued_at=now, sent_at=now, celery_task_id=new_task_id())
