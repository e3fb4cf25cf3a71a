"""Error types of the grading engine: the course's errors apart from the engine's own."""

from __future__ import annotations

from dataclasses import dataclass


class GradingError(Exception):
    """Base of every error the grading engine raises on purpose."""


class CourseError(GradingError):
    """The course's side is broken (invalid test.yaml, missing reference): never scored."""


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: its path inside the file and what is wrong with it."""

    path: str
    problem: str


class SpecError(CourseError):
    """An assignment file (test.yaml, meta.yaml) is invalid: names file, field paths, problems."""

    def __init__(self, file_name: str, problems: list[FieldProblem]) -> None:
        self.file_name = file_name
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{file_name}: {p.path}: {p.problem}" for p in self.problems))


class EngineError(GradingError):
    """The engine itself could not do its work (sandbox unusable): ours to retry, never a score."""
