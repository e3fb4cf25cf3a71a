"""verifyEqual (type, len, shape, value with tolerances) and pattern qualifications (§3.3, §3.5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.grading.checks import MatchOutcome, PendingMatch, abbreviate, check_pattern, \
    match_verdict, verify_equal


def verdict(obtained, expected, *, rel=1e-12, abs_tol=1e-4, type_check=True, shape_check=True):
    result = verify_equal("v", obtained, expected, type_check=type_check,
                          shape_check=shape_check, rel=rel, abs_tol=abs_tol)
    return result.result, result.details


PASS = ("PASSED", None)


def test_type_check_is_exact():
    assert verdict(1, 1.0) == ("FAILED", "E   AssertionError: Variable `v` has incorrect type, "
                                         "expected: <class 'float'>, obtained <class 'int'>")
    assert verdict(np.float64(1.0), 1.0)[1] == (
        "E   AssertionError: Variable `v` has incorrect type, expected: <class 'float'>, "
        "obtained <class 'numpy.float64'>")
    assert verdict((1, 2), [1, 2])[1].endswith("expected: <class 'list'>, obtained <class "
                                               "'tuple'>")
    assert verdict(1, 1.0, type_check=False) == PASS


def test_length_and_shape_checks_come_before_the_value():
    assert verdict([1, 2], [1, 2, 3]) == (
        "FAILED", "E   AssertionError: Variable `v` has incorrect len, expected: 3, obtained 2")
    assert verdict("ab\n", "abc\n")[1] == (
        "E   AssertionError: Variable `v` has incorrect len, expected: 4, obtained 3")
    assert verdict("abd\n", "abc\n")[1] == (
        "E   AssertionError: Variable `v` has incorrect value (`abd\n` instead of `abc\n`)")
    assert verdict(np.zeros(2), np.zeros(3)) == (
        "FAILED", "E   AssertionError: Variable `v` has incorrect shape, expected: (3,), "
                  "obtained (2,)")
    assert verdict([1, 2], [1, 2, 3], shape_check=False)[1].startswith(
        "E   AssertionError: Variable `v` has incorrect value")


def test_values_are_abbreviated_to_ten_characters():
    assert abbreviate("0123456789") == "0123456789"
    assert abbreviate("0123456789a") == "0123456789..."
    assert verdict([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])[1] == (
        "E   AssertionError: Variable `v` has incorrect value "
        "(`[1.0, 2.0,...` instead of `[1.0, 2.0,...`)")


def test_numbers_pass_within_the_larger_of_relative_and_absolute_tolerance():
    assert verdict(1.00009, 1.0) == PASS
    assert verdict(1.00011, 1.0)[0] == "FAILED"
    assert verdict(1005.0, 1000.0, rel=0.01) == PASS
    assert verdict(1011.0, 1000.0, rel=0.01)[0] == "FAILED"
    assert verdict(float("nan"), float("nan"))[0] == "FAILED"
    assert verdict(float("inf"), float("inf")) == PASS
    assert verdict(True, True) == PASS
    assert verdict(True, 1, type_check=False) == PASS
    assert verdict(1, True, type_check=False)[0] == "FAILED"
    assert verdict(None, None) == PASS
    assert verdict(1 + 1e-5j, 1 + 0j) == PASS


def test_strings_and_sets_compare_exactly():
    assert verdict("a", "a") == PASS
    assert verdict({1.0, 2.0}, {1.0, 2.00001})[0] == "FAILED"
    assert verdict(frozenset({1}), frozenset({1})) == PASS


def test_flat_sequences_and_dicts_compare_element_wise_with_tolerance():
    assert verdict([1.0, 2.00001], [1.0, 2.0]) == PASS
    assert verdict((1, "a"), (1, "a")) == PASS
    assert verdict({"a": 1.00001, "b": 2}, {"a": 1.0, "b": 2}) == PASS
    assert verdict({"a": 1.0}, {"b": 1.0})[0] == "FAILED"


def test_nested_containers_are_compared_recursively():
    assert verdict([[1, 22, 44]], [[1, 22, 44]]) == PASS
    assert verdict([[1.0, 2.00001]], [[1.0, 2.0]]) == PASS
    assert verdict({"a": {"b": [1.0, 2.0]}}, {"a": {"b": [1.0, 2.00001]}}) == PASS
    assert verdict([[1.0, 2.0]], [[1.0, 2.1]])[1] == (
        "E   AssertionError: Variable `v` has incorrect value "
        "(`[[1.0, 2.0...` instead of `[[1.0, 2.1...`)")
    assert verdict([[1, 2]], [[1, 2, 3]])[0] == "FAILED"


def test_numpy_arrays_use_allclose():
    assert verdict(np.array([1.0, 2.0]), np.array([1.0, 2.00005])) == PASS
    assert verdict(np.array([1.0, np.nan]), np.array([1.0, np.nan])) == PASS
    assert verdict(np.array([1.0, 2.0]), np.array([1.0, 2.5]))[1] == (
        "E   AssertionError: Variable `v` has incorrect value (`[1. 2.]` instead of `[1.  2.5]`)")


def test_pandas_objects_use_equals():
    frame = pd.DataFrame({"a": [1, 2]})
    assert verdict(frame, frame.copy()) == PASS
    assert verdict(frame, pd.DataFrame({"a": [1, 3]}))[0] == "FAILED"
    assert verdict(pd.Series([1.0]), pd.Series([1.0])) == PASS


def test_an_exception_while_comparing_fails_with_its_name():
    assert verdict(5, [1, 2], type_check=False, shape_check=True)[0] == "FAILED"
    assert verdict([1, 2], 5, type_check=False) == (
        "FAILED", "E   TypeError: object of type 'int' has no len()")


@pytest.mark.parametrize("qualification, text, pattern, count, expected", [
    ("matches", "abc", "abc", None, None),
    ("matches", "abcd", "abc", None, "does not match the specified pattern `abc`"),
    ("contains", "xabcx", "abc", None, None),
    ("contains", "xyz", "abc", None, "does not contain the specified pattern `abc`"),
    ("startsWith", "abc", "ab", None, None),
    ("startsWith", "abc", "bc", None, "does not start with the specified pattern `bc`"),
    ("endsWith", "abc", "bc", None, None),
    ("endsWith", "abc", "ab", None, "does not end with the specified pattern `ab`"),
    ("count", "a-a-a", "a", 3, None),
    ("count", "a-a", "a", 3, "does not contain the specified pattern `a` 3-times"),
])
def test_pattern_qualifications(qualification, text, pattern, count, expected):
    result = check_pattern(qualification, "v", text, pattern, count)
    if expected is None:
        assert (result.result, result.details) == PASS
    else:
        assert (result.result, result.details) == ("FAILED", f"E   AssertionError: Variable `v` "
                                                             f"{expected}")


@pytest.mark.parametrize("outcome, expected", [
    (MatchOutcome(matched=True), None),
    (MatchOutcome(), "AssertionError: Variable `v` does not match the compiled regular expression "
                     "from the specified pattern `x=\\d+`"),
    (MatchOutcome(too_slow=5), "TimeoutError: Variable `v` could not be checked against the "
                               "compiled regular expression from the specified pattern `x=\\d+`: "
                               "the match took longer than 5.0 seconds and was stopped (patterns "
                               "like this one can take very long on some values, mostly on "
                               "values they do not match)"),
    (MatchOutcome(too_large=240), "MemoryError: Variable `v` could not be checked against the "
                                  "compiled regular expression from the specified pattern "
                                  "`x=\\d+`: the match needed more than the 240 MB of memory a "
                                  "match may use and was stopped (patterns like this one need "
                                  "memory for each character of a long value)"),
    (MatchOutcome(error="re.error", message="bad escape"), "re.error: bad escape"),
])
def test_regexp_verdicts(outcome, expected):
    result = match_verdict(PendingMatch("v", "y x=42", r"x=\d+"), outcome)
    if expected is None:
        assert (result.result, result.details) == PASS
    else:
        assert (result.result, result.details) == ("FAILED", f"E   {expected}")
