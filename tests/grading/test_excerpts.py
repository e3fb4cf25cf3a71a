"""Excerpts of compared values kept in a failed test's debug: cut around the first difference."""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict, namedtuple

import numpy as np

from pipeline.grading.checks import check_pattern, verify_equal
from pipeline.grading.excerpts import (CONTEXT_BEFORE_CHARS, EXCERPT_CHARS, difference_excerpts,
                                       text_excerpt)


def excerpts(actual, expected, rel=1e-12, abs_tol=1e-4) -> tuple[str, str]:
    return difference_excerpts(actual, expected, rel, abs_tol)


def test_short_values_are_shown_whole_as_python_writes_them():
    assert excerpts([1.0, 2.0, 3.5], [1.0, 2.0, 3.0]) == ("[1.0, 2.0, 3.5]", "[1.0, 2.0, 3.0]")
    assert excerpts((1,), [1]) == ("(1,)", "[1]")
    assert excerpts(3, 3.0) == ("3", "3.0")
    assert excerpts({"a": [1, "x"]}, {}) == ("{'a': [1, 'x']}", "{}")


def test_namedtuples_and_dict_subclasses_are_written_with_their_type():
    point = namedtuple("Point", "x y")
    assert excerpts(point(1, 2), (1, 2)) == ("Point(x=1, y=2)", "(1, 2)")
    assert excerpts([point(1, 2)], []) == ("[Point(x=1, y=2)]", "[]")
    assert excerpts(Counter("aab"), OrderedDict(a=2)) == (
        "Counter({'a': 2, 'b': 1})", repr(OrderedDict(a=2)))
    assert excerpts({"k": defaultdict(list)}, {}) == ("{'k': defaultdict(<class 'list'>, {})}",
                                                      "{}")


def test_strings_are_quoted_and_escaped_so_whitespace_and_controls_show():
    assert excerpts("it's\tok\n", "ok\r\x1b[31m\\") == ("'it\\'s\\tok\\n'", "'ok\\r\\x1b[31m\\\\'")


def test_set_items_are_sorted_so_the_text_is_the_same_in_every_run():
    assert excerpts({"pear", "apple", "fig"}, frozenset({"b", "a"})) == (
        "{'apple', 'fig', 'pear'}", "frozenset({'a', 'b'})")


def test_long_lists_are_cut_around_the_first_item_that_differs_beyond_the_tolerance():
    expected = [float(n) for n in range(200)]
    actual = list(expected)
    actual[1] += 1e-9  # within the tolerance: not the difference
    actual[150] = 7.5

    shown_actual, shown_expected = excerpts(actual, expected)

    assert shown_actual.startswith("[…, ") and shown_actual.endswith(", …]")
    assert "149.0, 7.5, 151.0" in shown_actual and "149.0, 150.0, 151.0" in shown_expected
    assert shown_actual.index("7.5") <= CONTEXT_BEFORE_CHARS + len("[…, ")
    assert max(len(shown_actual), len(shown_expected)) <= EXCERPT_CHARS


def test_long_texts_are_cut_around_the_first_character_that_differs():
    before = "line\n" * 100
    shown_actual, shown_expected = excerpts(before + "the end?\n" + "x" * 500,
                                            before + "the end!\n" + "x" * 500)

    assert shown_actual.startswith("'…") and shown_actual.endswith("…'")
    assert "line\\nthe end?\\nxxx" in shown_actual and "line\\nthe end!\\nxxx" in shown_expected
    assert len(shown_actual) == len(shown_expected) <= EXCERPT_CHARS


def test_a_shorter_value_shows_its_end_and_the_longer_what_follows():
    assert excerpts("Hello", "Hello, World!\n") == ("'Hello'", "'Hello, World!\\n'")


def test_arrays_are_cut_around_the_first_differing_item():
    expected = np.arange(3000.0)
    actual = expected.copy()
    actual[1500] = -1.0

    shown_actual, shown_expected = excerpts(actual, expected)

    assert shown_actual.startswith("array([…, ") and "1499.0, -1.0, 1501.0" in shown_actual
    assert "1499.0, 1500.0, 1501.0" in shown_expected


def test_one_huge_differing_item_is_cut_rather_than_left_out():
    shown_actual, _ = excerpts(["a" * 5000, 1], ["b", 1])

    assert shown_actual.startswith("['aaaa") and shown_actual.endswith("…, …]")
    assert len(shown_actual) <= EXCERPT_CHARS


def test_text_excerpts_show_the_start_or_the_end():
    output = "Hello\n" + "." * 1000 + "Bye\n"

    assert text_excerpt(output).startswith("'Hello\\n....") and text_excerpt(output).endswith("…'")
    assert text_excerpt(output, from_end=True).endswith("....Bye\\n'")
    assert len(text_excerpt(output)) <= EXCERPT_CHARS


def test_failed_checks_keep_the_excerpts_in_their_debug_and_passes_keep_none():
    failed = verify_equal("v", "abc", "abcd", type_check=True, shape_check=True, rel=0, abs_tol=0)
    passed = verify_equal("v", 1, 1, type_check=True, shape_check=True, rel=0, abs_tol=0)

    assert failed.debug == {"expected": "'abcd'", "actual": "'abc'"}
    assert passed.debug is None
    assert check_pattern("endsWith", "v", "x" * 400 + "done", "end", None).debug == {
        "actual": "'…" + "x" * 76 + "done'"}
    assert check_pattern("contains", "v", "done", "do", None).debug is None
