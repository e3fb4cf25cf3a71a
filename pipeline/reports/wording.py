"""Every sentence students and staff read in gradehook's reports, and how numbers are worded."""

from __future__ import annotations

from pipeline.reports.model import ReportView, RunSummary, ScoreBasis

# How each run status reads, with the icon the comment and the page put in front of it.
STATUS_ICONS = {"queued": "⏳", "running": "🔄", "passed": "✅", "failed": "❌",
                "error": "⚠️", "superseded": "⏭️", "cancelled": "🚫"}
RESULT_ICONS = {"PASSED": "✅", "FAILED": "❌", "SKIPPED": "⏭️"}
RESULT_WORDS = {"PASSED": "passed", "FAILED": "failed", "SKIPPED": "skipped"}

QUEUED_TEXT = "Waiting to be graded"
RUNNING_TEXT = "Grading in progress"
SUPERSEDED_TEXT = "Not graded: a newer push to this branch replaced this commit"
CANCELLED_TEXT = "Grading was cancelled"
ERROR_TEXT = "Not graded: gradehook ran into a problem"
COURSE_ERROR_TEXT = "Not graded: the course's tests for this assignment have a problem"
REASON_LINES_SEPARATOR = "; "
# The score is the fraction of collections that passed (spec/codeability.md §8). Its basis names
# the tests, and first the collections when their counts differ from the tests'.
GRADED_TEXT = "{basis}, score {percent}"
GRADED_BY_COLLECTIONS_TEXT = "Score {percent} ({basis})"
TESTS_BASIS = "{passed}/{total} {tests} passed"
# The tests of hidden collections, counted among the tests but not listed one by one.
SOME_HIDDEN = ", {hidden} of the {total} hidden"
ALL_HIDDEN = ", all hidden"
COLLECTIONS_BASIS = "{passed} of {total} {collections} passed, {tests}"
# A counted noun: the first when the count is one, else the second.
TEST_NOUNS = ("test", "tests")
COLLECTION_NOUNS = ("collection", "collections")
NO_TESTS_TEXT = "No tests were run, score {percent}"

ERROR_EXPLANATION = ("This is a problem on gradehook's side, not in your code, and no score was "
                     "recorded. Push again later; if it keeps happening, tell your course staff.")
COURSE_ERROR_EXPLANATION = ("The course's tests for this assignment could not run, so your "
                            "work was not graded and no score was recorded. This is not a "
                            "problem in your code; your course staff can see the cause.")
SUPERSEDED_EXPLANATION = "Only the newest commit of a branch is graded."
HIDDEN_NOTE = "Tests marked hidden show only whether they passed."
PENDING_EXPLANATION = "Results appear here when grading is done."

COMMENT_TITLE = "gradehook results"
COMMENT_ASSIGNMENT_HEADING = "Assignment"
COMMENT_RESULT_HEADING = "Result"
COMMENT_COMMIT_LINE = "Commit {sha} on {ref}"
FULL_REPORT_LINK = "Full report"
COLLECTION_HEADERS = ("", "Collection", "Type", "Tests passed")
EXPECTED_LABEL, ACTUAL_LABEL, MESSAGE_LABEL, DETAILS_LABEL = (
    "Expected", "Actual", "Message", "Details")
FAILURE_HEADERS = ("", "Test", EXPECTED_LABEL, ACTUAL_LABEL, MESSAGE_LABEL)
FAILURES_HEADING = "Tests that did not pass"
# One entry for the tests of a collection whose run failed them all alike (a crash, a timeout).
ALL_TESTS = "all {count} tests"
# What a value failed on, named before the value: "length 3: [1, 2, 3]".
PROPERTY_LABELS = {"type": "type {value}", "len": "length {value}", "shape": "shape {value}"}
# What did not pass when a value's type, length or shape differs (CodeAbility's "incorrect len").
PROPERTY_PROBLEMS = {"type": "incorrect type", "len": "incorrect length",
                     "shape": "incorrect shape"}
LABELLED_VALUE = "{label}: {value}"
CRASH_LABEL = "Crashed at"
CRASH_PLACE = "line {lineno}"
CRASH_PLACE_IN_FILE = "{file}, line {lineno}"
CRASH_LOCATION = "{place}: {code}"
CRASH_IN_MESSAGE = "at {place}"
# Where a program that ran past its time limit was stopped, worded as the crash's place.
STOPPED_LABEL = "Stopped at"
STOPPED_IN_MESSAGE = "stopped at {place}"
# Where a program ended with sys.exit(0) before a name the tests look up was defined (a normal
# completion, so the test only says the name was not found).
EXITED_LABEL = "Exited at"
EXITED_IN_MESSAGE = "The program exited at {place}"
# A program that raised: the exception as Python's traceback ends with it.
PROGRAM_RAISED = "{entry} raised {raised}"
# What the sandbox had to do with a failure, where its report tells it for sure.
EXPLANATION_LABEL = "Why"
CRASH_SIGNAL_EXPLANATION = "The program crashed ({description}, signal {name})."
PROCESS_LIMIT_EXPLANATION = ("Programs cannot run more than {count} processes (threads included) "
                             "at once while they are graded.")
NO_NETWORK_EXPLANATION = "Programs have no network access while they are graded."
# The sandbox stopped a program at its memory limit, or at the output stop: it names no line, as
# the program was stopped from outside, wherever it was. At most 200 characters, as the comment's
# cell shows them.
MEMORY_LIMIT_EXPLANATION = ("Programs may use at most {size} of memory while they are graded: "
                            "yours needed more and was stopped, at a line gradehook cannot name. "
                            "Look for an endless loop that adds to a list or string.")
OUTPUT_FLOOD_EXPLANATION = ("Your program {what} more than {size}, far more than any test needs, "
                            "and was stopped, at a line gradehook cannot name. Look for {call} in "
                            "a loop that never ends.")
OUTPUT_FLOOD_CALLS = {"printed": "a print()", "logged": "a logging call"}
# A structural test's file that Python's tokenizer reached the end of inside a bracket or a
# triple-quoted string: its error names the file's end, not where the bracket or string opened.
UNCLOSED_SOURCE_EXPLANATION = ("Your file could not be read as Python: it ends inside a bracket, "
                               "or a triple-quoted string, that is never closed, so its words "
                               "could not be counted. Look for the one left open.")
# A test calling a function of the student's got None where a value of another type was expected.
NONE_RETURNED_EXPLANATION = ("The function returned None, which is what a function without a "
                             "return statement gives: one that prints its result rather than "
                             "returning it, say.")
# A module of the student's folder that Python passed over for another of its name.
SHADOWED_EXPLANATION = ("Your {own} has the name of {other}, which was imported instead of "
                        "yours: rename your {kind} (and your imports).")
SHADOWED_OWN = {False: "{module}.py", True: "{module} folder"}
SHADOWED_KIND = {False: "file", True: "folder"}
SHADOWED_OTHER = {True: "a Python standard module",
                  False: "a module installed with the grader"}
PASSED_SUMMARY = "Passed tests ({count})"
DETAILS_SUMMARY = "Details: {name}"
MORE_FAILURES = "…and {count} more {tests} that did not pass: see the full report."
MORE_PASSED = "…and {count} more."
MORE_DETAILS = "More details for the other tests are in the full report."
NOT_LISTED = "This comment has no room to list them: see the full report."
HIDDEN_CELL = "hidden"
EMPTY_VALUE = "(empty)"
# A line break inside a value shown on one line: as Python writes it in the quoted strings that
# most values are, so every value in a table reads alike, in any font.
LINE_BREAK_SIGN = "\\n"
SHORTENED_NOTE = "This comment was shortened; the full report has every test."

PAGE_TITLE = "{assignment} · {project} · gradehook"
PAGE_META_LABELS = {"project": "Project", "ref": "Branch", "commit": "Commit", "run": "Run"}
PAGE_COLLECTIONS_HEADING = "Collections"
PAGE_COLLECTION_HEADERS = ("Result", "Collection", "Type", "Tests passed", "Message")
PAGE_TIMINGS_HEADING = "Timings"
PAGE_STAGE_HEADERS = ("Stage", "At (UTC)", "After the previous stage")
PAGE_STEP_HEADERS = ("Grading step", "Seconds")
PAGE_STAGE_NAMES = {"received": "Received", "queued": "Queued", "started": "Started",
                    "cloned": "Repository ready", "tested": "Tests finished",
                    "finished": "Finished"}
# The engine's steps (gradehook section's timings) as students read them, in the order they run;
# others show as named, after them. The program's and the reference's times add up their runs,
# several of which run at once: together they may take longer than the grading.
PAGE_STEP_NAMES = {"load": "Reading the tests", "stage": "Preparing the files",
                   "grading": "Running the tests",
                   "studentSandbox": "Your program's runs, added up",
                   "referenceSandbox": "The reference solution's runs, added up",
                   "total": "In all"}
PAGE_ENGINE_LINE = "Engine {version}, mode {mode}"

BADGE_LABEL = "grade"
BADGE_NO_RESULT = "no result"
BADGE_NOT_GRADED = "not graded"
BADGE_UNAVAILABLE = "unavailable"


def format_percent(fraction: float) -> str:
    """Word a 0..1 fraction as a whole percent that is 100 % or 0 % only when exact."""
    percent = round(fraction * 100)
    if percent == 100 and fraction < 1:
        percent = 99
    elif percent == 0 and fraction > 0:
        percent = 1
    return f"{percent}%"


def outcome_text(run: RunSummary, report: ReportView | None) -> str:
    """Return the one-line outcome of a run: the score, or why there is none."""
    if run.status == "queued":
        return QUEUED_TEXT
    if run.status == "running":
        return RUNNING_TEXT
    if run.status == "superseded":
        return SUPERSEDED_TEXT
    if run.status == "cancelled":
        return _with_reason(CANCELLED_TEXT, run.status_reason)
    if report is not None and report.course_error:
        return _with_reason(COURSE_ERROR_TEXT, report.course_error_for_students)
    if run.status == "error" or report is None or report.score is None:
        return _with_reason(ERROR_TEXT, run.status_reason)
    percent = format_percent(report.score)
    if report.tests_total == 0:
        return NO_TESTS_TEXT.format(percent=percent)
    basis = report.basis
    template = GRADED_TEXT if basis.counts_agree else GRADED_BY_COLLECTIONS_TEXT
    return template.format(basis=score_basis_text(basis), percent=percent)


def score_basis_text(basis: ScoreBasis) -> str:
    """Word what a score rests on: the tests passed, and how many of them are hidden, after the
    collections when counts differ."""
    tests = TESTS_BASIS.format(passed=basis.tests_passed, total=basis.tests_total,
                               tests=counted(basis.tests_total, TEST_NOUNS))
    if basis.tests_hidden:
        tests += ALL_HIDDEN if basis.tests_hidden == basis.tests_total \
            else SOME_HIDDEN.format(hidden=basis.tests_hidden, total=basis.tests_total)
    if basis.counts_agree:
        return tests
    return COLLECTIONS_BASIS.format(
        passed=basis.collections_passed, total=basis.collections_total,
        collections=counted(basis.collections_total, COLLECTION_NOUNS), tests=tests)


def counted(count: int, nouns: tuple[str, str]) -> str:
    """Return the noun that goes with a count: `1 test`, `0 tests`, `2 tests`."""
    return nouns[0] if count == 1 else nouns[1]


def explanation_text(run: RunSummary, report: ReportView | None) -> str:
    """Return the plain-language sentence that goes under an outcome, if one is needed."""
    if report is not None and report.course_error and run.status not in (
            "queued", "running", "superseded", "cancelled"):
        return COURSE_ERROR_EXPLANATION
    return {"error": ERROR_EXPLANATION, "superseded": SUPERSEDED_EXPLANATION,
            "queued": PENDING_EXPLANATION, "running": PENDING_EXPLANATION}.get(run.status, "")


def is_scored(run: RunSummary, report: ReportView | None) -> bool:
    """Tell whether a run ended with a score to show (never for errors or course errors)."""
    return run.status in ("passed", "failed") and report is not None and report.scored


def _with_reason(text: str, reason: str | None) -> str:
    """Append a reason on the same line; a reason of several lines (each of a test.yaml's
    problems) reads as one list, its lines separated by semicolons."""
    lines = [" ".join(line.split()) for line in (reason or "").splitlines()]
    reason = REASON_LINES_SEPARATOR.join(line for line in lines if line)
    return f"{text}: {reason}" if reason else text
