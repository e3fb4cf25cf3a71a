"""`gradehook worker status` and `gradehook worker test-job`: look at workers, send a test job."""

from __future__ import annotations

import time

import click
from sqlalchemy.exc import DBAPIError

from gradehook.api_checks import STAFF, bad_parameter
from gradehook.assignment_checks import unknown_assignment
from gradehook.option_names import quoted_option
from gradehook.processes import worker
from gradehook.settings import settings_from
from gradehook.tables import format_table, format_wait
from pipeline.celery_app import STUDENT_TESTING, create_celery
from pipeline.context import build_resources
from pipeline.dispatch import send_runs
from pipeline.ledger.backlog import measure_backlog
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.regrade import GradingTarget, request_grading
from pipeline.repos import (InvalidInputError, check_directory, check_project_path, check_ref,
                            check_sha)
from webhooks.api.errors import ApiError
from webhooks.api.targets import resolve_project
from webhooks.api.workers import BrokerUnavailable, inspect_workers
from webhooks.ledger_faults import ledger_fault

CLI_KIND = "cli"
NO_WORKERS = "no worker answered within {timeout:g} s"
BROKER_DOWN = "the broker could not be reached: {error}"
BACKLOG = "runs: {queued} queued{oldest}; {running} running"
OLDEST_WAIT = ", the oldest waiting {wait}"
BACKLOG_UNKNOWN = "runs: unknown, {fault}"
NOT_A_STUDENT_PROJECT = "{project} is not a student project of any configured course"
QUEUED = "run {run_id} queued as task {task_id}"
EXISTING = "run {run_id} already grades this commit ({status}); --retry grades a failed one again"
OUTCOME = "run {run_id}: {status}{reason}"
WAIT_TIMED_OUT = "run {run_id} has not ended after {timeout:g} s (status {status})"
POLL_SECONDS = 0.25
# Exit codes of test-job --wait: passed 0, failed 1, anything else (error, cancelled, ...) 2.
EXIT_CODES = {RunStatus.PASSED: 0, RunStatus.FAILED: 1}
EXIT_OTHERWISE = 2


@click.command("status")
@click.option("--timeout", type=click.FloatRange(min=0.1),
              help="Seconds to wait for answers (default: api.inspect_timeout_seconds).")
@click.pass_context
def worker_status(ctx: click.Context, timeout: float | None) -> None:
    """Show how many runs are queued and running, then each worker's queues and its active and
    reserved tasks."""
    settings = settings_from(ctx)
    timeout = timeout or settings.api.inspect_timeout_seconds
    click.echo(_backlog_line(settings))
    try:
        workers = inspect_workers(create_celery(settings), timeout)
    except BrokerUnavailable as exc:
        raise click.ClickException(BROKER_DOWN.format(error=exc)) from None
    if not workers:
        click.echo(NO_WORKERS.format(timeout=timeout), err=True)
        ctx.exit(1)
    click.echo()
    click.echo(format_table(("WORKER", "QUEUES", "ACTIVE", "RESERVED"), [
        (w.name, ",".join(w.queues), len(w.active), len(w.reserved)) for w in workers]))
    tasks = [(w.name, state, t.name, t.id, t.run_id) for w in workers
             for state, held in (("active", w.active), ("reserved", w.reserved)) for t in held]
    if tasks:
        click.echo()
        click.echo(format_table(("WORKER", "STATE", "TASK", "TASK ID", "RUN"), tasks))


def _backlog_line(settings) -> str:
    """Say how many runs are queued and running, and how long the oldest queued has waited; a
    ledger out of reach is said so, and the workers are still shown."""
    try:
        with build_resources(settings).sessions() as session:
            backlog = measure_backlog(session)
    except DBAPIError as exc:
        fault = ledger_fault(exc)
        if fault is None:
            raise
        return BACKLOG_UNKNOWN.format(fault=fault.logged)
    waited = backlog.oldest_wait_seconds(utcnow())
    oldest = "" if waited is None else OLDEST_WAIT.format(wait=format_wait(waited))
    return BACKLOG.format(queued=backlog.queued, oldest=oldest, running=backlog.running)


@click.command("test-job")
@click.option("--task", type=click.Choice([STUDENT_TESTING]), default=STUDENT_TESTING,
              show_default=True, help="The task to send.")
@click.option("--project", required=True, help="Student project path, e.g. group/alice.")
@click.option("--sha", required=True, help="Full commit SHA to grade.")
@click.option("--directory", required=True, help="Assignment directory, e.g. week1/hello.")
@click.option("--branch", help="Record the run on this branch, so that its score badge and open "
              "merge requests show the result (the commit is taken to be on it).")
@click.option("--retry", is_flag=True, help="Grade again a commit whose result is failed/error.")
@click.option("--wait", is_flag=True, help="Show progress until the run ends; exit 0 passed, "
              "1 failed, 2 otherwise.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True,
              help="Seconds --wait waits at most.")
@click.pass_context
def worker_test_job(ctx: click.Context, task: str, project: str, sha: str, directory: str,
                    branch: str | None, retry: bool, wait: bool, timeout: float) -> None:
    """Send a student_testing job for a commit, and optionally wait for its outcome."""
    settings = settings_from(ctx)
    sha = sha.lower()
    for option, check, value in (("project", check_project_path, project),
                                 ("sha", check_sha, sha),
                                 ("directory", check_directory, directory),
                                 ("branch", check_ref, branch)):
        try:
            if value is not None:
                check(value)
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc), param_hint=quoted_option(option)) from None
    course = settings.course_for(project)
    if course is None:
        raise click.BadParameter(NOT_A_STUDENT_PROJECT.format(project=project),
                                 param_hint=quoted_option("project"))
    resources = build_resources(settings)
    # Checked as POST /api/tests-celery checks them: a typo must not post a failed status on
    # the student's commit, nor a missing project retry its fetch until it gives up.
    problem = unknown_assignment(resources.sessions, course, directory)
    if problem is not None:
        raise click.BadParameter(problem, param_hint=quoted_option("directory"))
    try:
        project, project_id = resolve_project(STAFF, project, settings, resources.sessions,
                                              resources.gitlab)
    except ApiError as exc:
        raise bad_parameter(exc) from None
    target = GradingTarget(course=course, project_path=project, commit_sha=sha,
                           assignment=directory, project_id=project_id, ref=branch)
    run, created = request_grading(resources.sessions, target, kind=CLI_KIND, retry=retry)
    if created:
        send_runs(create_celery(settings), resources.sessions, [(run.id, run.celery_task_id)])
        click.echo(QUEUED.format(run_id=run.id, task_id=run.celery_task_id))
    else:
        click.echo(EXISTING.format(run_id=run.id, status=run.status.value))
    if wait:
        ctx.exit(_wait_for_outcome(resources.sessions, run.id, timeout))


def _wait_for_outcome(sessions, run_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    with click.progressbar(length=100, label="grading", show_percent=True) as bar:
        while True:
            with sessions() as session:
                run = session.get(TestRun, run_id)
            bar.label = f"grading: {run.stage}"
            bar.update(run.progress - bar.pos)
            if run.status.final or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
    if not run.status.final:
        click.echo(WAIT_TIMED_OUT.format(run_id=run_id, timeout=timeout,
                                         status=run.status.value), err=True)
        return EXIT_OTHERWISE
    reason = f" ({run.status_reason})" if run.status_reason else ""
    click.echo(OUTCOME.format(run_id=run_id, status=run.status.value, reason=reason))
    return EXIT_CODES.get(run.status, EXIT_OTHERWISE)


worker.add_command(worker_status)
worker.add_command(worker_test_job)
