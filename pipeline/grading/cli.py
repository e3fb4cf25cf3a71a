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
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The student's assignment directory (an empty one grades a missing "
                   "submission).")
@click.option("--reference", "reference_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The reference solution's directory.")
@click.option("--assignment", "assignment_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Directory with test.yaml and meta.yaml (default: the reference directory).")
@click.option("--repository", "repository_root", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The reference repository's root, where meta.yaml testDependencies are "
                   "read (default: the git work tree holding the reference directory).")
@click.option("--output", "output_dir", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Keep linting outputs and graphics artifacts here.")
@click.option("--json", "as_json", is_flag=True, help="Print testSummary.json instead of text.")
@click.pass_context
def grade_command(ctx: click.Context, student_dir: Path, reference_dir: Path,
                  assignment_dir: Path | None, repository_root: Path | None,
                  output_dir: Path | None, as_json: bool) -> None:
    """Grade a solution; exit 0 if all tests pass, 1 if some fail, 2 on a course error,
    3 when the engine itself could not grade."""
    from pipeline.config import load_settings
    from pipeline.grading import EngineError, GradeOptions, grade, report_to_json
    from pipeline.grading.text_report import render_text
    settings = load_settings((ctx.obj or {}).get("config_path"))
    try:
        report = grade(student_dir, reference_dir, assignment_dir, settings=settings.sandbox,
                       options=GradeOptions(
                           output_dir=output_dir,
                           dependency_root=repository_root or _work_tree_of(reference_dir)))
    except EngineError as exc:
        click.echo(ENGINE_ERROR.format(error=exc), err=True)
        sys.exit(EXIT_ENGINE_ERROR)
    click.echo(report_to_json(report) if as_json else render_text(report))
    if report.course_error is not None:
        sys.exit(EXIT_COURSE_ERROR)
    sys.exit(EXIT_PASSED if report.all_passed else EXIT_FAILED)


def _work_tree_of(folder: Path) -> Path | None:
    """Return the git work tree a folder lies in (the nearest parent holding .git), if any."""
    for candidate in (folder.resolve(), *folder.resolve().parents):
        if (candidate / ".git").exists():
            return candidate
    return None
