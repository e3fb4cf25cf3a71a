"""Run gradehook's command line in-process, as a user would type it, and grading fixtures."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from gradehook.cli import cli
from tests.infra.assignments import ONE_TEST

ASSIGNMENT = "week1/hello"
COURSE = {"name": "prog1", "student_projects": ["students/"],
          "reference_project": "staff/reference", "discover_assignments": False,
          "assignments": [{"directory": ASSIGNMENT}]}
TEST_YAML = ONE_TEST


def gradehook(config: Path, *args: str, stdin: str | None = None) -> Result:
    """Invoke `gradehook --config <config> <args>` and return its result."""
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin,
                              catch_exceptions=False)


def hello(greeting: str) -> dict[str, str]:
    """Return the files of a solution that sets `greeting`."""
    return {f"{ASSIGNMENT}/hello.py": f"greeting = {greeting!r}\n"}


def commit_reference(git_server) -> str:
    """Commit the course's reference of the assignment and return its SHA."""
    return git_server.commit("staff/reference", {**hello("hello"),
                                                 f"{ASSIGNMENT}/test.yaml": TEST_YAML})
