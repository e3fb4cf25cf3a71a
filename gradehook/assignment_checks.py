"""Refuse an assignment a course does not have, as POST /api/tests-celery refuses it."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from gradehook.api_checks import refusal_reason
from pipeline.assignments import AssignmentDirectory
from pipeline.config import CourseSettings
from webhooks.api.errors import ApiError
from webhooks.api.targets import check_assignment

DISCOVERY_HINT = ("; assignments found in the reference are those of the last reconciler sweep "
                  "(`gradehook reconcile` looks again)")


def unknown_assignment(sessions: sessionmaker[Session], course: CourseSettings,
                       directory: str) -> str | None:
    """Return why a course has no such assignment (where discovered ones come from); None
    when it has it."""
    try:
        check_assignment(AssignmentDirectory(sessions).known(course), course, directory)
    except ApiError as exc:
        return refusal_reason(exc) + (DISCOVERY_HINT if course.discover_assignments else "")
    return None
