"""What a failed pytest-mode test tells the student: pytest's explanation of a failed assertion."""

from __future__ import annotations

from pathlib import Path

from pipeline.grading import grade
from pipeline.grading.runner import MESSAGE_LIMIT
from tests.grading.builders import make_assignment

REFERENCE = """\
def squares(n):
    return [i * i for i in range(n)]


def shout(text):
    return text.upper() + "!"


def counts(text):
    return {word: text.split().count(word) for word in text.split()}


def mean(values):
    return sum(values) / len(values)
"""
TESTS = """\
from stats import counts, mean, shout, squares


def test_squares():
    assert squares(50) == [i * i for i in range(50)]


def test_shout():
    assert shout("a rather long sentence that students may get wrong " * 5) == \\
        "A RATHER LONG SENTENCE THAT STUDENTS MAY GET WRONG " * 5 + "!"


def test_counts():
    assert counts("a b a c d e f g h") == {"a": 2, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1,
                                           "g": 1, "h": 1}


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5
"""
WRONG_VALUES = """\
def squares(n):
    result = [i * i for i in range(n)]
    result[37] = 0
    return result


def shout(text):
    return text.upper()


def counts(text):
    return {word: 1 for word in text.split()}


def mean(values):
    return sum(values) / (len(values) + 1)
"""


def _graded(tmp_path: Path, student: dict[str, str]) -> dict[str, tuple[str, str | None, dict]]:
    """Grade the student's files against TESTS; return each test's result, details and debug."""
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": TESTS}, student)
    (stats,) = grade(student_dir, reference).tests
    return {test.name: (test.result, test.details, test.debug) for test in stats.tests}


def test_a_failed_assertion_keeps_pytests_explanation_without_its_advice_to_rerun(tmp_path):
    """Before, only the assertion's first line was kept: `assert [0, 1, 4, 9, 16, 25, ...] ==
    [0, 1, 4, 9, 16, 25, ...]` did not say where two lists of 50 differ."""
    graded = _graded(tmp_path, {"stats.py": WRONG_VALUES})

    assert graded == {
        "test_squares": ("FAILED", "E   AssertionError: assert [0, 1, 4, 9, 16, 25, ...] == "
                                   "[0, 1, 4, 9, 16, 25, ...]\n"
                                   "E     At index 37 diff: 0 != 1369", None),
        "test_shout": ("FAILED", "E   AssertionError: assert 'A RATHER LON...AY GET WRONG ' == "
                                 "'A RATHER LON...Y GET WRONG !'\n"
                                 "E     Skipping 244 identical leading characters in diff\n"
                                 "E     -  GET WRONG !\n"
                                 "E     ?            -\n"
                                 "E     +  GET WRONG", None),
        "test_counts": ("FAILED", "E   AssertionError: assert {'a': 1, 'b':..., 'd': 1, ...} == "
                                  "{'a': 2, 'b':..., 'd': 1, ...}\n"
                                  "E     Omitting 7 identical items\n"
                                  "E     Differing items:\n"
                                  "E     {'a': 1} != {'a': 2}", None),
        "test_mean": ("FAILED", "E   AssertionError: assert 2.0 == 2.5\n"
                                "E    +  where 2.0 = mean([1, 2, 3, 4])", None),
    }


def test_an_explanation_too_long_for_the_message_limit_is_cut_after_its_first_line(tmp_path):
    """A course's own message for an assertion may quote the student's value whole: the lines
    that fit stay, the first that does not is cut to the room left, with the note saying so."""
    tests = ("from stats import shout\n\n\ndef test_shout():\n    got = shout('ab ' * 2000)\n"
             "    assert got == 'no', 'shout gave:\\n' + got\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": tests}, {"stats.py": REFERENCE})
    (stats,) = grade(student_dir, reference).tests
    (test,) = stats.tests

    first, cut = test.details.split("\n")
    assert first == "E   AssertionError: shout gave:"
    assert cut.startswith("E     AB AB AB ") and cut.endswith(" [... cut: 6003 characters in all]")
    assert len(first) + 1 + len(cut) - 2 * len("E   ") == MESSAGE_LIMIT
