"""Turn a failed test's `details` into what a student needs: expected, actual and the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.reports.model import TestView

# CodeAbility's message shapes (spec/codeability.md §7 "details").
_DETAIL_PREFIX = re.compile(r"^E {3}")
_INCORRECT_VALUE = re.compile(
    r"^AssertionError: Variable `(?P<name>.*)` has (?P<problem>incorrect value) "
    r"\(`(?P<actual>.*)` instead of `(?P<expected>.*)`\)$", re.DOTALL)
_INCORRECT_PROPERTY = re.compile(
    r"^AssertionError: Variable `(?P<name>.*)` has (?P<problem>incorrect (?:type|len|shape)), "
    r"expected: (?P<expected>.*), obtained (?P<actual>.*)$", re.DOTALL)


@dataclass(frozen=True)
class FailureView:
    """A not-passed test explained: what was wrong, the two values if known, further lines."""

    problem: str
    expected: str | None
    actual: str | None
    more: str


def describe_failure(test: TestView) -> FailureView:
    """Explain why a test did not pass, from its details (first line) and resultMessage."""
    lines = test.details.strip("\n").splitlines()
    first = _DETAIL_PREFIX.sub("", lines[0]).strip() if lines else ""
    more = "\n".join(lines[1:]).strip("\n")
    for shape in (_INCORRECT_VALUE, _INCORRECT_PROPERTY):
        match = shape.match(first)
        if match:
            return FailureView(problem=match["problem"], expected=match["expected"],
                               actual=match["actual"], more=more)
    return FailureView(problem=first or test.message, expected=None, actual=None, more=more)
