"""The grading report: testSummary.json-compatible levels plus gradehook's own section."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# testSummary.json key order, shared by the suite, collection and test levels.
KEY_ORDER = ("timestamp", "type", "version", "name", "description", "status", "result",
             "summary", "statusMessage", "resultMessage", "details", "setup", "teardown",
             "duration", "executionDuration", "environment", "properties", "debug", "tests")
GRADEHOOK_KEY = "gradehook"

COMPLETED = "COMPLETED"
TIMEDOUT = "TIMEDOUT"
CRASHED = "CRASHED"
FAILED_STATUS = "FAILED"
SKIPPED_STATUS = "SKIPPED"
CANCELLED = "CANCELLED"
SCHEDULED = "SCHEDULED"

PASSED = "PASSED"
FAILED = "FAILED"
SKIPPED = "SKIPPED"

NO_TESTS_SPECIFIED = "No Tests specified"
TESTS_SKIPPED = "Tests skipped"
TEST_SKIPPED = "Test skipped"


@dataclass
class Summary:
    """Counts of one level: collections at the suite level, tests at the collection level."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, results: list[str]) -> Summary:
        """Count a list of results."""
        return cls(len(results), results.count(PASSED), results.count(FAILED),
                   results.count(SKIPPED))

    def to_dict(self) -> dict[str, int]:
        """Return the summary as testSummary.json writes it."""
        return {"total": self.total, "passed": self.passed, "failed": self.failed,
                "skipped": self.skipped}


@dataclass
class TestCaseReport:
    """One test's line: its result and, when it did not pass, what went wrong."""

    name: str
    result: str
    result_message: str | None = None
    details: str | None = None
    debug: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the test's testSummary.json fields."""
        return _ordered({"name": self.name, "result": self.result,
                         "resultMessage": self.result_message, "details": self.details,
                         "debug": self.debug})


@dataclass
class CollectionReport:
    """One collection: the student run's status, the result and its tests."""

    type: str
    name: str
    status: str
    result: str
    summary: Summary
    description: str | None = None
    result_message: str | None = None
    setup: str | None = None
    teardown: str | None = None
    duration: float | None = None
    execution_duration: float | None = None
    debug: dict[str, Any] | None = None
    tests: list[TestCaseReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the collection's testSummary.json fields."""
        return _ordered({
            "type": self.type, "name": self.name, "description": self.description,
            "status": self.status, "result": self.result, "summary": self.summary.to_dict(),
            "resultMessage": self.result_message, "setup": self.setup,
            "teardown": self.teardown, "duration": self.duration,
            "executionDuration": self.execution_duration, "debug": self.debug,
            "tests": [test.to_dict() for test in self.tests]})


@dataclass
class GradehookSection:
    """gradehook's own figures: score, counts, timings, mode, course error, hidden collections."""

    score: float | None
    tests_passed: int
    tests_total: int
    collections_passed: int
    collections_total: int
    engine_version: str
    mode: str
    # The course error as staff read it, and as students read it (without the reference's code
    # and what it raised, without hidden tests).
    course_error: str | None = None
    course_error_for_students: str | None = None
    hidden: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def test_fraction(self) -> float | None:
        """Return passed tests over total tests (0.0 without tests, None on a course error)."""
        if self.course_error is not None:
            return None
        return self.tests_passed / self.tests_total if self.tests_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the section with explicit nulls, as consumers read it."""
        return {"score": self.score, "testsPassed": self.tests_passed,
                "testsTotal": self.tests_total, "testFraction": self.test_fraction,
                "collectionsPassed": self.collections_passed,
                "collectionsTotal": self.collections_total,
                "timings": {phase: round(seconds, 6) for phase, seconds in self.timings.items()},
                "engineVersion": self.engine_version, "mode": self.mode,
                "courseError": self.course_error,
                "courseErrorForStudents": self.course_error_for_students,
                "hidden": list(self.hidden)}


@dataclass
class Report:
    """A whole grading report (the suite level of testSummary.json plus gradehook's section)."""

    timestamp: str
    type: str
    version: str
    name: str
    description: str
    status: str
    result: str
    summary: Summary
    gradehook: GradehookSection
    result_message: str | None = None
    duration: float | None = None
    execution_duration: float | None = None
    environment: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    debug: dict[str, Any] | None = None
    tests: list[CollectionReport] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        """Return the score: passed collections over all collections (None on a course error)."""
        return self.gradehook.score

    @property
    def course_error(self) -> str | None:
        """Return the course's error message, if the assignment itself is broken."""
        return self.gradehook.course_error

    @property
    def all_passed(self) -> bool:
        """Tell whether every collection passed and there was no course error."""
        return self.course_error is None and self.result == PASSED

    def to_dict(self) -> dict[str, Any]:
        """Return the report as ordered JSON-able data, nulls omitted outside gradehook's part."""
        data = _ordered({
            "timestamp": self.timestamp, "type": self.type, "version": self.version,
            "name": self.name, "description": self.description, "status": self.status,
            "result": self.result, "summary": self.summary.to_dict(),
            "resultMessage": self.result_message, "duration": self.duration,
            "executionDuration": self.execution_duration, "environment": self.environment,
            "properties": self.properties, "debug": self.debug,
            "tests": [collection.to_dict() for collection in self.tests]})
        data[GRADEHOOK_KEY] = self.gradehook.to_dict()
        return data


def report_to_json(report: Report) -> str:
    """Return the exact testSummary.json text of a report (indent 2, nulls omitted, key order)."""
    return json.dumps(report.to_dict(), indent=2, default=str)


def _ordered(values: dict[str, Any]) -> dict[str, Any]:
    """Return the non-null values in testSummary.json key order, nulls removed recursively."""
    return {key: _without_nulls(values[key]) for key in KEY_ORDER
            if key in values and values[key] is not None}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_nulls(item) for item in value if item is not None]
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    return value
