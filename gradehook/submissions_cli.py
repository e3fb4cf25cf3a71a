"""`gradehook submissions`: submissions and their scores as a table, or a gradebook as CSV."""

from __future__ import annotations

import csv
import sys

import click

from gradehook.api_checks import STAFF, load_options
from gradehook.course_names import unknown_course_note
from gradehook.option_names import quoted_option
from gradehook.settings import settings_from
from gradehook.tables import PAGE, SHORT_SHA, format_minute, format_table, score_cell, tests_cell
from pipeline.context import build_resources
from pipeline.ledger.models import Submission, TestRun
from pipeline.rosters import refresh_rosters
from pipeline.submissions.verdict import ACCEPTED, OUTCOMES
from webhooks.api.course_rosters import read_roster
from webhooks.api.missing_grades import MissingGrade, find_missing_grades, has_missing_grades
from webhooks.api.schemas import SubmissionQuerySchema
from webhooks.api.submission_queries import SubmissionFilter, find_submissions, run_fields

# Ledger times are shown in UTC, which deadlines written with another offset are not.
HEADER = ("PROJECT", "ASSIGNMENT", "COMMIT", "OUTCOME", "LATE", "SCORE", "TESTS", "RECEIVED (UTC)")
# Scripts read these columns: new ones come at the end.
CSV_HEADER = ("project", "assignment", "commit", "outcome", "late", "score", "tests_passed",
              "tests_total", "received_at", "deadline", "merge_request", "reason", "result_url",
              "missing")
SHOWN = "{shown} of {total} submission(s)"
# Below a gradebook's table, on every page, as the API's missing: the grades it lacks, and why.
MISSING_HEADING = "{count} grade(s) missing (no accepted submission):"
MISSING_HEADER = ("PROJECT", "ASSIGNMENT", "MISSING")
FINAL_WITH_OUTCOME = (f"{quoted_option('final')} lists accepted submissions: leave "
                      f"{quoted_option('outcome')} out")


@click.command("submissions")
@click.option("--course", help="Course name.")
@click.option("--assignment", help="Assignment directory.")
@click.option("--project", help="Student project path, or its GitLab project id.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only submissions with this outcome.")
@click.option("--late/--on-time", default=None, help="Only late ones, or only those on time.")
@click.option("--final", is_flag=True,
              help="Each student's last accepted submission of each assignment (by when "
                   "gradehook first received its commit), by project and assignment; below "
                   "the table, each student's assignment without one, and why: a gradebook.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Every matching submission as CSV (no pages), scores from 0 to 1; with "
                   "--final, a gradebook: also a line for each student's assignment without "
                   "an accepted submission, saying why (its last column, missing), students "
                   "who never pushed included (the student projects GitLab lists).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Submissions per page (--csv has no pages).")
@click.option("--page", type=PAGE, default=1, show_default=True,
              help="Page of the list to show, from 1 (--csv has no pages).")
@click.pass_context
def submissions(ctx: click.Context, course: str | None, assignment: str | None,
                project: str | None, outcome: str | None, late: bool | None, final: bool,
                as_csv: bool, limit: int, page: int) -> None:
    """Show submissions with their scores, newest first, or each student's final one."""
    if final and outcome not in (None, ACCEPTED):
        raise click.UsageError(FINAL_WITH_OUTCOME)
    # Checked as GET /api/submissions checks them: a value no submission could have lists
    # nothing.
    checked = load_options(SubmissionQuerySchema(only=("project", "course", "assignment")),
                           project=project, course=course, assignment=assignment)
    scope = STAFF.scope(checked.get("project"))
    settings = settings_from(ctx)
    resources = build_resources(settings)
    wanted = SubmissionFilter(course=checked.get("course"), assignment=checked.get("assignment"),
                              project_path=scope.project_path, project_id=scope.project_id,
                              outcome=outcome, late=late, final=final)
    missing, roster_problems = _missing_grades(resources, wanted)
    if as_csv:
        total = _write_csv(resources, wanted, missing)
    else:
        total = _show_table(resources, wanted, missing, page=page, per_page=limit)
    if note := unknown_course_note(settings, wanted.course, total):
        click.echo(note, err=True)
    for problem in roster_problems:
        click.echo(f"gradehook: {problem}", err=True)
    if roster_problems:
        # The gradebook came out whole but for these students: it is not the class's.
        ctx.exit(1)


def _missing_grades(resources, wanted: SubmissionFilter) -> tuple[list[MissingGrade] | None,
                                                                  list[str]]:
    """Return a gradebook's missing grades (None when the listing is no gradebook) and why
    students who never pushed could not all be listed, their projects listed from GitLab
    now and kept for the API's gradebooks."""
    if not has_missing_grades(wanted):
        return None, []
    refresh_rosters(resources, wanted.course)
    roster = read_roster(resources, wanted.course)
    return find_missing_grades(resources.sessions, wanted, roster), roster.problems


def _show_table(resources, wanted: SubmissionFilter, missing: list[MissingGrade] | None, *,
                page: int, per_page: int) -> int:
    """Show one page of matching submissions; below it a gradebook's missing grades, the same
    on every page. Return how many submissions match in all."""
    found, total = find_submissions(resources.sessions, wanted, page=page, per_page=per_page)
    rows = [(s.project_path, s.assignment, s.commit_sha[:SHORT_SHA], s.outcome,
             "late" if s.late else None,
             score_cell(run), tests_cell(run), format_minute(s.counted_at or s.received_at))
            for s, run in found]
    click.echo(format_table(HEADER, rows))
    click.echo(SHOWN.format(shown=len(rows), total=total))
    if missing is not None:
        _echo_missing(missing)
    return total


def _echo_missing(missing: list[MissingGrade]) -> None:
    """Show a gradebook's grades it lacks under its table: each student's assignment, and why."""
    if not missing:
        return
    click.echo()
    click.echo(MISSING_HEADING.format(count=len(missing)))
    click.echo(format_table(MISSING_HEADER, [(grade.project_path, grade.assignment, grade.why)
                                             for grade in missing]))


def _write_csv(resources, wanted: SubmissionFilter, missing: list[MissingGrade] | None) -> int:
    """Write every matching submission, lines ended with CRLF as RFC 4180 says: Python's csv
    quotes a field for the line breaks of its line ending only, and a file name in a reason may
    hold a lone carriage return; return how many lines follow the header."""
    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    found, _ = find_submissions(resources.sessions, wanted)
    rows = [_csv_row(resources, submission, run) for submission, run in found]
    if missing is not None:
        # A gradebook: every student's line, by project and assignment.
        rows += [_missing_row(grade) for grade in missing]
        rows.sort(key=lambda row: (row[0], row[1]))
    writer.writerows(rows)
    return len(rows)


def _csv_row(resources, s: Submission, run: TestRun | None) -> list[object]:
    shown = {name: "" if value is None else value
             for name, value in run_fields(resources, run).items()}
    score = shown["score"] if shown["score"] == "" else round(shown["score"], 4)
    return [s.project_path, s.assignment, s.commit_sha, s.outcome, str(s.late).lower(),
            score, shown["tests_passed"], shown["tests_total"],
            _iso(s.counted_at or s.received_at), _iso(s.deadline),
            "" if s.merge_request_iid is None else s.merge_request_iid, s.reason or "",
            shown["result_url"], ""]


def _missing_row(missing: MissingGrade) -> list[object]:
    """Return a gradebook's line of a grade it lacks: no submission's columns, and why."""
    row = [""] * len(CSV_HEADER)
    row[0], row[1], row[-1] = missing.project_path, missing.assignment, missing.why
    return row


def _iso(moment) -> str:
    """Return a ledger time as RFC 3339 UTC."""
    return moment.isoformat() if moment else ""
