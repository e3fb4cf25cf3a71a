"""A report as readable text for staff at a terminal: a table per collection, failures shown."""

from __future__ import annotations

from pipeline.grading.checks import ACTUAL_EXCERPT, EXITED, EXPECTED_EXCERPT, RAISED, TRACEBACK, \
    raised_place
from pipeline.grading.report import (CRASHED, PASSED, TIMEDOUT, CollectionReport, Report,
                                     TestCaseReport)
from pipeline.reports.model import read_report
from pipeline.reports.wording import score_basis_text

# What the score rests on is worded as in the students' score line: the tests passed, how many of
# them are hidden, after the collections when their counts differ.
HEADER = "{name}: {result} ({basis}, score {score})"
COURSE_ERROR = "Course error (the assignment cannot be graded):\n{message}"
AS_THEY_RAN = "The tests as they ran, not scored:"
COLLECTION_LINE = "[{result}] {name} ({type}, {status}) {passed}/{total} tests passed{hidden}"
STATUS_LINE = "    run: {message}"
HIDDEN_MARK = " [hidden from students]"
# The values a failed test compared, aligned under each other so that their difference shows.
EXCERPT_LABELS = ((EXPECTED_EXCERPT, "    expected: "), (ACTUAL_EXCERPT, "    actual:   "))
# What evaluating a test's name raised in the student's namespace, and where in their files.
RAISED_LINE = "    raised:   {error}"
# Where in the student's files their program ended with sys.exit(0) before a name was looked up.
EXITED_LINE = "    the program exited at {file}, line {lineno}: {line}"
# Where in the student's files their run, or a test's name or expression, was when its timeout
# stopped it.
STOPPED_AT = "stopped at {file}, line {lineno}: {line}"
TEST_STOPPED_LINE = "    " + STOPPED_AT
# What the student's program raised, and the innermost line of their files it passed through.
CRASHED_WITH = "raised {raised}"
# A run that ended with sys.exit() and a code other than 0: it raised nothing to name.
EXITED_RUN = "exited"
CRASHED_AT = " at {file}, line {lineno}: {line}"
RESULT_WIDTH = 7


def render_text(report: Report) -> str:
    """Return the report as text: a header, then one block per collection; for a course error,
    the error, then the collections as they ran where they did (each test the reference gave no
    expected value for shows why)."""
    if report.course_error is not None:
        lines = [COURSE_ERROR.format(message=report.course_error)]
        if report.tests:
            lines += ["", AS_THEY_RAN]
        return "\n".join(lines + _collection_lines(report))
    section = report.gradehook
    lines = [HEADER.format(name=report.name, result=report.result,
                           basis=score_basis_text(read_report(report.to_dict()).basis),
                           score=f"{section.score:.2f}")]
    if report.result_message:
        lines.append(report.result_message)
    return "\n".join(lines + _collection_lines(report))


def _collection_lines(report: Report) -> list[str]:
    """Return one block per collection: its line, then each test's, failures shown."""
    lines: list[str] = []
    hidden = set(report.gradehook.hidden)
    for collection in report.tests:
        lines.append("")
        lines.append(COLLECTION_LINE.format(
            result=collection.result, name=collection.name, type=collection.type,
            status=collection.status, passed=collection.summary.passed,
            total=collection.summary.total,
            hidden=HIDDEN_MARK if collection.name in hidden else ""))
        width = max((len(test.name) for test in collection.tests), default=0)
        for test in collection.tests:
            line = f"  {test.result:<{RESULT_WIDTH}} {test.name:<{width}}  "
            details = test.details.splitlines() if test.result != PASSED and test.details else []
            # Further lines of details (pytest's explanation of an assertion) stand under the
            # first.
            lines += [(line + details[0]).rstrip()] if details else [line.rstrip()]
            lines += [" " * len(line) + further for further in details[1:]]
            lines += _excerpt_lines(test) + _raised_lines(test) + _exited_lines(test) \
                + _test_stopped_lines(test)
        lines += _stopped_lines(collection) + _crashed_lines(collection)
        message = (collection.debug or {}).get("referenceMessage")
        if message:
            lines.append(STATUS_LINE.format(message=f"reference: {message}"))
    return lines


def _excerpt_lines(test: TestCaseReport) -> list[str]:
    """Return the excerpts of the values a failed test compared, if its debug holds them."""
    debug = test.debug or {}
    return [label + debug[key].replace("\n", "\n" + " " * len(label))
            for key, label in EXCERPT_LABELS if key in debug]


def _raised_lines(test: TestCaseReport) -> list[str]:
    """Return what evaluating a test's name raised, if its debug holds it."""
    raised = (test.debug or {}).get(RAISED)
    if raised is None:
        return []
    return [RAISED_LINE.format(error=raised["error"]) + raised_place(raised)]


def _exited_lines(test: TestCaseReport) -> list[str]:
    """Return where the student's program ended with sys.exit(0), if the test's debug says."""
    exited = (test.debug or {}).get(EXITED)
    if exited is None:
        return []
    return [EXITED_LINE.format(file=exited["file"], lineno=exited["lineno"],
                               line=exited["line"] or "")]


def _test_stopped_lines(test: TestCaseReport) -> list[str]:
    """Return where the student's code was when the time limit stopped a test's name or
    expression, if the test's debug says."""
    frame = (test.debug or {}).get(TRACEBACK) or {}
    if not frame.get("lineno"):
        return []
    return [TEST_STOPPED_LINE.format(file=frame.get("filename") or "", lineno=frame["lineno"],
                                     line=frame.get("line") or "")]


def _stopped_lines(collection: CollectionReport) -> list[str]:
    """Return where the student's run was stopped at its timeout, if its debug says."""
    frame = (collection.debug or {}).get("traceback") or {}
    if collection.status != TIMEDOUT or not frame.get("lineno"):
        return []
    return [STATUS_LINE.format(message=STOPPED_AT.format(
        file=frame.get("filename") or "", lineno=frame["lineno"], line=frame.get("line") or ""))]


def _crashed_lines(collection: CollectionReport) -> list[str]:
    """Return what the student's run raised and where, if it crashed with an exception (the
    original's message leaves out the exception's type), or where it exited with a code."""
    frame = (collection.debug or {}).get("traceback") or {}
    place = frame.get("solutionFrame") or frame
    if collection.status != CRASHED or not (frame.get("raised") or place.get("lineno")):
        return []
    where = CRASHED_AT.format(file=place.get("filename") or "", lineno=place["lineno"],
                              line=place.get("line") or "") if place.get("lineno") else ""
    what = CRASHED_WITH.format(raised=frame["raised"]) if frame.get("raised") else EXITED_RUN
    return [STATUS_LINE.format(message=what + where)]
