"""`gradehook grade` as staff run it: readable output, JSON, and exit codes 0, 1 and 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.grading.builders import make_assignment, write_files

GRADEHOOK = str(Path(sys.executable).parent / "gradehook")
TEST_YAML = """
properties:
  tests:
    - name: values
      entryPoint: ex.py
      tests:
        - name: x
        - name: total(2, 3)
"""
REFERENCE = {"ex.py": "x = 1\ndef total(a, b):\n    return a + b\n"}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "GRADEHOOK_CONFIG"}
    return subprocess.run([GRADEHOOK, "grade", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def test_a_correct_solution_exits_zero(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, REFERENCE)
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Python Test Suite: PASSED (1 of 1 collection passed, 2/2 tests passed, score 1.00)",
        "Congratulations! All tests passed",
        "",
        "[PASSED] values (variable, COMPLETED) 2/2 tests passed",
        "  PASSED  x",
        "  PASSED  total(2, 3)",
    ]


def test_an_incorrect_solution_exits_one_and_shows_the_failing_values(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE,
                                         {"ex.py": "x = 2\ndef total(a, b):\n    return a * b\n"})
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "Python Test Suite: FAILED (0 of 1 collection passed, 0/2 tests passed, score 0.00)",
        "Some or all tests failed",
        "",
        "[FAILED] values (variable, COMPLETED) 0/2 tests passed",
        "  FAILED  x            E   AssertionError: Variable `x` has incorrect value "
        "(`2` instead of `1`)",
        "    expected: 1",
        "    actual:   2",
        "  FAILED  total(2, 3)  E   AssertionError: Variable `total(2, 3)` has incorrect value "
        "(`6` instead of `5`)",
        "    expected: 5",
        "    actual:   6",
    ]


def test_the_header_counts_the_tests_and_says_how_many_are_hidden_as_students_read_it(
        tmp_path: Path):
    """Before, 'Python Test Suite: FAILED (0/2 collections passed, score 0.00)': the tests
    passed, and how many of them students see only as passed or failed ('2/4 tests passed, 2
    of the 4 hidden' in their score line), were not said."""
    test_yaml = TEST_YAML + """
    - name: more
      entryPoint: ex.py
      tests:
        - name: total(1, 1)
        - name: x + 1
"""
    student, reference = make_assignment(
        tmp_path, test_yaml, REFERENCE, {"ex.py": "x = 2\ndef total(a, b):\n    return a + b\n"},
        meta_yaml="properties:\n  hiddenTests: [more]\n")
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == (
        "Python Test Suite: FAILED (0 of 2 collections passed, 2/4 tests passed, 2 of the 4 "
        "hidden, score 0.00)")


def test_json_output_is_the_test_summary(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, REFERENCE)
    done = run_cli("--student", str(student), "--reference", str(reference), "--json",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["result"], data["gradehook"]["score"]) == ("PASSED", 1.0)


def test_an_invalid_test_yaml_exits_two_with_the_course_error(tmp_path: Path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: values
              entryPoint: ex.py
              tests:
                - name: x
                  typeCheck: maybe
    """, REFERENCE, REFERENCE)
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [
        "Course error (the assignment cannot be graded):",
        "test.yaml line 8: properties.tests[0].tests[0].typeCheck: must be true or false, "
        "got 'maybe'",
    ]
    assert done.stderr == ""  # said once, in the report


def test_a_hidden_tests_entry_naming_no_collection_exits_two_naming_it(tmp_path: Path):
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, REFERENCE,
                                         meta_yaml="properties:\n  hiddenTests: [valeus]\n")
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [
        "Course error (the assignment cannot be graded):",
        "meta.yaml line 2: properties.hiddenTests[0]: test.yaml has no collection named "
        "'valeus', so this entry hides nothing; did you mean values?",
    ]


def test_a_course_error_shows_every_test_as_it_ran(tmp_path: Path):
    """The error names the first test the reference gives no value for; staff see the others
    in the tests below it, and correct them all at once."""
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: values
              entryPoint: ex.py
              tests:
                - name: x
                - name: totl(2, 3)
                - name: y
    """, REFERENCE, REFERENCE)
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [
        "Course error (the assignment cannot be graded):",
        "the reference solution gives no expected value for `totl(2, 3)` in collection "
        "`values`: evaluating `totl(2, 3)` in its namespace raised NameError: name 'totl' is not "
        "defined (and 1 more tests without an expected value)",
        "",
        "The tests as they ran, not scored:",
        "",
        "[FAILED] values (variable, COMPLETED) 1/3 tests passed",
        "  PASSED  x",
        "  FAILED  totl(2, 3)  E   KeyError: 'Variable `totl(2, 3)` not found in student "
        "namespace'",
        "    raised:   NameError: name 'totl' is not defined",
        "  FAILED  y           E   KeyError: 'Variable `y` not found in student namespace'",
    ]


@pytest.fixture
def nest():
    """Make folders `a` depth deep in a folder, one at a time (os.makedirs recurses), and
    remove them afterwards from the deepest up: pytest's removal of old temporary folders
    recurses too, and would fail on them."""
    made: list[tuple[Path, Path]] = []

    def make(folder: Path, depth: int) -> None:
        deepest = folder
        for _ in range(depth):
            deepest = deepest / "a"
            deepest.mkdir()
        made.append((folder, deepest))
    yield make
    for folder, deepest in made:
        while deepest != folder:
            deepest.rmdir()
            deepest = deepest.parent


DEEP = 1200  # deeper than Python's recursion limit lets a recursive copy go
TOO_DEEP = (f"cannot be graded: {'a/' * 60}... (131 characters) lies 65 folders deep, deeper "
            "than the 64 a run can grade")


def test_a_student_folder_too_deep_to_copy_fails_with_why(tmp_path: Path, nest):
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, REFERENCE)
    nest(student, DEEP)
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"  FAILED  x            E   Failed: {student} {TOO_DEEP}" in done.stdout.splitlines()


def test_a_reference_folder_too_deep_to_copy_is_a_course_error(tmp_path: Path, nest):
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, REFERENCE)
    nest(reference, DEEP)
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["Course error (the assignment cannot be graded):",
                                        f"{reference} {TOO_DEEP}"]


def test_a_separate_assignment_directory(tmp_path: Path):
    assignment = write_files(tmp_path / "assignment", {"test.yaml": TEST_YAML})
    student = write_files(tmp_path / "student", REFERENCE)
    reference = write_files(tmp_path / "reference", REFERENCE)
    done = run_cli("--student", str(student), "--reference", str(reference), "--assignment",
                   str(assignment), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_student_directory_that_does_not_exist_is_a_usage_error(tmp_path: Path):
    _, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, REFERENCE)
    done = run_cli("--student", str(tmp_path / "typo"), "--reference", str(reference),
                   cwd=tmp_path)
    assert done.returncode == 2
    assert "--student" in done.stderr and "does not exist" in done.stderr


DEPENDENCY_META = "testDependencies: [week0/shared.txt]\n"
DEPENDENCY_TEST = """
properties:
  tests:
    - {name: shared, entryPoint: ex.py, tests: [{name: text}]}
"""
DEPENDENCY_SOLUTION = {"ex.py": "text = open('week0/shared.txt').read()\n"}


def _repository_with_a_dependency(root: Path) -> tuple[Path, Path]:
    """Write a reference repository whose assignment needs week0/shared.txt; a student copy."""
    write_files(root / "repo", {"week0/shared.txt": "shared by the course\n"})
    reference = write_files(root / "repo" / "week1" / "hello", {
        **DEPENDENCY_SOLUTION, "test.yaml": DEPENDENCY_TEST, "meta.yaml": DEPENDENCY_META})
    return write_files(root / "student", DEPENDENCY_SOLUTION), reference


def test_test_dependencies_come_from_the_references_work_tree(tmp_path: Path):
    student, reference = _repository_with_a_dependency(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    done = run_cli("--student", str(student), "--reference", str(reference), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_test_dependencies_come_from_the_repository_option(tmp_path: Path):
    student, reference = _repository_with_a_dependency(tmp_path)
    done = run_cli("--student", str(student), "--reference", str(reference), "--repository",
                   str(tmp_path / "repo"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
