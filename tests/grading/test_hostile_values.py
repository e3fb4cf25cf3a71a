"""What a student's program hands back is judged on the host: it cannot crash or stall grading."""

from __future__ import annotations

from pathlib import Path

from pipeline.grading import grade
from tests.grading.builders import make_assignment

ONE_VALUE = """
    properties:
      tests:
        - name: run
          entryPoint: ex.py
          tests:
            - name: x
"""


def graded_x(tmp_path: Path, student_code: str, reference_code: str = "x = 5\n"):
    """Grade a student's ex.py against the reference's on its value of x; return that test."""
    student, reference = make_assignment(tmp_path, ONE_VALUE, {"ex.py": reference_code},
                                         {"ex.py": student_code})
    [run] = grade(student, reference).tests
    return run.tests[0]


def test_an_int_too_long_to_write_in_decimal_fails_the_test(tmp_path):
    test = graded_x(tmp_path / "alone", "x = 1 << 20000\n")
    inside = graded_x(tmp_path / "inside", "x = [1 << 20000]\n", reference_code="x = [5]\n")
    assert (test.result, inside.result) == ("FAILED", "FAILED")
    assert test.debug["actual"] == inside.debug["actual"][1:-1] == "<int too long to write>"


def test_an_int_too_large_for_a_float_fails_against_a_float(tmp_path):
    test = graded_x(tmp_path, "x = [2 ** 2000]\n", reference_code="x = [1.5]\n")
    assert (test.result, test.details) == (
        "FAILED", "E   OverflowError: int too large to convert to float")  # as pytest.approx
    assert test.debug["actual"].startswith(f"[{str(2 ** 2000)[:100]}")


def test_sets_nested_in_sets_are_written_once_each_for_the_excerpts(tmp_path):
    # Each level used to be written twice (to sort it, then to show it): 2 ** 90 writes.
    test = graded_x(tmp_path, "x = frozenset({1})\nfor _ in range(90):\n    x = frozenset({x})\n")
    assert test.result == "FAILED"
    assert test.debug["actual"].startswith("frozenset({frozenset({")
