"""`gradehook grade`: grade a student directory against a reference, for staff trying tests."""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_COURSE_ERROR = 2
EXIT_ENGINE_ERROR = 3
ENGINE_ERROR = "gradehook: the engine could not grade: {error}"


@click.command("grade")
@click.option("--student", "student_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The student's assignment directory.")
@click.option("--reference", "reference_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The reference solution's directory.")
@click.option("--assignment", "assignment_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Directory with test.yaml and meta.yaml (default: the reference directory).")
@click.option("--output", "output_dir", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Keep linting outputs and graphics artifacts here.")
@click.option("--json", "as_json", is_flag=True, help="Print testSummary.json instead of text.")
@click.pass_context
def grade_command(ctx: click.Context, student_dir: Path, reference_dir: Path,
                  assignment_dir: Path | None, output_dir: Path | None, as_json: bool) -> None:
    """Grade a solution; exit 0 if all tests pass, 1 if some fail, 2 on a course error."""
    from pipeline.config import load_settings
    from pipeline.grading import EngineError, GradeOptions, grade, report_to_json
    from pipeline.grading.text_report import render_text

    settings = load_settings((ctx.obj or {}).get("config_path"))
    try:
        report = grade(student_dir, reference_dir, assignment_dir, settings=settings.sandbox,
                       options=GradeOptions(output_dir=output_dir))
    except EngineError as exc:
        click.echo(ENGINE_ERROR.format(error=exc), err=True)
        sys.exit(EXIT_ENGINE_ERROR)
    click.echo(report_to_json(report) if as_json else render_text(report))
    if report.course_error is not None:
        sys.exit(EXIT_COURSE_ERROR)
    sys.exit(EXIT_PASSED if report.all_passed else EXIT_FAILED)
