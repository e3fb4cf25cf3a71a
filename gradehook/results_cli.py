"""`gradehook results`: a table of test runs by project, course, assignment, commit or statuses."""

from __future__ import annotations

from dataclasses import replace

import click

from gradehook.api_checks import STAFF, load_options
from gradehook.course_names import unknown_course_note
from gradehook.settings import settings_from
from gradehook.tables import (PAGE, SHORT_SHA, format_minute, format_table, score_cell,
                              tests_cell)
from pipeline.context import build_resources
from pipeline.ledger.models import UNGRADED_STATUSES, RunStatus
from webhooks.api.run_queries import RunFilter, count_runs, find_runs
from webhooks.api.schemas import RunQuerySchema

# Ledger times are shown in UTC, which deadlines written with another offset are not.
HEADER = ("RUN", "PROJECT", "ASSIGNMENT", "COMMIT", "STATUS", "SCORE", "TESTS", "FINISHED (UTC)")
SHOWN = "{shown} of {total} run(s)"
# A listed run whose update GitLab refused for good (its commit status, its merge request
# comments, or a submission's comment showing its grade): nothing else tells staff.
REFUSED = "run {run}: {reason}"
LEFT_OUT = ("{count} run(s) that graded nothing (superseded or cancelled) not listed: "
            "--with-ungraded lists them")
# Listed unless asked for: runs withdrawn before they graded their commit, which at a deadline
# outnumber the graded ones (each push makes a run per assignment, cancelled when unchanged).
LISTED_BY_DEFAULT = tuple(s for s in RunStatus if s not in UNGRADED_STATUSES)


@click.command("results")
@click.option("--project", help="Student project path, or its GitLab project id.")
@click.option("--course", help="Course name.")
@click.option("--assignment", help="Assignment directory.")
@click.option("--commit", help="Commit SHA or its first characters.")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice([s.value for s in RunStatus]),
              help="Only runs with this status; give it again for several.")
@click.option("--with-ungraded", is_flag=True,
              help="Also list the runs that graded nothing: superseded (a newer push replaced "
                   "them) or cancelled (the push did not change the assignment, the merge "
                   "request was closed).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Runs per page.")
@click.option("--page", type=PAGE, default=1, show_default=True,
              help="Page of the list to show, from 1.")
@click.pass_context
def results(ctx: click.Context, project: str | None, course: str | None,
            assignment: str | None, commit: str | None, statuses: tuple[str, ...],
            with_ungraded: bool, limit: int, page: int) -> None:
    """Show test runs, newest first; those that graded nothing only with --with-ungraded or
    --status."""
    # Checked as GET /api/runs checks them: a value no run could have lists nothing.
    checked = load_options(RunQuerySchema(only=("project", "course", "assignment", "commit")),
                           project=project, course=course, assignment=assignment, commit=commit)
    scope = STAFF.scope(checked.get("project"))
    settings = settings_from(ctx)
    resources = build_resources(settings)
    leaving_out = not statuses and not with_ungraded
    listed = tuple(RunStatus(s) for s in statuses) or (LISTED_BY_DEFAULT if leaving_out else None)
    wanted = RunFilter(project_path=scope.project_path, project_id=scope.project_id,
                       course=checked.get("course"), assignment=checked.get("assignment"),
                       commit_prefix=checked.get("commit"), statuses=listed)
    runs, total = find_runs(resources.sessions, wanted, page=page, per_page=limit)
    rows = [(run.id, run.project_path, run.assignment, run.commit_sha[:SHORT_SHA],
             run.status.value, score_cell(run), tests_cell(run), format_minute(run.finished_at))
            for run in runs]
    click.echo(format_table(HEADER, rows))
    click.echo(SHOWN.format(shown=len(rows), total=total))
    for run in runs:
        if run.report_refused:
            click.echo(REFUSED.format(run=run.id, reason=run.report_refused))
    if note := unknown_course_note(settings, checked.get("course"), total):
        click.echo(note, err=True)
    if leaving_out:
        left_out = count_runs(resources.sessions, replace(wanted, statuses=UNGRADED_STATUSES))
        if left_out:
            click.echo(LEFT_OUT.format(count=left_out))
