"""`gradehook reconcile`, `gradehook regrade ...` and `gradehook token-hash` for operators."""

from __future__ import annotations

import hashlib
import sys

import click

from gitlab_client import GitLabError
from gradehook.settings import settings_from
from pipeline.celery_app import create_celery
from pipeline.context import build_resources
from pipeline.reconcile import reconcile_ledger
from pipeline.reference_checks import reference_problems
from pipeline.regrade import (Queued, RegradeError, publish_regrades, regrade_assignment,
                              regrade_branch_heads, regrade_run, regrade_student)

QUEUED = "queued {count} run(s) on low_priority: {ids}"
ALREADY = "already queued or running: {ids}"
NO_TOKEN_GIVEN = "no token on stdin"
SKIPPED = "skipped (GitLab or git could not read them): {projects}"
SWEPT = "looked at {branches} branch head(s) of {projects} project(s)"
# What the health answer's `problems` holds after the sweep: a course whose reference is unwell.
PROBLEM = "gradehook: {problem}"


@click.command("reconcile")
@click.pass_context
def reconcile(ctx: click.Context) -> None:
    """Run one reconciliation sweep now and print what it did, then the problems it found with
    the courses' references."""
    settings = settings_from(ctx)
    resources = build_resources(settings)
    report = reconcile_ledger(resources, create_celery(settings))
    for name, count in report.as_dict().items():
        click.echo(f"{name}: {count}")
    with resources.sessions() as session:
        for problem in reference_problems(session, settings.courses):
            click.echo(PROBLEM.format(problem=problem), err=True)


@click.group("regrade")
def regrade() -> None:
    """Grade again on the low_priority queue; a commit already queued is not queued twice."""


@regrade.command("run")
@click.argument("run_id")
@click.pass_context
def regrade_one_run(ctx: click.Context, run_id: str) -> None:
    """Grade one run's commit again (an id beginning with `-`, which earlier releases could
    make, goes after `--`: `gradehook regrade run -- -vX3...`)."""
    _regrade(ctx, lambda resources: regrade_run(resources.sessions, resources.settings, run_id))


@regrade.command("student")
@click.option("--project", required=True, help="Student project path.")
@click.option("--assignment", required=True, help="Assignment directory.")
@click.pass_context
def regrade_one_student(ctx: click.Context, project: str, assignment: str) -> None:
    """Grade again the latest graded commit of one student's assignment and that of their
    final submission."""
    _regrade(ctx, lambda resources: regrade_student(resources.sessions, resources.settings,
                                                    project, assignment))


@regrade.command("assignment")
@click.option("--assignment", required=True, help="Assignment directory.")
@click.option("--course", help="Only this course's projects.")
@click.pass_context
def regrade_whole_assignment(ctx: click.Context, assignment: str, course: str | None) -> None:
    """Grade again, in every student project, the latest graded commit of an assignment and
    that of the final submission."""
    _regrade(ctx, lambda resources: regrade_assignment(resources.sessions, resources.settings,
                                                       assignment, course))


@regrade.command("branch-heads")
@click.option("--course", help="Only this course (default: every course).")
@click.pass_context
def regrade_branch_heads_command(ctx: click.Context, course: str | None) -> None:
    """Grade every student branch head that has no result, found through GitLab."""
    settings = settings_from(ctx)
    resources = build_resources(settings)
    try:
        report = regrade_branch_heads(resources, course)
    except (RegradeError, GitLabError) as exc:
        raise click.ClickException(str(exc)) from None
    publish_regrades(create_celery(settings), resources.sessions, report.queued.created)
    click.echo(SWEPT.format(branches=report.branches, projects=report.projects))
    _echo_queued(report.queued)
    if report.skipped_projects:
        click.echo(SKIPPED.format(projects=", ".join(report.skipped_projects)))


@click.command("token-hash")
def token_hash() -> None:
    """Print the sha256 digest of a token read from stdin, for api.staff_token_hashes."""
    if sys.stdin.isatty():
        token = click.prompt("Token", hide_input=True, err=True).strip()
    else:
        token = sys.stdin.readline().strip()
    if not token:
        raise click.ClickException(NO_TOKEN_GIVEN)
    click.echo(hashlib.sha256(token.encode()).hexdigest())


def _regrade(ctx: click.Context, plan) -> None:
    settings = settings_from(ctx)
    resources = build_resources(settings)
    try:
        queued = plan(resources)
    except RegradeError as exc:
        raise click.ClickException(str(exc)) from None
    publish_regrades(create_celery(settings), resources.sessions, queued.created)
    _echo_queued(queued)


def _echo_queued(queued: Queued) -> None:
    click.echo(QUEUED.format(count=len(queued.created), ids=" ".join(queued.created_ids) or "-"))
    if queued.existing:
        click.echo(ALREADY.format(ids=" ".join(queued.existing)))
