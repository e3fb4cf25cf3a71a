"""Submission rules: the configuration wins over meta.yaml, which may set limits and a deadline."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.config import AssignmentSettings, CourseSettings
from pipeline.grading.errors import SpecError
from pipeline.submissions.rules import SubmissionRules, load_rules

META = """\
properties:
  maxSubmissions: 3
  maxTestRuns: 20
  deadline: 2026-12-01T23:59:00+01:00
"""


def course(*assignments: AssignmentSettings, scope_only: bool = True) -> CourseSettings:
    return CourseSettings(name="prog1", reference_project="staff/reference",
                          assignments=assignments, submission_scope_only=scope_only)


def write_meta(tmp_path, text: str):
    (tmp_path / "meta.yaml").write_text(text)
    return tmp_path


def test_meta_yaml_gives_limits_and_deadline(tmp_path):
    rules = load_rules(course(), "week1/hello", write_meta(tmp_path, META))
    assert rules == SubmissionRules(
        deadline=dt.datetime(2026, 12, 1, 22, 59, tzinfo=dt.timezone.utc), accept_late=False,
        max_submissions=3, max_test_runs=20, scope_only=True)


def test_the_configuration_wins_field_by_field(tmp_path):
    deadline = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    configured = AssignmentSettings(directory="week1/hello", deadline=deadline,
                                    max_submissions=1, accept_late=True)
    rules = load_rules(course(configured, scope_only=False), "week1/hello",
                       write_meta(tmp_path, META))
    assert rules == SubmissionRules(deadline=deadline, accept_late=True, max_submissions=1,
                                    max_test_runs=20, scope_only=False)


def test_no_meta_yaml_and_no_configuration_sets_no_rule(tmp_path):
    assert load_rules(course(), "week1/hello", tmp_path) == SubmissionRules()


@pytest.mark.parametrize("deadline", ["'next friday'", "2026-12-01T23:59:00", "17"])
def test_a_deadline_without_time_zone_or_date_is_a_course_error(tmp_path, deadline):
    with pytest.raises(SpecError,
                       match=r"^meta\.yaml line 2: properties\.deadline: must be a date and time"):
        load_rules(course(), "week1/hello",
                   write_meta(tmp_path, f"properties:\n  deadline: {deadline}\n"))


def test_an_invalid_limit_is_a_course_error(tmp_path):
    with pytest.raises(SpecError, match="maxSubmissions"):
        load_rules(course(), "week1/hello",
                   write_meta(tmp_path, "properties:\n  maxSubmissions: -1\n"))
