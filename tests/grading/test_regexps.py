"""The regexp qualification through real sandboxes: re.match bounded in time, apart from the
student's code (§3.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.grading import grade
from pipeline.grading import regexps
from tests.grading.builders import make_assignment

# Words separated by spaces: a common course pattern that backtracks exponentially on a sentence
# ending in punctuation.
WORDS = r"^(\\w+\\s?)+$"
TEST_YAML = f"""
properties:
  tests:
    - name: answers
      entryPoint: ex.py
      tests:
        - {{name: sentence, qualification: regexp, pattern: "{WORDS}"}}
        - {{name: sentence, qualification: regexp, pattern: "hello"}}
        - {{name: sentence, qualification: regexp, pattern: "bye"}}
        - {{name: number, qualification: regexp, pattern: "\\\\d+$"}}
"""
REFERENCE = {"ex.py": "sentence = 'hello'\nnumber = 1\n"}


def details(report):
    return [(t.result, t.details) for c in report.tests for t in c.tests]


@pytest.mark.timeout(60)
def test_a_match_that_backtracks_for_ever_fails_at_its_time_limit(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(regexps, "MATCH_SECONDS", 0.5)
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, {"ex.py": """
        sentence = "hello world this is my answer to the exercise number one!"
        number = 42
    """})
    report = grade(student, reference)
    assert details(report) == [
        ("FAILED", "E   TimeoutError: Variable `sentence` could not be checked against the "
                   r"compiled regular expression from the specified pattern `^(\w+\s?)+$`: the "
                   "match took longer than 0.5 seconds and was stopped (patterns like this one "
                   "can take very long on some values, mostly on values they do not match)"),
        ("PASSED", None),
        ("FAILED", "E   AssertionError: Variable `sentence` does not match the compiled regular "
                   "expression from the specified pattern `bye`"),
        ("PASSED", None)]
    assert report.tests[0].tests[0].debug == {
        "actual": "'hello world this is my answer to the exercise number one!'"}


def test_the_student_code_cannot_replace_the_matcher(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, {"ex.py": """
        import re
        re.match = lambda *args, **kwargs: True
        sentence = "bye, then."
        number = "none"
    """})
    assert [result for result, _ in details(grade(student, reference))] == [
        "FAILED", "FAILED", "PASSED", "FAILED"]


def test_one_large_value_many_tests_match_is_handed_to_the_matcher_once(tmp_path: Path):
    # Twenty tests of one 4 MB value under a course's 100 MB: twenty copies would not fit.
    tests = "\n".join(f"        - {{name: s, qualification: regexp, pattern: \"a{{{n}}}\"}}"
                      for n in range(1, 21))
    meta = "properties:\n  executionBackend:\n    settings:\n      memoryLimitMB: 100\n"
    student, reference = make_assignment(
        tmp_path, f"properties:\n  tests:\n    - name: answers\n      entryPoint: ex.py\n"
                  f"      tests:\n{tests}\n", {"ex.py": "s = ''\n"},
        {"ex.py": f"s = 'a' * {4 * 1024 * 1024}\n"}, meta)
    report = grade(student, reference)
    assert [t.result for c in report.tests for t in c.tests] == ["PASSED"] * 20
