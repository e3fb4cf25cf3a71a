"""Turn a failed test's `details` into what a student needs, and list what did not pass."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Sequence

from pipeline.reports.model import CollectionView, CrashFrame, TestView
from pipeline.reports.wording import (ALL_TESTS, CRASH_IN_MESSAGE, CRASH_LABEL, CRASH_LOCATION,
                                      CRASH_PLACE, CRASH_PLACE_IN_FILE, CRASH_SIGNAL_EXPLANATION,
                                      EXITED_IN_MESSAGE, EXITED_LABEL, LABELLED_VALUE,
                                      MEMORY_LIMIT_EXPLANATION, NO_NETWORK_EXPLANATION,
                                      NONE_RETURNED_EXPLANATION, OUTPUT_FLOOD_CALLS,
                                      OUTPUT_FLOOD_EXPLANATION, PROCESS_LIMIT_EXPLANATION,
                                      PROGRAM_RAISED, PROPERTY_LABELS,
                                      PROPERTY_PROBLEMS, SHADOWED_EXPLANATION, SHADOWED_KIND,
                                      SHADOWED_OTHER, SHADOWED_OWN, STOPPED_IN_MESSAGE,
                                      STOPPED_LABEL, UNCLOSED_SOURCE_EXPLANATION)

# CodeAbility's message shapes (spec/codeability.md §7 "details").
_DETAIL_PREFIX = re.compile(r"^E {3}")
# `Variable `name` has incorrect value (`actual` instead of `expected`)` and `Variable `name` has
# incorrect len, expected: 2, obtained 3`: names and values may hold these very phrases (a
# student's value or exception message can be any text), so each part is as long as it can be.
_VARIABLE = "AssertionError: Variable `"
_INCORRECT_VALUE = "incorrect value"
_INCORRECT_VALUE_PHRASES = (f"` has {_INCORRECT_VALUE} (`", "` instead of `")
_INCORRECT_VALUE_END = "`)"
_PROPERTIES = ("type", "len", "shape")
_INCORRECT_PROPERTY = "incorrect {property}"
_INCORRECT_PROPERTY_PHRASES = (f"` has {_INCORRECT_PROPERTY}, expected: ", ", obtained ")
_CLASS = re.compile(r"^<class '(?P<name>.+)'>$")
# A value of the wrong type that is None, where the test's name is a call of a function.
_NONE_OBTAINED = re.compile(r"has incorrect type, expected: <class '[^']+'>, obtained "
                            r"<class 'NoneType'>$")
# The student's program raised (spec §3.2); its run's debug.traceback says where.
_EXECUTION_FAILED = re.compile(r"^Failed: Execution of (?P<entry>.+?) failed, ERROR: ")
# The student's program ran past its timeout (spec §3.2); its run's debug.traceback says where
# it was stopped, its file named relative to the student's folder.
_TIMED_OUT = re.compile(r"^Failed: Maximum execution time of \S+ seconds exceeded$")
# A collection's run that did not complete (crashed, timed out, exited, read input, ran out of
# memory, failed to set up, was skipped) fails or skips every test with its message (spec §3.2's
# gate: `Failed: <message>`); a report without a status shows it by that message alone.
_RUN_COMPLETED = ("", "COMPLETED")
_RUN_FAILED = re.compile(r"^Failed: ")
# What the sandbox reports of a run it stopped (pipeline/grading/execution.py's KILLED_BY_SIGNAL
# and KILLED_REASONS): a signal that only a crash sends, the process limit and the memory limit;
# and of a run, a test's name or expression, or a pytest test the output stop stopped
# (execution.py's PRINTED_WITHOUT_END and LOOKUP_PRINTED_WITHOUT_END, pytest_mode.py's
# LOGGED_WITHOUT_END).
_CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT")
_KILLED_BY_CRASH_SIGNAL = re.compile(
    rf"ERROR: process was killed by signal (?P<name>{'|'.join(_CRASH_SIGNALS)})$")
_PROCESS_LIMIT = re.compile(r"ERROR: process limit of (?P<count>\d+) exceeded$")
_MEMORY_LIMIT = re.compile(r"ERROR: memory limit of (?P<size>\d+ MB) exceeded$")
_OUTPUT_FLOOD = re.compile(r"(?:^|ERROR: |Failed: )the program (?P<what>printed|logged) more than "
                           r"(?P<size>\S+ (?:MB|KB|bytes))(?: while evaluating `.+`)? and was "
                           r"stopped, likely in an endless loop$")
# What looking up a host name, and connecting to an address, raise in a sandbox without network.
_NO_NETWORK = re.compile(r"\[Errno (-3\] Temporary failure in name resolution|101\] Network is "
                         r"unreachable)")
# What a structural test's count of a file's tokens fails with when the file ends inside a bracket
# (or a line continued) or a triple-quoted string (Python's tokenize).
_UNCLOSED_SOURCE = re.compile(r"^tokenize\.TokenError: \('EOF in multi-line (statement|string)'")
# A run (or a test file's import) that the student's program ended with sys.exit() and a code
# other than 0, or with os._exit() (pipeline/grading/runner.py's EXITED_WITH and
# OS_EXITED_WITH): it exited there, raising nothing.
_EXITED_WITH = re.compile(
    r"(?:^|ERROR: |failed: )program exited with (?:sys\.exit|os\._exit)\(.*\)$")
# What a place in the student's files is called on its own, and how it follows a message, by
# what the program did there: raised, was stopped at its time limit, ended with sys.exit(0)
# (the test only misses a name), ended the run with an exit (the message says how).
_PLACE_WORDING = {"raised": (CRASH_LABEL, CRASH_IN_MESSAGE),
                  "stopped": (STOPPED_LABEL, STOPPED_IN_MESSAGE),
                  "exited": (EXITED_LABEL, EXITED_IN_MESSAGE),
                  "ended": (EXITED_LABEL, CRASH_IN_MESSAGE)}


@dataclass(frozen=True)
class CrashLocation:
    """Where in the student's files a program raised, was stopped at its time limit, ended
    with sys.exit(0) or ended its run with an exit (`kind`: raised, stopped, exited, ended):
    "line 5" or "helper.py, line 2", the code."""

    place: str
    code: str
    kind: str = "raised"

    @property
    def text(self) -> str:
        """Return the location as one plain line, e.g. `line 5: print(greetin)`."""
        return CRASH_LOCATION.format(place=self.place, code=self.code) if self.code \
            else self.place

    @property
    def label(self) -> str:
        """Return what the location is called on its own: "Crashed at", "Stopped at"..."""
        return _PLACE_WORDING[self.kind][0]

    @property
    def in_message(self) -> str:
        """Return how the place follows a message: "at line 5", "stopped at line 5"..."""
        return _PLACE_WORDING[self.kind][1].format(place=self.place)


@dataclass(frozen=True)
class FailureView:
    """A not-passed test explained: what was wrong, the two values if known, further lines.

    The values are the engine's excerpts where the report has them, labelled with the property
    that differs ("length 3: [1, 2, 3]"). `crash` is where the student's program raised, or was
    stopped at its time limit, when that is why the test did not pass; `explanation` what the
    sandbox had to do with it; `exited` where the program ended with sys.exit(0) before a name
    not found was looked up.
    """

    problem: str
    expected: str | None
    actual: str | None
    more: str
    crash: CrashLocation | None = None
    explanation: str | None = None
    exited: CrashLocation | None = None


@dataclass(frozen=True)
class ListedFailure:
    """A test that did not pass, or all of a collection's tests when its run failed them alike:
    then `test` is the first of them and `count` says how many there are."""

    collection: CollectionView
    test: TestView
    count: int = 1

    @property
    def name(self) -> str:
        """Return what the entry is called: the test's name, or "all 20 tests"."""
        return ALL_TESTS.format(count=self.count) if self.count > 1 else self.test.name


def listed_failures(collections: Sequence[CollectionView]) -> list[ListedFailure]:
    """List the tests that did not pass, one entry per collection whose run failed them all."""
    listed: list[ListedFailure] = []
    for collection in collections:
        if _run_failed_all(collection):
            listed.append(ListedFailure(collection, collection.tests[0], len(collection.tests)))
        else:
            listed += [ListedFailure(collection, test) for test in collection.tests
                       if test.result != "PASSED"]
    return listed


def _run_failed_all(collection: CollectionView) -> bool:
    """Tell whether the collection's run failed (or skipped) its tests, all with one message."""
    outcomes = {(test.result, test.message, test.details) for test in collection.tests}
    if len(collection.tests) < 2 or len(outcomes) > 1 or collection.tests[0].result == "PASSED":
        return False
    problem = describe_failure(collection.tests[0]).problem
    return bool(problem) and (collection.status not in _RUN_COMPLETED
                              or _RUN_FAILED.match(problem) is not None)


def describe_failure(test: TestView) -> FailureView:
    """Explain why a test did not pass, from its details and resultMessage, with what the
    sandbox's limits had to do with it and where the program exited."""
    failure = _described(test)
    return replace(failure, explanation=_explanation(test, failure.problem),
                   exited=_place_in_files(test.exited_at, "exited"))


def _explanation(test: TestView, problem: str) -> str | None:
    """Say in plain words what a crash signal, the process or memory limit, the output stop or
    the missing network did, and what to look for, when the problem shows it for sure (a
    program's own exception is not the sandbox's word),
    that Python imported another module in place of the student's, that a function a test
    called returned None where a value of another type was expected (it prints, say), or that a
    file whose tokens a test counts is left inside a bracket or string."""
    shadowed = test.shadowed
    if shadowed is not None:
        return SHADOWED_EXPLANATION.format(
            own=SHADOWED_OWN[shadowed.folder].format(module=shadowed.module),
            other=SHADOWED_OTHER[shadowed.standard], kind=SHADOWED_KIND[shadowed.folder])
    if _NO_NETWORK.search(problem):
        return NO_NETWORK_EXPLANATION
    if _UNCLOSED_SOURCE.match(problem):
        return UNCLOSED_SOURCE_EXPLANATION
    if test.name.rstrip().endswith(")") and _NONE_OBTAINED.search(test.details.split("\n")[0]):
        return NONE_RETURNED_EXPLANATION
    if test.raised is not None or (test.crash is not None and test.crash.raised):
        return None
    killed = _KILLED_BY_CRASH_SIGNAL.search(problem)
    if killed:
        name = killed["name"]
        description = signal.strsignal(signal.Signals[name])
        return CRASH_SIGNAL_EXPLANATION.format(description=description[:1].lower()
                                               + description[1:], name=name)
    limit = _PROCESS_LIMIT.search(problem)
    if limit:
        return PROCESS_LIMIT_EXPLANATION.format(count=limit["count"])
    memory = _MEMORY_LIMIT.search(problem)
    if memory:
        return MEMORY_LIMIT_EXPLANATION.format(size=memory["size"])
    flood = _OUTPUT_FLOOD.search(problem)
    if flood:
        return OUTPUT_FLOOD_EXPLANATION.format(what=flood["what"], size=flood["size"],
                                               call=OUTPUT_FLOOD_CALLS[flood["what"]])
    return None


def _described(test: TestView) -> FailureView:
    """Explain why a test did not pass, from its details and resultMessage.

    The engine's assertion messages quote the values, which may span lines (printed output),
    so the whole message is matched first; other details are read as a first line and further
    lines.
    """
    details = test.details.strip("\n")
    if test.raised is not None:
        return FailureView(problem=test.raised, expected=None, actual=None, more="",
                           crash=_place_in_files(test.raised_at, _raised_or_ended(test.raised)))
    whole = _values_failure(_DETAIL_PREFIX.sub("", details).strip(), test, more="")
    if whole is not None:
        return whole
    lines = details.splitlines()
    first = _DETAIL_PREFIX.sub("", lines[0]).strip() if lines else ""
    more = "\n".join(lines[1:]).strip("\n")
    by_first_line = _values_failure(first, test, more=more)
    if by_first_line is not None:
        return by_first_line
    execution_failed = _EXECUTION_FAILED.match(first)
    crash = None
    problem = first or test.message
    if execution_failed and test.crash:
        crash = _crash_location(test.crash, execution_failed["entry"],
                                "raised" if test.crash.raised else _raised_or_ended(first))
        if test.crash.raised:
            # The original's message leaves out the exception's type, which the report keeps;
            # its further lines are the details' too.
            problem = PROGRAM_RAISED.format(entry=execution_failed["entry"],
                                            raised=test.crash.raised.splitlines()[0])
    elif _TIMED_OUT.match(first):
        crash = _place_in_files(test.crash, "stopped")
    return FailureView(problem=problem, expected=test.expected_excerpt,
                       actual=test.actual_excerpt, more=more, crash=crash)


def _raised_or_ended(problem: str) -> str:
    """Return what the program did at the place a failure names: ended its run with an exit, if
    the problem says so, else raised."""
    return "ended" if _EXITED_WITH.search(problem) else "raised"


def _values_failure(message: str, test: TestView, more: str) -> FailureView | None:
    """Read an incorrect value, type, length or shape from an assertion message, if it is one."""
    if not message.startswith(_VARIABLE):
        return None
    variable = message[len(_VARIABLE):]
    if variable.endswith(_INCORRECT_VALUE_END):
        parts = _longest_parts(variable[:-len(_INCORRECT_VALUE_END)], _INCORRECT_VALUE_PHRASES)
        if parts is not None:
            _, actual, expected = parts
            return FailureView(problem=_INCORRECT_VALUE, more=more,
                               expected=test.expected_excerpt or expected,
                               actual=test.actual_excerpt or actual)
    incorrect = _incorrect_property(variable)
    if incorrect is None:
        return None
    checked, expected, actual = incorrect
    return FailureView(problem=PROPERTY_PROBLEMS[checked], more=more,
                       expected=_labelled(checked, expected, test.expected_excerpt),
                       actual=_labelled(checked, actual, test.actual_excerpt))


def _incorrect_property(variable: str) -> tuple[str, str, str] | None:
    """Return the property, expected and obtained of "x` has incorrect len, expected: 2, obtained
    3"; of several properties named, the last, as the name is as long as it can be."""
    readings = []
    for checked in _PROPERTIES:
        phrases = [phrase.format(property=checked) for phrase in _INCORRECT_PROPERTY_PHRASES]
        parts = _longest_parts(variable, phrases)
        if parts is not None:
            readings.append((len(parts[0]), checked, parts[1], parts[2]))
    if not readings:
        return None
    _, checked, expected, actual = max(readings)
    return checked, expected, actual


def _longest_parts(text: str, phrases: Sequence[str]) -> list[str] | None:
    """Split text around the phrases in order, each part as long as it can be (as `(.*)` between
    them in a regular expression would take it), or None when they do not all occur in order.

    Found from the right in one pass: a backtracking expression takes cubic time on a text
    that repeats the phrases.
    """
    parts: list[str] = []
    for phrase in reversed(phrases):
        at = text.rfind(phrase)
        if at < 0:
            return None
        parts.insert(0, text[at + len(phrase):])
        text = text[:at]
    return [text] + parts


def _labelled(checked: str, shown: str, excerpt: str | None) -> str:
    """Name the property a value failed on, e.g. `length 3` or `type list`, before its excerpt."""
    if checked == "type":
        shown = _CLASS.sub(r"\g<name>", shown)
    label = PROPERTY_LABELS[checked].format(value=shown)
    return LABELLED_VALUE.format(label=label, value=excerpt) if excerpt else label


def _place_in_files(frame: CrashFrame | None, kind: str = "raised") -> CrashLocation | None:
    """Place a frame whose file is named relative to the student's folder (where a test's
    expression raised, a run was stopped or a program exited) as `helper.py, line 2`."""
    if frame is None:
        return None
    return CrashLocation(place=CRASH_PLACE_IN_FILE.format(file=frame.filename,
                                                          lineno=frame.lineno),
                         code=frame.line.strip(), kind=kind)


def _crash_location(frame: CrashFrame, entry: str, kind: str) -> CrashLocation | None:
    """Place a crash frame (where the program raised, or ended its run with an exit) among the
    student's files; None when it lies outside them.

    The entry point's folder holds the student's files; a frame elsewhere is a library's.
    """
    entry_path, frame_path = PurePosixPath(entry), PurePosixPath(frame.filename)
    if frame_path == entry_path:
        place = CRASH_PLACE.format(lineno=frame.lineno)
    elif frame_path.is_relative_to(entry_path.parent):
        place = CRASH_PLACE_IN_FILE.format(file=frame_path.relative_to(entry_path.parent),
                                           lineno=frame.lineno)
    else:
        return None
    return CrashLocation(place=place, code=frame.line.strip(), kind=kind)
