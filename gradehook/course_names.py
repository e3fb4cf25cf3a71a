"""Say when a listing found nothing as its --course names no configured course (a typo)."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.likely_names import did_you_mean

# A misspelt course lists nothing, like a course with nothing yet: only the words tell them apart.
NO_SUCH_COURSE = "gradehook: no course named {course!r} is configured{likely}"


def unknown_course_note(settings: Settings, course: str | None, found: int) -> str | None:
    """Return a note for an empty listing whose course is none of config.toml's; else None."""
    if course is None or found or settings.course_named(course) is not None:
        return None
    return NO_SUCH_COURSE.format(course=course, likely=did_you_mean(
        course, [configured.name for configured in settings.courses]))
