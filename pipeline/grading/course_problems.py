"""A course error's problems: the whole cause for staff, and what students may read of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.withheld_causes import WITHHELD_NOTE


@dataclass(frozen=True)
class CourseProblem:
    """One of the course's mistakes: its whole text for staff, and the text students read."""

    text: str
    shown: str

    @classmethod
    def open(cls, text: str) -> CourseProblem:
        """Return a problem that students read as staff do."""
        return cls(text, text)


@dataclass(frozen=True)
class CourseErrorText:
    """A course error as staff read it (one problem a line) and as students read it."""

    full: str
    shown: str


def course_error_text(problems: Sequence[CourseProblem]) -> CourseErrorText:
    """Join a course error's problems, one a line, into its texts; the students' text ends by
    saying where staff read what it keeps from them, if it keeps anything."""
    shown = [problem.shown for problem in problems]
    if any(problem.shown != problem.text for problem in problems):
        shown.append(WITHHELD_NOTE)
    return CourseErrorText("\n".join(problem.text for problem in problems), "\n".join(shown))
