"""Queue gradings outside webhooks: a commit on request, regrades of past runs, ungraded heads."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gitlab_client import GitLabClient, GitLabError, TransientGitLabError, id_or_path
from pipeline.assignments import AssignmentDirectory
from pipeline.celery_app import REGRADE, ROUTES
from pipeline.config import CourseSettings, Settings
from pipeline.context import Resources
from pipeline.dispatch import new_task_id, send_runs
from pipeline.ledger.db import transaction
from pipeline.ledger.locks import lock_names_for_ledger_work
from pipeline.ledger.models import UNGRADED_STATUSES, RunStatus, Submission, TestRun, new_id, \
    utcnow
from pipeline.ledger.run_locks import branch_lock, commit_lock, merge_request_lock
from pipeline.likely_names import did_you_mean
from pipeline.repos import InvalidInputError, RepositoryError, check_ref, check_sha
from pipeline.student_projects import course_projects
from pipeline.submissions.ledger import last_accepted

log = logging.getLogger(__name__)

REGRADE_KIND = "regrade"
# Runs that answer a request to grade a commit: it is being graded or has a result.
GRADED_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PASSED, RunStatus.FAILED,
                   RunStatus.ERROR)
RETRYABLE_STATUSES = (RunStatus.FAILED, RunStatus.ERROR)
PENDING_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
# Runs that already grade a commit for a webhook's request, or the reconciler's hand-in of a
# merge request whose webhook was lost: a second request for the same commit and assignment (a
# push and its merge request update, say) reuses one. The intake takes the branch's own run
# first, and a push that moves an existing branch onto a commit graded on another branch (a
# fast-forward of main onto a graded feature branch) gets a run of its own: GitLab shows a
# branch's pipeline and badges by the statuses posted for that branch. A retest always makes a
# new run.
REUSABLE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PASSED, RunStatus.FAILED)

NO_GITLAB_TOKEN = "regrading branch heads reads GitLab: set gitlab.token (GITLAB_TOKEN)"
NO_SUCH_RUN = "no run {run_id}"
COURSE_GONE = "course {course!r} of run {run_id} is no longer configured"
UNKNOWN_COURSE = "no course named {course!r} is configured"
NOTHING_GRADED = "no graded commit of {assignment} in {project}"
NOTHING_GRADED_IN_ASSIGNMENT = "no graded commit of {assignment} in any student project"
NOT_AN_ASSIGNMENT = "{assignment} is not an assignment of {courses}{likely}"


class RegradeError(Exception):
    """A regrade names something the ledger or configuration does not have."""


class NoSuchRunError(RegradeError):
    """The run to regrade does not exist."""


@dataclass(frozen=True)
class GradingTarget:
    """One commit of a student project to grade for one assignment of a course.

    With `base_branch` (a merge request's target), the worker diffs the commit against its merge
    base with that branch and cancels the run when the assignment is unchanged.
    """

    course: CourseSettings
    project_path: str
    commit_sha: str
    assignment: str
    project_id: int | None = None
    ref: str | None = None
    merge_request_iid: int | None = None
    base_branch: str | None = None


@dataclass
class Queued:
    """Runs a request created (to publish once committed) and runs already grading its commits."""

    created: list[tuple[str, str]] = field(default_factory=list)  # (run id, task id)
    existing: list[str] = field(default_factory=list)

    @property
    def created_ids(self) -> list[str]:
        """Return the ids of the runs created."""
        return [run_id for run_id, _ in self.created]


@dataclass
class BranchHeadsReport:
    """What a sweep over student branch heads found and queued."""

    queued: Queued = field(default_factory=Queued)
    projects: int = 0
    branches: int = 0
    skipped_projects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the report as a task result."""
        return {"runs": self.queued.created_ids, "existing_runs": self.queued.existing,
                "projects": self.projects, "branches": self.branches,
                "skipped_projects": self.skipped_projects}


def request_grading(sessions: sessionmaker[Session], target: GradingTarget, *, kind: str,
                    retry: bool = False,
                    requested_by: int | None = None) -> tuple[TestRun, bool]:
    """Return the run grading a commit, creating one unless it is graded or being graded.

    With `retry`, a commit whose latest result is failed or error is graded again. A request
    naming a branch (`target.ref`) is answered by a run of that branch only, else a new run is
    made there: a run of another branch shows on that branch's badge, not on this one's. The
    caller publishes a created run (True in the answer) after this returns.
    """
    with transaction(sessions) as session:
        return grading_in(session, target, kind=kind, retry=retry, requested_by=requested_by,
                          same_branch=target.ref is not None)


def grading_in(session: Session, target: GradingTarget, *, kind: str, retry: bool = False,
               requested_by: int | None = None, lock: bool = False,
               same_branch: bool = False) -> tuple[TestRun, bool]:
    """Do what request_grading does in the caller's transaction, which then publishes a created
    run once it has committed.

    With `lock`, a run found is locked until the transaction ends: whatever the transaction
    records about it is then committed before that run can end. With `same_branch`, only a
    run of the target's branch is taken.
    """
    reusable = tuple(s for s in GRADED_STATUSES if not (retry and s in RETRYABLE_STATUSES))
    _lock_runs(session, [target])
    return _find_or_create(session, target, reusable, kind, requested_by, lock=lock,
                           same_branch=same_branch)


def gradings_in(session: Session, targets: Sequence[GradingTarget], *, kind: str,
                reusable: tuple[RunStatus, ...], received_at: dt.datetime | None = None,
                lock: bool = False) -> list[tuple[TestRun, bool]]:
    """Return, in the caller's transaction, a run grading each target: one in a `reusable`
    status, else a new one (True in its pair: the caller publishes it once committed),
    received at `received_at` (by default now). With `lock`, as for grading_in.

    Every target's locks are taken at once first (see _lock_runs).
    """
    _lock_runs(session, targets)
    return [_find_or_create(session, target, reusable, kind, None, lock=lock,
                            received_at=received_at) for target in targets]


def regrade_run(sessions: sessionmaker[Session], settings: Settings, run_id: str) -> Queued:
    """Grade a run's commit again, unless a grading of it is already queued or running."""
    with sessions() as session:
        source = session.get(TestRun, run_id)
    if source is None:
        raise NoSuchRunError(NO_SUCH_RUN.format(run_id=run_id))
    return _regrade(sessions, [_target_of(settings, source)])


def regrade_student(sessions: sessionmaker[Session], settings: Settings, project_path: str,
                    assignment: str) -> Queued:
    """Grade again the latest graded commit of one student's assignment, and the commit of
    their final submission of it."""
    sources = _latest_graded(sessions, assignment, project_path=project_path)
    if not sources:
        course = settings.course_for(project_path)
        _refuse_unknown(sessions, assignment, [course] if course else settings.courses)
        raise RegradeError(NOTHING_GRADED.format(assignment=assignment, project=project_path))
    return _regrade(sessions, [_target_of(settings, run) for run in sources])


def regrade_assignment(sessions: sessionmaker[Session], settings: Settings, assignment: str,
                       course: str | None = None) -> Queued:
    """Grade again, in every student project, the latest graded commit of an assignment, and
    the commit of the project's final submission of it."""
    if course is not None:
        _course_named(settings, course)
    sources = _latest_graded(sessions, assignment, course=course)
    if not sources:
        _refuse_unknown(sessions, assignment,
                        [_course_named(settings, course)] if course else settings.courses)
        raise RegradeError(NOTHING_GRADED_IN_ASSIGNMENT.format(assignment=assignment))
    return _regrade(sessions, [_target_of(settings, run) for run in sources])


def regrade_branch_heads(resources: Resources, course: str | None = None) -> BranchHeadsReport:
    """Queue a grading of every assignment present at a student branch head without a result.

    Student projects are those with runs in the ledger plus those GitLab lists in the groups
    the course's `student_projects` name. A project GitLab or git cannot read is skipped and
    named in the report; GitLab being unreachable raises TransientGitLabError.
    """
    gitlab = resources.gitlab
    if gitlab is None:
        raise RegradeError(NO_GITLAB_TOKEN)
    settings = resources.settings
    courses = [_course_named(settings, course)] if course else list(settings.courses)
    report = BranchHeadsReport()
    for each in courses:
        assignments = AssignmentDirectory(resources.sessions, max_age=0).known(each)
        listed = course_projects(resources.sessions, gitlab, each)
        for group, reason in listed.unlisted_groups.items():
            log.warning("regrade: projects of group %s not listed: %s", group, reason)
        for project_path, project_id in sorted(listed.projects.items()):
            try:
                targets, branches = _ungraded_heads(resources, gitlab, each, project_path,
                                                    project_id, assignments)
            except TransientGitLabError:
                raise
            except (GitLabError, RepositoryError) as exc:
                log.warning("regrade: project %s skipped: %s", project_path, exc)
                report.skipped_projects.append(project_path)
                continue
            report.projects += 1
            report.branches += branches
            _merge(report.queued, _regrade(resources.sessions, targets))
    return report


def publish_regrades(celery: Celery, sessions: sessionmaker[Session],
                     runs: Sequence[tuple[str, str]]) -> list[str]:
    """Send regrade runs to student_testing on the regrade queue and priority."""
    return send_runs(_Rerouted(celery, ROUTES[REGRADE]), sessions, runs)


class _Rerouted:
    """A Celery client whose sends carry another route (queue, priority) than the task's own."""

    def __init__(self, celery: Celery, route: dict) -> None:
        self._celery = celery
        self._route = route

    @property
    def conf(self):
        """Return the configuration of the Celery app behind this client."""
        return self._celery.conf

    def send_task(self, name: str, *args, **options):
        """Send a task by name with this route in place of the configured one."""
        return self._celery.send_task(name, *args, **{**options, **self._route})


def _regrade(sessions: sessionmaker[Session], targets: Iterable[GradingTarget]) -> Queued:
    queued = Queued()
    ordered = sorted(targets, key=lambda t: (t.project_path, t.assignment, t.commit_sha))
    with transaction(sessions) as session:
        for run, created in gradings_in(session, ordered, kind=REGRADE_KIND,
                                        reusable=PENDING_STATUSES):
            if created:
                queued.created.append((run.id, run.celery_task_id))
            else:
                queued.existing.append(run.id)
    return queued


def _find_or_create(session: Session, target: GradingTarget, reusable: tuple[RunStatus, ...],
                    kind: str, requested_by: int | None, lock: bool = False,
                    received_at: dt.datetime | None = None,
                    same_branch: bool = False) -> tuple[TestRun, bool]:
    query = (select(TestRun)
             .where(TestRun.project_path == target.project_path,
                    TestRun.commit_sha == target.commit_sha,
                    TestRun.assignment == target.assignment, TestRun.status.in_(reusable),
                    *([TestRun.ref == target.ref] if same_branch else []))
             .order_by(TestRun.received_at.desc(), TestRun.id).limit(1))
    existing = session.scalars(query.with_for_update() if lock else query).first()
    if existing is not None:
        return existing, False
    now = utcnow()
    course = target.course
    run = TestRun(
        id=new_id(), kind=kind, course=course.name, assignment=target.assignment,
        project_id=target.project_id, project_path=target.project_path,
        ref=target.ref or _known_branch(session, target),
        commit_sha=target.commit_sha, merge_request_iid=target.merge_request_iid,
        base_branch=target.base_branch, needs_diff=target.base_branch is not None,
        requested_by_user_id=requested_by, reference_project=course.reference_project,
        reference_ref=course.reference_branch, status=RunStatus.QUEUED,
        received_at=received_at or now, queued_at=now, sent_at=now, celery_task_id=new_task_id())
    session.add(run)
    session.flush()
    return run, True


def _known_branch(session: Session, target: GradingTarget) -> str | None:
    """Return the branch an earlier run saw the commit on (commit statuses need one)."""
    return session.scalar(
        select(TestRun.ref)
        .where(TestRun.project_path == target.project_path,
               TestRun.commit_sha == target.commit_sha, TestRun.ref.is_not(None))
        .order_by(TestRun.received_at.desc()).limit(1))


def _lock_runs(session: Session, targets: Sequence[GradingTarget]) -> None:
    """Serialise requests for each (project, commit, assignment) until the transaction ends,
    so that two at once find or create one run; and the recording of runs on each target's
    branch and merge request, so that a push of a newer commit, or a close, at once supersedes
    or cancels the run made here, as it does when the regrade is recorded first. A regrade of
    a run or of a branch head names its branch; a request that names none (the API's, the
    command line's, a submission's) gets the branch its commit was last seen on, unlocked:
    known only once read, it could be locked only in a second round, which could deadlock
    with the intake.

    All at once, in the one order the intake and the sweep of unseen heads take them too: a
    regrade taking them one by one could hold one a push is waiting for while it waits for
    another that push holds (a deadlock, and the push's webhook failed).
    """
    lock_names_for_ledger_work(session, [
        name for target in targets
        for name in (commit_lock(target.project_path, target.commit_sha, target.assignment),
                     *([branch_lock(target.project_path, target.ref, target.assignment)]
                       if target.ref else []),
                     *([merge_request_lock(target.project_path, target.merge_request_iid)]
                       if target.merge_request_iid is not None else []))])


def _latest_graded(sessions: sessionmaker[Session], assignment: str, *,
                   project_path: str | None = None, course: str | None = None) -> list[TestRun]:
    """Return each project's most recent run of an assignment that graded its commit, and the
    run of its final submission (the gradebook's) where that is another commit."""
    conditions = [TestRun.assignment == assignment, TestRun.status.not_in(UNGRADED_STATUSES)]
    if project_path is not None:
        conditions.append(TestRun.project_path == project_path)
    if course is not None:
        conditions.append(TestRun.course == course)
    rank = func.row_number().over(partition_by=TestRun.project_path,
                                  order_by=(TestRun.received_at.desc(), TestRun.id))
    ranked = select(TestRun.id, rank.label("rank")).where(*conditions).subquery()
    finals = last_accepted(select(Submission.id).where(
        Submission.assignment == assignment,
        *([Submission.project_path == project_path] if project_path is not None else []),
        *([Submission.course == course] if course is not None else []))).subquery()
    with sessions() as session:
        latest = list(session.scalars(select(TestRun).join(ranked, ranked.c.id == TestRun.id)
                                      .where(ranked.c.rank == 1)))
        submitted = list(session.scalars(
            select(TestRun).join(Submission, Submission.run_id == TestRun.id)
            .join(finals, finals.c.id == Submission.id)))
    distinct = {(run.project_path, run.commit_sha): run for run in [*submitted, *latest]}
    return sorted(distinct.values(), key=lambda run: (run.project_path, run.commit_sha))


def _target_of(settings: Settings, run: TestRun) -> GradingTarget:
    course = settings.course_named(run.course)
    if course is None:
        raise RegradeError(COURSE_GONE.format(course=run.course, run_id=run.id))
    return GradingTarget(course=course, project_path=run.project_path, commit_sha=run.commit_sha,
                         assignment=run.assignment, project_id=run.project_id, ref=run.ref,
                         merge_request_iid=run.merge_request_iid)


def _refuse_unknown(sessions: sessionmaker[Session], assignment: str,
                    courses: Sequence[CourseSettings]) -> None:
    """Raise RegradeError naming the likely assignment when no course given has this one (a
    misspelt directory is no assignment nothing was graded of yet)."""
    directory = AssignmentDirectory(sessions)
    known = [name for course in courses for name in directory.known(course)]
    if assignment not in known:
        names = " or ".join(f"course {course.name}" for course in courses)
        raise RegradeError(NOT_AN_ASSIGNMENT.format(assignment=assignment, courses=names,
                                                    likely=did_you_mean(assignment, known)))


def _course_named(settings: Settings, name: str) -> CourseSettings:
    course = settings.course_named(name)
    if course is None:
        raise RegradeError(UNKNOWN_COURSE.format(course=name))
    return course


def _ungraded_heads(resources: Resources, gitlab: GitLabClient, course: CourseSettings,
                    project_path: str, project_id: int | None,
                    assignments: Sequence[str]) -> tuple[list[GradingTarget], int]:
    """Return targets at branch heads without a result, and how many heads were looked at."""
    branches = gitlab.list_branches(id_or_path(project_id, project_path))
    with resources.sessions() as session:
        graded = set(session.execute(
            select(TestRun.commit_sha, TestRun.assignment)
            .where(TestRun.project_path == project_path,
                   TestRun.status.in_(GRADED_STATUSES))).all())
    targets, examined = [], 0
    for branch in branches:
        try:
            check_ref(branch.name)
            check_sha(branch.commit_sha)
        except InvalidInputError as exc:
            log.warning("regrade: branch of %s skipped: %s", project_path, exc)
            continue
        examined += 1
        missing = [a for a in assignments if (branch.commit_sha, a) not in graded]
        if not missing:
            continue
        resources.repositories.ensure_commit(project_path, branch.commit_sha)
        for assignment in missing:
            if resources.repositories.has_path(project_path, branch.commit_sha, assignment):
                targets.append(GradingTarget(course=course, project_path=project_path,
                                             commit_sha=branch.commit_sha, assignment=assignment,
                                             project_id=project_id, ref=branch.name))
                graded.add((branch.commit_sha, assignment))
    return targets, examined


def _merge(into: Queued, more: Queued) -> None:
    into.created.extend(more.created)
    into.existing.extend(more.existing)
