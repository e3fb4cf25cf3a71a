"""Assignments without test.yaml: the reference's pytest files run against the student's code.

Each test file is one collection and each test one line. The test files run in the student's
sandbox (they must import the student's code), so they are visible to it; the reference
solution is not. Outcomes come back through the result channel, never from stdout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.grading.assignment import Assignment
from pipeline.grading.checks import FAILED, PASSED, SKIPPED
from pipeline.grading.execution import CONTROL_DIR, RESULT_PATH, TESTS_DIR, timeout_message
from pipeline.grading.report import COMPLETED, CRASHED, TEST_SKIPPED, TESTS_SKIPPED, TIMEDOUT, \
    CollectionReport, Summary, TestCaseReport
from pipeline.grading.staging import StagedAssignment, copy_path
from pipeline.sandbox import PYTHON_PLACEHOLDER, SANDBOX_PYTHONPATH, Mount, SandboxLimits, \
    SandboxResult, run_sandboxed

RUNNER_PATH = f"{SANDBOX_PYTHONPATH}/pipeline/grading/pytest_runner.py"
INI_NAME = "pytest.ini"
COLLECTION_TYPE = "pytest"
COLLECTION_ERROR_TEST = "collection"
PYTEST_CRASHED = "Execution of pytest failed, ERROR: {reason}"
PROCESS_ENDED = "process ended before all tests ran (exit code {code}, signal {signal})"
NOT_RUN = "the test did not run"
OUTCOMES = {"passed": PASSED, "failed": FAILED, "skipped": SKIPPED}


class PytestGrader:
    """Run the assignment's pytest files in the student's sandbox and report per file."""

    def __init__(self, assignment: Assignment, staged: StagedAssignment, limits: SandboxLimits,
                 python: str | None, work: Path) -> None:
        self.assignment = assignment
        self.staged = staged
        self.limits = limits
        self.python = python
        self.work = work

    def grade(self) -> list[CollectionReport]:
        """Run pytest once and build one collection report per test file."""
        tests = self.work / "pytest-tests"
        tests.mkdir()
        source = self.assignment.pytest_dir
        for name in (*self.assignment.pytest_files, "conftest.py"):
            if (source / name).is_file():
                shutil.copy2(source / name, tests / name)
        for name in self.staged.test_files:
            copy_path(self.staged.tests_dir / name, tests / name)
        control = self.work / "pytest-control"
        control.mkdir()
        (control / INI_NAME).write_text("[pytest]\n", encoding="utf-8")
        result = run_sandboxed(
            [PYTHON_PLACEHOLDER, RUNNER_PATH, TESTS_DIR, f"{CONTROL_DIR}/{INI_NAME}", RESULT_PATH],
            workdir=self.staged.student_base,
            mounts=[Mount(tests, TESTS_DIR), Mount(control, CONTROL_DIR)], limits=self.limits,
            python=self.python, result_path=RESULT_PATH,
            extra_env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
        return self._reports(result)

    def _reports(self, result: SandboxResult) -> list[CollectionReport]:
        events = _events(result.result_data)
        finished = any(event.get("event") == "done" for event in events)
        status, problem = COMPLETED, None
        if not finished:
            status, problem = self._failure(result)
        collected: list[str] = []
        outcomes: dict[str, tuple[str, str]] = {}
        errors: dict[str, str] = {}
        for event in events:
            kind = event.get("event")
            if kind == "collected":
                collected = [str(nodeid) for nodeid in event.get("tests", [])]
            elif kind == "test":
                outcomes[str(event.get("nodeid"))] = (
                    OUTCOMES.get(event.get("outcome"), FAILED), str(event.get("message", "")))
            elif kind == "collecterror":
                errors[_file_of(str(event.get("nodeid")))] = str(event.get("message", ""))
        reports = []
        for file in self.assignment.pytest_files:
            lines = [self._line(nodeid, outcomes, problem) for nodeid in collected
                     if _file_of(nodeid) == file]
            if file in errors:
                lines.append(TestCaseReport(COLLECTION_ERROR_TEST, FAILED,
                                            details=f"E   {errors[file]}"))
            elif not collected and problem is not None:
                lines.append(TestCaseReport(COLLECTION_ERROR_TEST, FAILED,
                                            details=f"E   Failed: {problem}"))
            reports.append(_collection(file, lines, status, result.duration_seconds))
        return reports

    def _failure(self, result: SandboxResult) -> tuple[str, str]:
        if result.timed_out or result.killed_reason == "timeout":
            return TIMEDOUT, timeout_message(self.limits.effective_timeout)
        return CRASHED, PYTEST_CRASHED.format(reason=PROCESS_ENDED.format(
            code=result.exit_code, signal=result.signal))

    @staticmethod
    def _line(nodeid: str, outcomes: dict[str, tuple[str, str]],
              problem: str | None) -> TestCaseReport:
        name = nodeid.split("::", 1)[-1]
        if nodeid not in outcomes:
            return TestCaseReport(name, FAILED, details=f"E   Failed: {problem or NOT_RUN}")
        result, message = outcomes[nodeid]
        if result == PASSED:
            return TestCaseReport(name, PASSED)
        if result == SKIPPED:
            return TestCaseReport(name, SKIPPED, TEST_SKIPPED, message)
        if message.startswith("assert "):
            message = f"AssertionError: {message}"
        return TestCaseReport(name, FAILED, details=f"E   {message}")


def _collection(file: str, lines: list[TestCaseReport], status: str,
                duration: float) -> CollectionReport:
    summary = Summary.of([line.result for line in lines])
    if summary.passed == summary.total:
        result, message = PASSED, None
    elif summary.skipped:
        result, message = SKIPPED, TESTS_SKIPPED
    else:
        result, message = FAILED, None
    return CollectionReport(type=COLLECTION_TYPE, name=file, status=status, result=result,
                            summary=summary, result_message=message, duration=duration,
                            debug={"lintingErrors": []}, tests=lines)


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def _events(raw: bytes | None) -> list[dict]:
    events = []
    for line in (raw or b"").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events
