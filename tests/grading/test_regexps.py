"""The regexp qualification through real sandboxes: re.match bounded in time, apart from the
student's code (§3.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
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


@pytest.mark.parametrize("operator_memory_mb, match_mb", [(1024, 240), (128, 112)])
def test_a_match_that_needs_more_memory_than_a_match_may_use_fails_alone(
        tmp_path: Path, operator_memory_mb: int, match_mb: int):
    # re.match keeps what `(a|b)*` may backtrack to, some 80 bytes a character: 320 MB for this
    # value of 4 MB, more than the course's 100 MB, which ended the matcher, and the run as our
    # error ('the regexp matcher stopped before matching every test: memory limit of 100 MB
    # exceeded'); under the default 1024 MB it took 320 MB. A match may use 240 MB, less the
    # headroom of its sandbox under an operator's lower limit, whatever the course's.
    meta = "properties:\n  executionBackend:\n    settings:\n      memoryLimitMB: 100\n"
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: answers
              entryPoint: ex.py
              tests:
                - {name: s, qualification: regexp, pattern: "^(a|b)*c"}
                - {name: s, qualification: regexp, pattern: "ab"}
    """, {"ex.py": "s = 'abc'\n"}, {"ex.py": "s = 'ab' * 2_000_000\n"}, meta)
    report = grade(student, reference, settings=SandboxSettings(memory_mb=operator_memory_mb))
    assert details(report) == [
        ("FAILED", "E   MemoryError: Variable `s` could not be checked against the compiled "
                   "regular expression from the specified pattern `^(a|b)*c`: the match needed "
                   f"more than the {match_mb} MB of memory a match may use and was stopped "
                   "(patterns like this one need memory for each character of a long value)"),
        ("PASSED", None)]
    assert report.tests[0].tests[0].debug == {"actual": "'" + "ab" * 148 + "…'"}
