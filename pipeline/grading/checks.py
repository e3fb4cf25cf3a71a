"""Test verdicts: verifyEqual (type, shape, value) and the pattern qualifications, exact texts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pipeline.grading.approx import approx_equal, is_ndarray
from pipeline.grading.excerpts import difference_excerpts, text_excerpt
from pipeline.grading.runner import shorten
from pipeline.grading.values import Uncomparable
from pipeline.sandbox.values import qualified_name

PASSED = "PASSED"
FAILED = "FAILED"
SKIPPED = "SKIPPED"

INCORRECT_TYPE = "Variable `{name}` has incorrect type, expected: {expected}, obtained {obtained}"
INCORRECT_LEN = "Variable `{name}` has incorrect len, expected: {expected}, obtained {obtained}"
INCORRECT_SHAPE = "Variable `{name}` has incorrect shape, expected: {expected}, obtained {obtained}"
INCORRECT_VALUE = "Variable `{name}` has incorrect value (`{obtained}` instead of `{expected}`)"
# A value that could not leave its run's sandbox, of the same type as the other one (or with
# typeCheck off): it cannot be compared, as other types could, on the host.
STUDENT_UNCOMPARABLE = "Variable `{name}` of type {kind} cannot be compared with the expected " \
                       "value: {why}"
EXPECTED_UNCOMPARABLE = "Variable `{name}` cannot be compared with the expected value, of type " \
                        "{kind}: {why}"
UNCOMPARABLE_TYPE = "only values such as numbers, strings, lists, tuples, dicts, sets, numpy " \
                    "arrays and pandas objects can be compared"
PATTERN_MESSAGES = {
    "matches": "Variable `{name}` does not match the specified pattern `{pattern}`",
    "contains": "Variable `{name}` does not contain the specified pattern `{pattern}`",
    "startsWith": "Variable `{name}` does not start with the specified pattern `{pattern}`",
    "endsWith": "Variable `{name}` does not end with the specified pattern `{pattern}`",
    "count": "Variable `{name}` does not contain the specified pattern `{pattern}` {count}-times",
    "regexp": "Variable `{name}` does not match the compiled regular expression from the "
              "specified pattern `{pattern}`",
}
# A regexp whose match was stopped: the pattern, not only the value, makes it slow.
REGEXP_TOO_SLOW = ("Variable `{name}` could not be checked against the compiled regular "
                   "expression from the specified pattern `{pattern}`: the match took longer "
                   "than {seconds} seconds and was stopped (patterns like this one can take "
                   "very long on some values, mostly on values they do not match)")
# A regexp whose match needed more memory than the matcher may use.
REGEXP_TOO_LARGE = ("Variable `{name}` could not be checked against the compiled regular "
                    "expression from the specified pattern `{pattern}`: the match needed more "
                    "than the {memory_mb} MB of memory a match may use and was stopped (patterns "
                    "like this one need memory for each character of a long value)")
SIZED_TYPES = (str, list, tuple, range, dict, set, frozenset, bytes, bytearray, memoryview)
ABBREVIATION_LENGTH = 10
# The keys of a failed test's debug (free-form, spec/codeability.md §7) that hold excerpts of the
# values compared, since its message abbreviates them to ten characters.
EXPECTED_EXCERPT = "expected"
ACTUAL_EXCERPT = "actual"
# The key of a failed test's debug holding what evaluating its name in the student's namespace
# raised (in pytest mode: what failed the test, raised in the student's code): the error as
# Python words it, and where in the student's files (file, lineno, line).
RAISED = "raised"
# How such a place follows the error: ` (stats.py, line 3: return x / 0)`.
RAISED_AT = " ({file}, line {lineno}: {line})"
# The key of a failed test's debug holding where in the student's files the timer stopped its
# lookup, as a stopped run's collection holds it (spec/codeability.md §7: name, filename, lineno,
# line, errormsg).
TRACEBACK = "traceback"
# The key of a not-found test's debug holding where in the student's files their program ended
# with sys.exit(0) or sys.exit(None) before the name was looked up (file, lineno, line).
EXITED = "exited"
# The key of a failed test's debug (and of a crash's traceback) holding the module of the
# student's folder that its ImportError or AttributeError is about, which Python passed over for
# another of its name (the runner's shadowed_module): its name (module), whether it is a folder
# (folder) and whether the other is a standard module (standard).
SHADOWED = "shadowed"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one test: result; for failures and skips the exception and message, and
    for failures that compared values, excerpts of them for the test's debug."""

    result: str
    exception: str | None = None
    message: str | None = None
    debug: dict[str, Any] | None = None

    @property
    def details(self) -> str | None:
        """Return the pytest-style details text: `E   Name: message` or `Skipped: reason`."""
        if self.result == FAILED:
            return f"E   {self.exception}: {self.message}"
        if self.result == SKIPPED:
            return f"Skipped: {self.message}"
        return None


PASS = Verdict(PASSED)


def fail(exception: str, message: str) -> Verdict:
    """Return a failed verdict with the exception name and message shown in details."""
    return Verdict(FAILED, exception, message)


def not_found(message: str, raised: dict[str, Any] | None,
              exited: dict[str, Any] | None) -> Verdict:
    """Return the KeyError verdict of a name not found; its debug keeps what evaluating the
    name raised (and the module of the student's it is about that Python passed over) and where
    the program ended with sys.exit(0), which the message of the original engine does not
    say."""
    raised, shadowed = (None, None) if raised is None else (
        {key: value for key, value in raised.items() if key != SHADOWED}, raised.get(SHADOWED))
    debug = {key: value for key, value in ((RAISED, raised), (SHADOWED, shadowed),
                                           (EXITED, exited)) if value is not None}
    return replace(fail_with(KeyError(message)), debug=debug or None)


def stopped_lookup(stopped: dict[str, Any]) -> Verdict:
    """Return the failed verdict of a test whose name or expression ran past its collection's
    time limit: the run's TIMEDOUT message (errormsg), where it was stopped in its debug."""
    return replace(fail("Failed", stopped["errormsg"]), debug={TRACEBACK: stopped})


def stopped_place(stopped: dict[str, Any]) -> str:
    """Return where in a solution's files a lookup was stopped, as it follows the message, or
    ""."""
    return RAISED_AT.format(file=stopped["filename"], lineno=stopped["lineno"],
                            line=stopped["line"] or "") if "lineno" in stopped else ""


def raised_place(raised: dict[str, Any]) -> str:
    """Return where in a solution's files an error was raised, as it follows the error, or ""."""
    return RAISED_AT.format(file=raised["file"], lineno=raised["lineno"],
                            line=raised["line"] or "") if "file" in raised else ""


def fail_with(exc: BaseException) -> Verdict:
    """Return a failed verdict for an exception raised while checking, named as pytest shows it.

    Its message is cut as other texts the student's code controls are: it may quote the
    student's value whole (`cannot compare '[[1], [1, 2], ...]' to numpy.ndarray`).
    """
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    return Verdict(FAILED, name, shorten(str(exc)))


def skip(reason: str) -> Verdict:
    """Return a skipped verdict with its reason."""
    return Verdict(SKIPPED, None, reason)


def abbreviate(value: Any) -> str:
    """Return str(value), cut to ten characters plus `...` when longer."""
    text = str(value)
    return text if len(text) <= ABBREVIATION_LENGTH else text[:ABBREVIATION_LENGTH] + "..."


def verify_equal(name: str, obtained: Any, expected: Any, *, type_check: bool, shape_check: bool,
                 rel: float, abs_tol: float) -> Verdict:
    """Compare a student value with the expected value: type, then len or shape, then value."""
    try:
        verdict = _verify_equal(name, obtained, expected, type_check, shape_check, rel, abs_tol)
    except Exception as exc:
        verdict = fail_with(exc)
    if verdict.result == PASSED:
        return verdict
    actual_excerpt, expected_excerpt = difference_excerpts(obtained, expected, rel, abs_tol)
    excerpts = ((EXPECTED_EXCERPT, expected_excerpt, expected),
                (ACTUAL_EXCERPT, actual_excerpt, obtained))
    return replace(verdict, debug={key: excerpt for key, excerpt, value in excerpts
                                   if not (isinstance(value, Uncomparable) and value.text is None)})


def _verify_equal(name: str, obtained: Any, expected: Any, type_check: bool, shape_check: bool,
                  rel: float, abs_tol: float) -> Verdict:
    if type_check and not _same_type(obtained, expected):
        # A namedtuple's type is named by the program that made it: its name may be any length.
        return fail("AssertionError", INCORRECT_TYPE.format(
            name=name, expected=shorten(_type_text(expected)),
            obtained=shorten(_type_text(obtained))))
    for value, message in ((obtained, STUDENT_UNCOMPARABLE), (expected, EXPECTED_UNCOMPARABLE)):
        if isinstance(value, Uncomparable):
            return fail("Failed", message.format(name=name, kind=value.type_name,
                                                 why=value.reason or UNCOMPARABLE_TYPE))
    if shape_check:
        if isinstance(obtained, SIZED_TYPES):
            if len(obtained) != len(expected):
                return fail("AssertionError", INCORRECT_LEN.format(
                    name=name, expected=len(expected), obtained=len(obtained)))
        elif is_ndarray(obtained):
            if obtained.shape != expected.shape:
                return fail("AssertionError", INCORRECT_SHAPE.format(
                    name=name, expected=expected.shape, obtained=obtained.shape))
    if _value_equal(obtained, expected, rel, abs_tol):
        return PASS
    return fail("AssertionError", INCORRECT_VALUE.format(
        name=name, obtained=abbreviate(obtained), expected=abbreviate(expected)))


def _same_type(obtained: Any, expected: Any) -> bool:
    """Tell whether two values are of one type; one that stayed in the sandbox by its type's
    module.qualname."""
    if isinstance(obtained, Uncomparable) or isinstance(expected, Uncomparable):
        return _qualname(obtained) == _qualname(expected)
    return type(obtained) is type(expected)


def _qualname(value: Any) -> str:
    return value.qualname if isinstance(value, Uncomparable) else qualified_name(type(value))


def _type_text(value: Any) -> str:
    """Return str(type(value)) as the program that made the value would write it."""
    if isinstance(value, Uncomparable):
        return f"<class '{value.type_name}'>"
    return str(type(value))


def _value_equal(obtained: Any, expected: Any, rel: float, abs_tol: float) -> bool:
    if isinstance(obtained, (str, set, frozenset)):
        return obtained == expected
    module = type(obtained).__module__
    if module.startswith("pandas") and type(obtained).__name__ in ("DataFrame", "Series"):
        return bool(obtained.equals(expected))
    if is_ndarray(obtained):
        import numpy as np

        try:
            np.testing.assert_allclose(obtained, expected, rtol=rel, atol=abs_tol)
        except AssertionError:
            return False
        return True
    return approx_equal(obtained, expected, rel, abs_tol)


def check_pattern(qualification: str, name: str, text: str, pattern: str | None,
                  count: int | None) -> Verdict:
    """Test str(student value) against the pattern of a string qualification other than regexp.

    regexp is matched in a sandbox of its own, under a time limit (pipeline.grading.regexps):
    see PendingMatch and match_verdict.
    """
    try:
        passed = _pattern_holds(qualification, text, pattern, count)
    except Exception as exc:
        return fail_with(exc)
    if passed:
        return PASS
    return _pattern_failed(qualification, name, text, pattern, count)


def _pattern_failed(qualification: str, name: str, text: str, pattern: str | None,
                    count: int | None, message: str | None = None,
                    exception: str = "AssertionError") -> Verdict:
    if message is None:
        message = PATTERN_MESSAGES[qualification].format(name=name, pattern=pattern, count=count)
    excerpt = text_excerpt(text, from_end=qualification == "endsWith")
    return replace(fail(exception, message), debug={ACTUAL_EXCERPT: excerpt})


def _pattern_holds(qualification: str, text: str, pattern: str | None, count: int | None) -> bool:
    if qualification == "matches":
        return text == pattern
    if qualification == "contains":
        return text.find(pattern) > -1
    if qualification == "startsWith":
        return text.startswith(pattern)
    if qualification == "endsWith":
        return text.endswith(pattern)
    if qualification == "count":
        return text.count(pattern) == count
    raise ValueError(f"{qualification} is not matched here")


@dataclass(frozen=True)
class PendingMatch:
    """A regexp test that reached its match: str(student value) and the pattern to re.match."""

    name: str
    text: str
    pattern: str | None


@dataclass(frozen=True)
class MatchOutcome:
    """How one re.match ended: matched or not, stopped at the time limit (too_slow: its
    seconds) or at the memory limit (too_large: its MB), or raised (exception name and
    message)."""

    matched: bool = False
    too_slow: float | None = None
    too_large: int | None = None
    error: str | None = None
    message: str = ""


def match_verdict(pending: PendingMatch, outcome: MatchOutcome) -> Verdict:
    """Return a regexp test's verdict from the outcome of its match."""
    name, text, pattern = pending.name, pending.text, pending.pattern
    if outcome.matched:
        return PASS
    if outcome.error is not None:
        return Verdict(FAILED, outcome.error, outcome.message)
    if outcome.too_slow is not None:
        return _pattern_failed("regexp", name, text, pattern, None, REGEXP_TOO_SLOW.format(
            name=name, pattern=pattern, seconds=float(outcome.too_slow)), "TimeoutError")
    if outcome.too_large is not None:
        return _pattern_failed("regexp", name, text, pattern, None, REGEXP_TOO_LARGE.format(
            name=name, pattern=pattern, memory_mb=outcome.too_large), "MemoryError")
    return _pattern_failed("regexp", name, text, pattern, None)
