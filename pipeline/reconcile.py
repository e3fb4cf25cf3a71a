"""Reconciliation: re-send queued runs and retries the broker lost, end runs left running, and
grade or hand in through GitLab's API what lost webhooks left out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from gitlab_client import GitLabClient, GitLabError, TransientGitLabError
from pipeline.assignments import discover, folder_gradability, folders_without_files
from pipeline.broker_marker import broker_forgot, retries_coming, retries_sent, \
    waiting_messages
from pipeline.celery_app import report_patience_seconds, retry_patience_seconds, \
    stall_patience_seconds
from pipeline.context import Resources
from pipeline.config import CourseSettings, Settings
from pipeline.dispatch import RESENDS_PER_SWEEP, new_task_id, request_reports, resend_run
from pipeline.housekeeping import run_workspaces
from pipeline.ledger import runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, utcnow
from pipeline.grading.gradable import Gradability
from pipeline.reference_checks import COURSE_ERROR_IN, COURSE_ERRORS, LISTED_UNGRADABLE, \
    NO_ASSIGNMENT, NO_FILES_IN, NOTHING_TO_GRADE_IN, UNFETCHABLE, record_check
from pipeline.repos import RepositoryError
from pipeline.submissions.dispatch import resend_lost_notices, resend_lost_submissions
from pipeline.submissions.recovery import retry_failed_submissions
from pipeline.submissions.unseen_merge_requests import hand_in_unseen_merge_requests
from pipeline.ungraded import grade_unseen_heads

log = logging.getLogger(__name__)

# A sent run still queued after this long, whose message the broker does not mark as waiting,
# is assumed lost and sent again (at once when the broker lost its data; on the embedded broker,
# which keeps no marks, by age alone); a stale message is harmless: each hand-off has a fresh
# task id.
LOST_MESSAGE_AGE = dt.timedelta(minutes=15)
# An ended run whose final status GitLab still lacks once its report_runs task has given up
# (report_patience_seconds) is reported again, for a day at the most, as soon as GitLab answers:
# while it does not, one request a sweep asks whether it is back. The sweep at a worker's start
# does not wait: a worker stopped between ending a run and reporting it left GitLab showing it
# running. A run asked for again waits as long before the next request, twice as long after
# each, up to REREPORT_MOST_WAIT: one GitLab keeps failing yields its place to the others.
REREPORT_WITHIN = dt.timedelta(days=1)
REREPORT_MOST_WAIT = dt.timedelta(hours=1)
STALLED_REASON = ("stopped: its worker was lost or the hard time limit of {limit:g} s was "
                  "exceeded")
ABANDONED_REASON = ("queued again: the worker grading it stopped (attempt {attempts} of "
                    "{most})")
ABANDONED_TOO_OFTEN = "stopped: its worker stopped while grading it, {attempts} times"
# The worker holding a retry's message stopped, or every one of its processes stayed busy past
# the retry's time: from the ledger the two look alike.
RETRY_LOST_REASON = ("queued again: attempt {attempt} did not start in time (its worker stopped, "
                     "or had no process free)")
RETRY_LOST_TOO_OFTEN = ("stopped: attempt {attempt} did not start in time (its worker stopped, "
                        "or had no process free), and no attempts are left")


@dataclasses.dataclass
class ReconcileReport:
    """What one sweep did."""

    retries_lost: int = 0
    resent: int = 0
    still_unsent: int = 0
    stalled_ended: int = 0
    submissions_retried: int = 0
    submissions_resent: int = 0
    notices_resent: int = 0
    assignments_found: int = 0
    unseen_heads_queued: int = 0
    unseen_merge_requests_handed_in: int = 0
    reports_requested: int = 0

    def as_dict(self) -> dict:
        """Return the counts as a dict (a task result)."""
        return dataclasses.asdict(self)


def _rereport(resources: Resources, celery: Celery, now: dt.datetime,
              worker_started: bool) -> int:
    """Ask again, once GitLab answers, for the GitLab updates of ended runs whose reporting
    gave up, or, at a worker's start, of every ended run GitLab lacks an update of; each run
    asked for again waits longer before the next request."""
    if resources.gitlab is None:
        return 0
    patience = dt.timedelta(seconds=report_patience_seconds(resources.settings.worker))
    latest = now if worker_started else now - patience
    with resources.sessions() as session:
        due = runs.unreported_runs(session, (now - REREPORT_WITHIN, latest), now)
    if not due or not _gitlab_answers(resources.gitlab) \
            or not request_reports(celery, [run_id for run_id, _ in due]):
        return 0
    with transaction(resources.sessions) as session:
        runs.schedule_rereports(session, [
            (run_id, requests + 1, now + rereport_wait(patience, requests))
            for run_id, requests in due])
    return len(due)


def _gitlab_answers(gitlab: GitLabClient) -> bool:
    """Tell whether GitLab answers (with one request), as reports asked for now may be taken;
    a rate limit's Retry-After is waited out first."""
    try:
        gitlab.current_user()
    except TransientGitLabError as exc:
        log.info("reconcile: GitLab does not answer (%s); its lacking updates wait", exc)
        return False
    except GitLabError:
        pass  # it answered: the reports say what it refuses
    return True


def rereport_wait(patience: dt.timedelta, requests: int) -> dt.timedelta:
    """Return how long a run whose update was asked for again `requests` times before waits
    after this request: the report task's `patience`, doubled for each earlier request."""
    return min(REREPORT_MOST_WAIT, patience * 2 ** requests)


def _runs_to_send(resources: Resources, celery: Celery,
                  sent_before: dt.datetime) -> list[tuple[str, dt.datetime | None]]:
    """Return queued runs to send (again), with when each was sent: those never sent, then
    those the broker lost.

    A long-queued run whose message is still marked as waiting is in the broker, behind a
    backlog: sending it again would put it at the back of the queue, every LOST_MESSAGE_AGE,
    for as long as the backlog lasts. Such runs are passed over page by page, so runs further
    on whose message is gone are still found, however many wait ahead of them. After the broker
    lost its data the marks tell the same: a run sent to it since (before this sweep) is marked
    there, and sent again under its kept task id it would have two messages, both claiming it.
    """
    with transaction(resources.sessions) as session:
        chosen = [(run.id, run.sent_at)
                  for run in runs.unsent_runs(session, limit=RESENDS_PER_SWEEP)]
    after = None
    while len(chosen) < RESENDS_PER_SWEEP:
        with transaction(resources.sessions) as session:
            page = runs.long_queued_runs(session, sent_before, after, limit=RESENDS_PER_SWEEP)
        waiting = waiting_messages(celery.conf.broker_url, [run.celery_task_id for run in page])
        chosen += [(run.id, run.sent_at) for run in page if run.celery_task_id not in waiting]
        if len(page) < RESENDS_PER_SWEEP:
            break
        after = (page[-1].queued_at, page[-1].id)
    return chosen[:RESENDS_PER_SWEEP]


def requeue_abandoned_runs(settings: Settings, sessions: sessionmaker[Session]) -> list[str]:
    """Queue again the runs a dead worker of this host left running; return their ids.

    A run grades in a workspace whose mark its worker process holds, and the kernel drops the
    mark when that process dies, however it dies (killed after Ctrl-C, by the OOM killer, a
    power cut). Such a run would otherwise stay running until the broker hands its message
    out again (Redis, after the visibility timeout) or the reconciler ends it, half an hour on.
    It gets a new task id and no sent_at, so the next reconciler sweep (one follows every
    worker's start) sends it; a run that lost its worker max_attempts times ends as error.
    Called as a worker starts, before it takes work.
    """
    done = []
    most = settings.worker.max_attempts
    for workspace in run_workspaces(settings.workspace):
        if workspace.held:
            continue
        if workspace.attempt is None:
            continue  # made before marks named their attempt: the reconciler ends such a run
        with transaction(sessions) as session:
            # A run claimed again since (its message handed out again) is another process's.
            run = runs.running_attempt(session, workspace.run_id, workspace.attempt)
            if run is None:
                continue
            attempts = run.attempts
            fate = _requeue_or_end(session, run.id, attempts >= most,
                                   ABANDONED_REASON.format(attempts=attempts + 1, most=most),
                                   ABANDONED_TOO_OFTEN.format(attempts=attempts))
        log.warning("run %s: its worker stopped while grading it; %s", workspace.run_id, fate)
        done.append(workspace.run_id)
    return done


def _requeue_or_end(session: Session, run_id: str, spent: bool, requeued: str,
                    ended: str) -> str:
    """Queue a running run again under a new task id, unsent (its old message then claims
    nothing), or end it as error when its attempts are `spent`; return which, for the log."""
    if spent:
        runs.finish(session, run_id, RunStatus.ERROR, ended)
        return "ended as error"
    runs.requeue(session, run_id, new_task_id(), requeued)
    return "queued again"


def _check_reference(resources: Resources, course: CourseSettings) -> int:
    """Fetch a course's reference, finding its assignments if it discovers them; keep the
    problem met (it cannot be fetched, it holds no assignment, a listed one's folder is missing
    or holds nothing to grade, every run of an assignment ends as a course error) for the health
    answer, or that there was none. Return how many assignments were found."""
    repositories, project, found = resources.repositories, course.reference_project, []
    listed = [assignment.directory for assignment in course.assignments]
    try:
        if course.discover_assignments:
            found = discover(repositories, resources.sessions, course)
        # Read again after discovery: another process's fetch may have moved or removed the
        # branch. A course that lists its assignments is fetched here, as discovery fetches.
        sha = repositories.resolve_branch(project, course.reference_branch,
                                          fetch=not course.discover_assignments)
        empty = folders_without_files(repositories.list_files(project, sha), listed) \
            if listed else []
        holding = [directory for directory in dict.fromkeys(listed + found)
                   if directory not in empty]
        tree = repositories.tree(project, sha) if holding else None
        checked = {directory: folder_gradability(tree, directory, resources.settings.sandbox)
                   for directory in holding}
    except RepositoryError as exc:
        log.warning("reconcile: reference of course %s not fetched: %s", course.name, exc)
        record_check(resources.sessions, course, UNFETCHABLE.format(
            project=project, branch=course.reference_branch, error=exc))
        return 0
    except Exception:  # one course's surprise leaves the other courses refreshed
        log.exception("reconcile: assignments of course %s not refreshed", course.name)
        return 0
    record_check(resources.sessions, course,
                 _assignment_problem(course, sha, found, empty, checked))
    return len(found)


def _assignment_problem(course: CourseSettings, sha: str, found: list[str], empty: list[str],
                        checked: dict[str, Gradability]) -> str | None:
    """Say what the reference lacks: any assignment at all, or the folder of listed ones, or
    anything to grade in it; and which assignments every run of ends in a course error before
    any student's code runs (pipeline.grading.gradable), in the engine's words.

    A listed folder without test.yaml is graded all the same, by its pytest files or by
    comparing the programs' output, unless it holds nothing for either (meta.yaml alone).
    """
    where = {"project": course.reference_project, "branch": course.reference_branch,
             "sha": sha[:12]}
    if not course.assignments and not found:
        return NO_ASSIGNMENT.format(**where)
    hollow = [directory for directory, verdict in checked.items() if verdict.grades_nothing]
    lacks = [template.format(directories=", ".join(directories))
             for template, directories in ((NO_FILES_IN, empty), (NOTHING_TO_GRADE_IN, hollow))
             if directories]
    errors = [COURSE_ERROR_IN.format(directory=directory,
                                     error="; ".join(verdict.course_error.splitlines()))
              for directory, verdict in checked.items() if verdict.course_error]
    problems = ([LISTED_UNGRADABLE.format(lacks=" and ".join(lacks), **where)] if lacks else []) \
        + ([COURSE_ERRORS.format(errors="; ".join(errors), **where)] if errors else [])
    return "; ".join(problems) or None


def requeue_lost_retries(resources: Resources, now: dt.datetime) -> int:
    """Queue again the runs whose next attempt has not started by the latest it would have:
    the worker holding its message died (or, alive, had no process free all that time).
    Return how many were found.

    Redis would hand the message out again only after the visibility timeout, half an hour
    on. Each run gets a new task id and no sent_at, for the sweep to send: the old message, if
    it ever comes, claims nothing; had it claimed the run first, the run is left to it. A run
    that has had max_attempts attempts ends as error instead. A run whose task noted it tries
    again soon is left to it: it waits for the database, which was away past the patience.
    """
    worker = resources.settings.worker
    patience = dt.timedelta(seconds=retry_patience_seconds(worker))
    with resources.sessions() as session:
        overdue = [(run.id, run.attempts, run.celery_task_id)
                   for run in runs.waiting_for_retry(session, now - patience)]
    coming = retries_coming(resources.settings.broker_url,
                            [task_id for _, _, task_id in overdue])
    lost = 0
    for run_id, attempts, task_id in overdue:
        if task_id in coming:
            continue
        with transaction(resources.sessions) as session:
            if runs.still_waiting_for_retry(session, run_id, attempts) is None:
                continue
            fate = _requeue_or_end(session, run_id, attempts >= worker.max_attempts,
                                   RETRY_LOST_REASON.format(attempt=attempts + 1),
                                   RETRY_LOST_TOO_OFTEN.format(attempt=attempts + 1))
        log.warning("run %s: attempt %d did not start in time (its worker stopped, or had no "
                    "process free); %s", run_id, attempts + 1, fate)
        lost += 1
    return lost


def end_stalled_runs(resources: Resources, now: dt.datetime) -> int:
    """End as error the runs left running past the broker's visibility timeout and a margin
    (stall_patience_seconds): neither finished nor handed out again, their worker is gone.
    Return how many.

    A run whose task sent its next try (a retry, or a wait for the database or to record the
    run's end) within that time is left to it: a worker holds that try until a process of it
    is free, or the broker hands it out again.
    """
    worker = resources.settings.worker
    cutoff = now - dt.timedelta(seconds=stall_patience_seconds(worker))
    reason = STALLED_REASON.format(limit=worker.student_testing_time_limit)
    ended = 0
    with transaction(resources.sessions) as session:
        stalled = runs.stalled_runs(session, cutoff)
        held = retries_sent(resources.settings.broker_url,
                            [run.celery_task_id for run in stalled])
        for run in stalled:
            if run.celery_task_id not in held \
                    and runs.finish(session, run.id, RunStatus.ERROR, reason):
                ended += 1
    return ended


def reconcile_ledger(resources: Resources, celery: Celery,
                     worker_started: bool = False) -> ReconcileReport:
    """Re-send queued runs and retries the broker does not have, end runs abandoned while
    running, report again what GitLab lacks, and grade the branch heads and hand in the merge
    requests no webhook brought; `worker_started` for the sweep at a worker's start."""
    report = ReconcileReport()
    now = utcnow()
    report.retries_lost = requeue_lost_retries(resources, now)
    forgot = broker_forgot(resources.settings)
    unsent = _runs_to_send(resources, celery, now if forgot else now - LOST_MESSAGE_AGE)
    for index, (run_id, sent_at) in enumerate(unsent):
        sent = resend_run(celery, resources.sessions, run_id, sent_at, broker_has_none=forgot)
        if sent is False:
            report.still_unsent = len(unsent) - index
            break
        report.resent += bool(sent)
    report.stalled_ended = end_stalled_runs(resources, now)
    report.submissions_retried = retry_failed_submissions(resources, celery)
    report.submissions_resent = resend_lost_submissions(resources, celery)
    report.notices_resent = resend_lost_notices(resources, celery)
    report.unseen_heads_queued = grade_unseen_heads(resources, celery)
    report.unseen_merge_requests_handed_in = hand_in_unseen_merge_requests(resources, celery)
    report.reports_requested = _rereport(resources, celery, now, worker_started)
    for course in resources.settings.courses:
        report.assignments_found += _check_reference(resources, course)
    if report.retries_lost or report.resent or report.stalled_ended \
            or report.submissions_retried or report.submissions_resent or report.notices_resent \
            or report.unseen_merge_requests_handed_in:
        log.info("reconcile: %s", report.as_dict())
    return report
