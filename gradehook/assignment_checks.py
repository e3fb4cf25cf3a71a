"""Refuse an assignment a course does not have, as POST /api/tests-celery refuses it."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from gradehook.api_checks import refusal_reason
from pipeline.assignments import AssignmentDirectory
from pipeline.config import CourseSettings
from pipeline.likely_names import did_you_mean
from webhooks.api.errors import ApiError
from webhooks.api.targets import check_assignment

DISCOVERY_HINT = (" (assignments found in the reference are those of the last reconciler sweep: "
                  "`gradehook reconcile` looks again)")


def unknown_assignment(sessions: sessionmaker[Session], course: CourseSettings,
                       directory: str) -> str | None:
    """Return why a course has no such assignment (the one it likely misspells, where
    discovered ones come from); None when it has it."""
    known = AssignmentDirectory(sessions).known(course)
    try:
        check_assignment(known, course, directory)
    except ApiError as exc:
        # Staff alone read the likely name: the API's answer to a student's token names no
        # assignment they were not given.
        return (refusal_reason(exc) + did_you_mean(directory, known)
                + (DISCOVERY_HINT if course.discover_assignments else ""))
    return None
