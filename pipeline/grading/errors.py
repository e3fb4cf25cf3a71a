"""Error types of the grading engine: the course's errors apart from the engine's own."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pipeline.grading.course_problems import CourseProblem

# What students read of a problem that tells of a hidden test (meta.yaml hiddenTests), in place
# of what it says.
HIDDEN_TEST_PROBLEM = "a problem with a hidden test"


class GradingError(Exception):
    """Base of every error the grading engine raises on purpose."""


class CourseError(GradingError):
    """The course's side is broken (invalid test.yaml, missing reference): never scored.

    Its problems say what students may read of it; by default they read the whole message.
    """

    def __init__(self, message: str,
                 problems: Sequence[CourseProblem] | None = None) -> None:
        super().__init__(message)
        self.course_problems = tuple(problems) if problems is not None \
            else (CourseProblem.open(message),)


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: its path inside the file, what is wrong with it and its line (from 1).

    steps lead to the field through the file's data (pipeline.grading.fields.FieldPath); the
    line is found from them in the file's text (pipeline.grading.places), where the text has one.
    hidden: the problem tells of a hidden test (a field of a hidden collection, one naming it, a
    meta.yaml hiddenTests entry), which students read only the place of.
    """

    path: str
    problem: str
    steps: tuple[Any, ...] = ()
    line: int | None = None
    hidden: bool = False

    def describe(self, file_name: str) -> str:
        """Word the problem on one line: `test.yaml line 57: properties.timeout: must be ...`,
        or `test.yaml: (file): cannot be read: ...` where it has no line."""
        place = file_name if self.line is None else f"{file_name} line {self.line}"
        return f"{place}: {self.path}: {self.problem}"

    def course_problem(self, file_name: str) -> CourseProblem:
        """Return the problem as staff and students read it."""
        shown = replace(self, problem=HIDDEN_TEST_PROBLEM) if self.hidden else self
        return CourseProblem(self.describe(file_name), shown.describe(file_name))


@dataclass(frozen=True)
class TextProblem:
    """A problem at a place in a file's text (its YAML syntax): line and column from 1."""

    line: int
    column: int
    problem: str

    def describe(self, file_name: str) -> str:
        """Word the problem on one line: `test.yaml line 3, column 5: mapping values ...`."""
        return f"{file_name} line {self.line}, column {self.column}: {self.problem}"

    def course_problem(self, file_name: str) -> CourseProblem:
        """Return the problem as staff and students read it: alike."""
        return CourseProblem.open(self.describe(file_name))


class SpecError(CourseError):
    """An assignment file (test.yaml, meta.yaml) is invalid: names file, places, problems."""

    def __init__(self, file_name: str, problems: Sequence[FieldProblem | TextProblem]) -> None:
        self.file_name = file_name
        self.problems = tuple(problems)
        super().__init__("\n".join(p.describe(file_name) for p in self.problems),
                         [p.course_problem(file_name) for p in self.problems])


class EngineError(GradingError):
    """The engine itself could not do its work (sandbox unusable): ours to retry, never a score."""


@dataclass(frozen=True)
class SandboxModule:
    """A module the sandbox's interpreter needs for one kind of test."""

    name: str
    needed_by: str
    extra_verb: str  # what the `runtime` extra does for it: "has" (a dependency) or "pins"


PYTEST = SandboxModule("pytest", needed_by="assignments without test.yaml", extra_verb="has")
FLAKE8 = SandboxModule("flake8", needed_by="linting tests", extra_verb="pins")
SANDBOX_MODULES = (PYTEST, FLAKE8)

# The sandbox's interpreter lacks a module a kind of test runs: the operator's failure.
MODULE_MISSING = ("the sandbox interpreter {python} has no {module} module, which {needed_by} "
                  "run: install {module} into it (the `runtime` extra {extra_verb} it) or set "
                  "[sandbox] python to an interpreter that has it")


def module_missing(python: str | None, module: SandboxModule) -> EngineError:
    """Return the error of a sandbox interpreter (None: the one running gradehook) without a
    module: never the student's failure or skip."""
    return EngineError(MODULE_MISSING.format(python=python or sys.executable, module=module.name,
                                             needed_by=module.needed_by,
                                             extra_verb=module.extra_verb))


# The sandbox's interpreter has a pytest older than the pytest runner's plugins work with.
PYTEST_TOO_OLD = ("the sandbox interpreter {python} has pytest {version}, older than pytest 8, "
                  "which {needed_by} need: install pytest 8 or newer into it (the `runtime` extra "
                  "has it) or set [sandbox] python to an interpreter that has it")


def pytest_too_old(python: str | None, version: str) -> EngineError:
    """Return the error of a sandbox interpreter (None: the one running gradehook) whose pytest
    is older than 8: never the student's failure."""
    return EngineError(PYTEST_TOO_OLD.format(python=python or sys.executable, version=version,
                                             needed_by=PYTEST.needed_by))
