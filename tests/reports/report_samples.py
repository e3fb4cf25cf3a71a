"""Build grading reports shaped as testSummary.json (spec/codeability.md §7) for report tests."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from pipeline.reports import RunSummary

SHA = "0123456789abcdef0123456789abcdef01234567"
RESULT_URL = "https://grade.example.com/runs/run-1"
START = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


def value_details(name: str, actual: str, expected: str) -> str:
    """Return the details line of an incorrect value, as the engine writes it."""
    return (f"E   AssertionError: Variable `{name}` has incorrect value "
            f"(`{actual}` instead of `{expected}`)")


def case(name: str, result: str = "PASSED", details: str | None = None,
         debug: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return one test entry."""
    entry: dict[str, Any] = {"name": name, "result": result}
    if details is not None:
        entry["details"] = details
    if debug is not None:
        entry["debug"] = debug
    return entry


def collection(name: str, tests: list[dict[str, Any]], kind: str = "variable") -> dict[str, Any]:
    """Return a collection whose result and summary follow §7's rules."""
    results = [t["result"] for t in tests]
    if all(r == "PASSED" for r in results):
        result = "PASSED"
    elif "SKIPPED" in results:
        result = "SKIPPED"
    else:
        result = "FAILED"
    return {"type": kind, "name": name, "status": "COMPLETED", "result": result,
            "summary": {"total": len(results), "passed": results.count("PASSED"),
                        "failed": results.count("FAILED"), "skipped": results.count("SKIPPED")},
            "tests": tests}


def crashed(name: str, test_names: list[str], *, entry: str, frame: dict[str, Any],
            error: str = "name 'greetin' is not defined") -> dict[str, Any]:
    """Return a collection whose entry point raised: every test failed, the frame in its debug."""
    details = f"E   Failed: Execution of {entry} failed, ERROR: {error}"
    crash = collection(name, [case(test, "FAILED", details) for test in test_names])
    crash.update(status="CRASHED", debug={"traceback": {"name": "<module>", **frame,
                                                        "errormsg": error}})
    return crash


def report(collections: list[dict[str, Any]], *, hidden: Iterable[str] = (),
           course_error: str | None = None,
           course_error_for_students: str | None = None) -> dict[str, Any]:
    """Return a suite report with gradehook's section computed from its collections; students
    read a course error whole unless told what they read of it (as of a test.yaml mistake)."""
    passed = sum(1 for c in collections if c["result"] == "PASSED")
    tests = [t for c in collections for t in c["tests"]]
    tests_passed = sum(1 for t in tests if t["result"] == "PASSED")
    total = len(collections)
    return {
        "timestamp": "2026-03-01 10:00:03.000000", "type": "python", "version": "1.0",
        "name": "Python Test Suite", "status": "COMPLETED",
        "result": "PASSED" if passed == total and total else "FAILED",
        "summary": {"total": total, "passed": passed, "failed": total - passed, "skipped": 0},
        "resultMessage": "Some or all tests failed", "tests": collections,
        "gradehook": {"score": passed / total if total and not course_error else 0.0,
                      "testsPassed": tests_passed, "testsTotal": len(tests),
                      "testFraction": tests_passed / len(tests) if tests else 0.0,
                      "collectionsPassed": passed, "collectionsTotal": total,
                      "timings": {"clone": 0.25, "tests": 3.5}, "engineVersion": "1.2.0",
                      "mode": "test.yaml", "courseError": course_error,
                      "courseErrorForStudents": course_error_for_students or course_error,
                      "hidden": list(hidden)},
    }


def run(status: str = "failed", **overrides: Any) -> RunSummary:
    """Return a run summary with sensible values, overridable."""
    values: dict[str, Any] = {
        "run_id": "run-1", "assignment": "week1/assignment1", "project_path": "course/alice",
        "commit_sha": SHA, "ref": "main", "status": status, "result_url": RESULT_URL,
        "timings": {"received": START, "queued": START + dt.timedelta(seconds=0.5),
                    "started": START + dt.timedelta(seconds=2),
                    "finished": START + dt.timedelta(seconds=9.25)}}
    values.update(overrides)
    return RunSummary(**values)


def mixed_report() -> dict[str, Any]:
    """Return a report with passes, a wrong value, a wrong type, a skip and a hidden failure."""
    return report([
        collection("Variables", [
            case("x", "FAILED", value_details("x", "2", "3")),
            case("y", "FAILED", "E   AssertionError: Variable `y` has incorrect type, "
                                "expected: <class 'float'>, obtained <class 'int'>"),
            case("z"),
        ]),
        collection("Dependent", [
            case("w", "SKIPPED", "Skipped: Success-Dependency `['Variables']` not satisfied")]),
        collection("Secret checks", [case("secret", "FAILED", value_details("k", "1", "42"))]),
        collection("Files", [case("main.py")], kind="exist"),
    ], hidden=["Secret checks"])
