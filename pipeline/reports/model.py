"""What the report builders read: a run summary and a tolerant view of a grading report."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

RUN_STATUSES = ("queued", "running", "passed", "failed", "error", "superseded", "cancelled")
PHASES = ("received", "queued", "started", "cloned", "tested", "finished")
RESULTS = ("PASSED", "FAILED", "SKIPPED")


class ReportInputError(ValueError):
    """A run summary, report or builder argument cannot be rendered."""


@dataclass(frozen=True)
class RunSummary:
    """The facts about one test run that reports show, independent of the ledger."""

    run_id: str
    assignment: str
    project_path: str
    commit_sha: str
    ref: str | None
    status: str
    status_reason: str | None = None
    result_url: str | None = None
    timings: Mapping[str, dt.datetime] = field(default_factory=dict)
    # Whether the run was made for each assignment, to diff its commit and grade its
    # assignment only if the commit changed it.
    diffs: bool = False

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ReportInputError(f"run status {self.status!r} is not one of "
                                   f"{', '.join(RUN_STATUSES)}")
        for phase, moment in self.timings.items():
            if phase not in PHASES or not isinstance(moment, dt.datetime):
                raise ReportInputError(f"timing {phase!r} must be one of {', '.join(PHASES)} "
                                       "with a datetime")

    @classmethod
    def from_record(cls, record: Any, result_url: str | None = None) -> RunSummary:
        """Build from a ledger test run (anything with its attribute names)."""
        status = getattr(record.status, "value", record.status)
        timings = {phase: getattr(record, f"{phase}_at", None) for phase in PHASES}
        return cls(run_id=str(record.id), assignment=record.assignment,
                   project_path=record.project_path, commit_sha=record.commit_sha,
                   ref=record.ref, status=status, status_reason=record.status_reason,
                   result_url=result_url,
                   timings={k: v for k, v in timings.items() if v is not None},
                   diffs=bool(getattr(record, "needs_diff", False)))

    @property
    def stands_for_assignment(self) -> bool:
        """Tell whether the run is its assignment's: one that diffs its commit is once its
        worker fetched the commit and found the assignment changed (its `cloned` time)."""
        return not self.diffs or "cloned" in self.timings

    @property
    def short_sha(self) -> str:
        """Return the abbreviated commit SHA GitLab shows."""
        return self.commit_sha[:8]


@dataclass(frozen=True)
class CrashFrame:
    """A line of the student's program: its last frame when it raised (a report's
    `debug.traceback`, with the exception as Python's traceback ends with it if the report
    says), the line it was stopped at when it ran past its timeout (`debug.traceback` too),
    where a test's expression raised (a test's `debug.raised`), or where it ended with
    sys.exit(0) (a test's `debug.exited`); in the last three its file is named relative to
    their folder."""

    filename: str
    lineno: int
    line: str
    raised: str | None = None


@dataclass(frozen=True)
class ShadowedModule:
    """A module of the student's folder (a file name.py, or a folder) that an import or an
    attribute of a module failed on, whose name Python imported from elsewhere in its place: a
    standard module's, or one installed with the grader (a report's `debug.shadowed`, or its
    `debug.traceback.shadowed`)."""

    module: str
    folder: bool
    standard: bool


@dataclass(frozen=True)
class TestView:
    """One test of a collection as a report lists it, with the frame its run raised or was
    stopped at (`crash`), if any.

    The excerpts are the engine's texts of the values a failed test compared (its `debug`): the
    message abbreviates them to ten characters. `raised` is the error that evaluating the test's
    name raised in the student's namespace (`TypeError: f() missing 1 required positional
    argument: 'b'`), which the message words as not found; `raised_at` is where in the
    student's files, its file named relative to their folder. `exited_at` is where in those
    files the student's program ended with sys.exit(0) before a name not found was looked up.
    `shadowed` is the student's module that the failure is about, which Python passed over.
    """

    __test__ = False  # not a pytest class

    name: str
    result: str
    message: str
    details: str
    crash: CrashFrame | None = None
    expected_excerpt: str | None = None
    actual_excerpt: str | None = None
    raised: str | None = None
    raised_at: CrashFrame | None = None
    exited_at: CrashFrame | None = None
    shadowed: ShadowedModule | None = None


@dataclass(frozen=True)
class CollectionView:
    """One collection of tests; `hidden` collections show students only pass or fail.

    `status` is how the student's run for it ended (COMPLETED, CRASHED, TIMEDOUT, ...), empty
    when the report does not say.
    """

    name: str
    type: str
    result: str
    message: str
    tests: tuple[TestView, ...]
    hidden: bool
    status: str = ""

    @property
    def passed_count(self) -> int:
        """Return how many tests passed."""
        return sum(1 for test in self.tests if test.result == "PASSED")


@dataclass(frozen=True)
class ScoreBasis:
    """The counts a score rests on; the score itself counts collections (spec §8).

    tests_hidden: how many of the tests are in hidden collections, which students see only as
    passed or failed, not test by test.
    """

    tests_passed: int
    tests_total: int
    collections_passed: int
    collections_total: int
    tests_hidden: int = 0

    @property
    def counts_agree(self) -> bool:
        """Tell whether the test counts equal the collection counts (one test per collection)."""
        return (self.tests_passed, self.tests_total) == (self.collections_passed,
                                                         self.collections_total)


@dataclass(frozen=True)
class ReportView:
    """A grading report read defensively: absent or malformed fields get neutral values."""

    result: str
    message: str
    collections: tuple[CollectionView, ...]
    score: float | None
    tests_passed: int
    tests_total: int
    collections_passed: int
    collections_total: int
    timings: tuple[tuple[str, float], ...]
    engine_version: str
    mode: str
    # The course error as staff read it; as students read it (None in a report written before
    # the engine wrote one apart: students read none of it).
    course_error: str | None
    course_error_for_students: str | None

    @property
    def scored(self) -> bool:
        """Tell whether the report carries a score to show (not a course error)."""
        return self.score is not None and self.course_error is None

    @property
    def basis(self) -> ScoreBasis:
        """Return the counts of tests and collections that passed, which the score rests on."""
        hidden = sum(len(c.tests) for c in self.collections if c.hidden)
        return ScoreBasis(self.tests_passed, self.tests_total, self.collections_passed,
                          self.collections_total, min(hidden, self.tests_total))


# The ledger's reason of a run that a course error ended: the cause written for staff.
COURSE_ERROR_REASON = "course error: {detail}"


def reason_for_students(status_reason: str | None,
                        report: Mapping[str, Any] | None) -> str | None:
    """Return a run's reason as students may read it: of a course error, the cause as the engine
    words it for them (the reason itself, for staff, may quote the reference's code and hidden
    tests; a report older than those words gives None); any other reason as it is."""
    if status_reason is None or not status_reason.startswith(COURSE_ERROR_REASON.format(detail="")):
        return status_reason
    view = read_report(report)
    if view is None or not view.course_error:
        return status_reason
    shown = view.course_error_for_students
    return COURSE_ERROR_REASON.format(detail=shown) if shown else None


def read_report(report: Mapping[str, Any] | None) -> ReportView | None:
    """Read a testSummary.json dict with gradehook's section; None stays None."""
    if report is None:
        return None
    if not isinstance(report, Mapping):
        raise ReportInputError(f"a report must be a JSON object, got {type(report).__name__}")
    ours = _mapping(report.get("gradehook"))
    hidden = {str(name) for name in _list(ours.get("hidden"))}
    collections = tuple(_collection(raw, hidden) for raw in _list(report.get("tests"))
                        if isinstance(raw, Mapping))
    summary = _mapping(report.get("summary"))
    collections_total = _count(ours.get("collectionsTotal"),
                               _count(summary.get("total"), len(collections)))
    collections_passed = _count(ours.get("collectionsPassed"), _count(
        summary.get("passed"), sum(1 for c in collections if c.result == "PASSED")))
    course_error = ours.get("courseError")
    for_students = ours.get("courseErrorForStudents")
    return ReportView(
        result=_result(report.get("result")),
        message=_text(report.get("resultMessage")),
        collections=collections,
        score=_score(ours, collections_passed, collections_total),
        tests_passed=_count(ours.get("testsPassed"),
                            sum(c.passed_count for c in collections)),
        tests_total=_count(ours.get("testsTotal"), sum(len(c.tests) for c in collections)),
        collections_passed=collections_passed,
        collections_total=collections_total,
        timings=tuple((str(phase), float(seconds))
                      for phase, seconds in _mapping(ours.get("timings")).items()
                      if _is_number(seconds)),
        engine_version=_text(ours.get("engineVersion")),
        mode=_text(ours.get("mode")),
        course_error=str(course_error) if course_error else None,
        course_error_for_students=str(for_students) if course_error and for_students else None,
    )


def _collection(raw: Mapping[str, Any], hidden: set[str]) -> CollectionView:
    name = _text(raw.get("name"))
    collection_crash = _crash(raw)
    collection_shadowed = _shadowed(_mapping(_mapping(raw.get("debug")).get("traceback")))
    return CollectionView(
        name=name, type=_text(raw.get("type")), result=_result(raw.get("result")),
        message=_text(raw.get("resultMessage")),
        tests=tuple(_test(t, collection_crash, collection_shadowed)
                    for t in _list(raw.get("tests")) if isinstance(t, Mapping)),
        hidden=name in hidden, status=_text(raw.get("status")))


def _test(raw: Mapping[str, Any], collection_crash: CrashFrame | None,
          collection_shadowed: ShadowedModule | None) -> TestView:
    debug = _mapping(raw.get("debug"))
    raised = _mapping(debug.get("raised"))
    return TestView(name=_text(raw.get("name")), result=_result(raw.get("result")),
                    message=_text(raw.get("resultMessage")), details=_text(raw.get("details")),
                    crash=_crash(raw) or collection_crash,
                    expected_excerpt=_optional_text(debug.get("expected")),
                    actual_excerpt=_optional_text(debug.get("actual")),
                    raised=_optional_text(raised.get("error")),
                    raised_at=_frame(raised, "file"),
                    exited_at=_frame(_mapping(debug.get("exited")), "file"),
                    shadowed=_shadowed(debug) or collection_shadowed)


def _shadowed(debug: Mapping[str, Any]) -> ShadowedModule | None:
    """Read a debug's `shadowed` module: a name and two flags, else None."""
    shadowed = _mapping(debug.get("shadowed"))
    module, folder, standard = (shadowed.get(key) for key in ("module", "folder", "standard"))
    if not isinstance(module, str) or not module.isidentifier() \
            or not isinstance(folder, bool) or not isinstance(standard, bool):
        return None
    return ShadowedModule(module, folder, standard)


def _crash(raw: Mapping[str, Any]) -> CrashFrame | None:
    """Read `debug.traceback` (spec §7, and gradehook's `raised`): a frame with a line number,
    else None; the innermost frame of the student's files (`solutionFrame`) when the last one is
    a library's."""
    traceback = _mapping(_mapping(raw.get("debug")).get("traceback"))
    frame = _frame(_mapping(traceback.get("solutionFrame")), "filename") \
        or _frame(traceback, "filename")
    if frame is None:
        return None
    return replace(frame, raised=_optional_text(traceback.get("raised")))


def _frame(frame: Mapping[str, Any], file_key: str) -> CrashFrame | None:
    """Read a frame's file (under file_key), line number and line; None without a line number."""
    lineno = frame.get("lineno")
    if not isinstance(lineno, int) or isinstance(lineno, bool) or lineno < 1:
        return None
    return CrashFrame(filename=_text(frame.get(file_key)), lineno=lineno,
                      line=_text(frame.get("line")))


def _score(ours: Mapping[str, Any], passed: int, total: int) -> float | None:
    """Use gradehook's score (None or malformed: no score), else passed/total (spec §8)."""
    if "score" in ours:
        given = ours["score"]
        return float(given) if _is_number(given) and 0.0 <= given <= 1.0 else None
    if total > 0 and 0 <= passed <= total:
        return passed / total
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _count(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) \
        and value >= 0 else default


def _result(value: Any) -> str:
    return value if value in RESULTS else "FAILED"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
