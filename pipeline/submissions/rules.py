"""The submission rules of one assignment: deadline, late policy, limits and scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import CourseSettings
from pipeline.grading.errors import SpecError
from pipeline.grading.fields import FieldChecker, join_path
from pipeline.grading.meta import META_FILE_NAME, PROPERTIES, load_meta
from pipeline.grading.places import with_lines
from pipeline.grading.spec import read_yaml

DEADLINE_KEY = "deadline"
BAD_DEADLINE = ("must be a date and time with its time zone offset, like "
                "2026-12-01T23:59:00+01:00, got {got!r:.80}")


@dataclass(frozen=True)
class SubmissionRules:
    """What a submission of one assignment is checked against."""

    deadline: dt.datetime | None = None
    accept_late: bool = False
    max_submissions: int | None = None
    max_test_runs: int | None = None
    scope_only: bool = True


def load_rules(course: CourseSettings, assignment: str, reference_dir: Path) -> SubmissionRules:
    """Combine the course configuration with the assignment's meta.yaml; configuration wins.

    `reference_dir` is the assignment's folder in the reference. meta.yaml gives
    `properties.maxSubmissions`, `properties.maxTestRuns` and `properties.deadline`. Raises
    SpecError when meta.yaml is invalid: a course error, never the student's.
    """
    meta_path = reference_dir / META_FILE_NAME
    meta = load_meta(meta_path)
    configured = course.assignment(assignment)
    deadline = _meta_deadline(meta_path)
    max_submissions, max_test_runs, accept_late = meta.max_submissions, meta.max_test_runs, False
    if configured is not None:
        deadline = configured.deadline or deadline
        max_submissions = _first_set(configured.max_submissions, max_submissions)
        max_test_runs = _first_set(configured.max_test_runs, max_test_runs)
        accept_late = configured.accept_late
    return SubmissionRules(deadline=deadline, accept_late=accept_late,
                           max_submissions=max_submissions, max_test_runs=max_test_runs,
                           scope_only=course.submission_scope_only)


def _first_set(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)


def _meta_deadline(path: Path) -> dt.datetime | None:
    """Read `properties.deadline` of meta.yaml, if there is one."""
    if not path.is_file():
        return None
    text, data = read_yaml(path)
    properties = data.get("properties") if isinstance(data, dict) else None
    value = properties.get(DEADLINE_KEY) if isinstance(properties, dict) else None
    if value is None:
        return None
    moment = _as_datetime(value)
    if moment is None:
        check = FieldChecker()
        check.fail(join_path(PROPERTIES, DEADLINE_KEY), BAD_DEADLINE.format(got=value))
        raise SpecError(path.name, with_lines(check.problems, text))
    return moment


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    return None
