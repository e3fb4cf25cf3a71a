"""What a student's program hands back is judged on the host: it cannot crash or stall grading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.grading import GradeOptions, grade
from pipeline.grading.static_checks import MAX_SOURCE_BYTES
from tests.grading.builders import make_assignment, one_value_yaml

ONE_VALUE = one_value_yaml()

GRAPHICS = """
    properties:
      tests:
        - type: graphics
          name: plot
          entryPoint: ex.py
          storeGraphicsArtifacts: true
          tests:
            - name: gcf().number
"""
# A whole result document written to the channel, after which the process ends: the runner
# never writes its own.
FORGED = """
    import json, os
    channel = os.open("/opt/gradehook/result", os.O_WRONLY)
    os.write(channel, ("\\n" + json.dumps({{
        "error": None, "entry_seconds": {seconds}, "stdout": "", "stdout_truncated": False,
        "figures": {figures}, "values": {{}}, "texts": {{}}, "evals": {{}}}}) + "\\n").encode())
    os._exit(0)
"""
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
CRASHED_BECAUSE = "E   Failed: Execution of {entry} failed, ERROR: the run handed back a " \
    "malformed result: "


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


def test_a_namedtuple_type_of_any_name_length_is_cut_in_the_type_message(tmp_path):
    # The student's program names its namedtuple type: a megabyte long, so was the message.
    test = graded_x(tmp_path, "from collections import namedtuple\n"
                              "x = namedtuple('P' * 1_000_000, 'x y')(1, 2)\n",
                    reference_code="from collections import namedtuple\n"
                                   "x = namedtuple('Point', 'x y')(1, 2)\n")
    note = " [... cut: 1000019 characters in all]"
    assert (test.result, test.details) == (
        "FAILED", "E   AssertionError: Variable `x` has incorrect type, expected: <class "
        "'__main__.Point'>, obtained " + ("<class '__main__." + "P" * 2000)[:2000 - len(note)]
        + note)


def test_an_error_quoting_the_whole_value_is_cut(tmp_path):
    # Rows of two lengths cannot be an array: the error quoted all 40,000 of them.
    value = [[1], [1, 2]] * 20_000
    test = graded_x(tmp_path, f"x = [{value}]\n",
                    reference_code="import numpy as np\nx = [np.zeros(3)]\n")
    message = f"cannot compare '{value}' to numpy.ndarray"
    note = f" [... cut: {len(message)} characters in all]"
    assert (test.result, test.details) == (
        "FAILED", "E   TypeError: " + message[:2000 - len(note)] + note)


def test_sets_nested_in_sets_are_written_once_each_for_the_excerpts(tmp_path):
    # Each level used to be written twice (to sort it, then to show it): 2 ** 90 writes.
    test = graded_x(tmp_path, "x = frozenset({1})\nfor _ in range(90):\n    x = frozenset({x})\n")
    assert test.result == "FAILED"
    assert test.debug["actual"].startswith("frozenset({frozenset({")


@pytest.mark.parametrize("shape", ["10 ** 12", "(2 ** 40, 2 ** 20)"])
def test_an_array_of_elements_without_bytes_is_refused_whatever_its_shape(tmp_path, shape):
    # Such arrays take no memory in the sandbox; each element would be a Python object on the
    # host (the excerpt lists them all), and the second took years to copy there.
    test = graded_x(tmp_path, f"import numpy as np\nx = np.empty({shape}, dtype=[])\n",
                    reference_code="import numpy as np\nx = np.zeros(3)\n")
    assert (test.result, test.details) == (
        "FAILED", "E   Failed: Variable `x` came back from the sandbox in an unreadable form: "
        "an array whose elements take no bytes cannot be rebuilt")


def test_an_entry_point_too_large_to_parse_safely_fails_a_blacklist_it_was_not_checked_against(
        tmp_path):
    # Its syntax tree would be built in the worker: 10 MB of `x=1` lines took 6 GB there.
    lines = MAX_SOURCE_BYTES // len("x = 5\n") + 1
    student, reference = make_assignment(tmp_path, one_value_yaml(extra="moduleBlacklist: [os]"),
                                         {"ex.py": "x = 5\n"}, {"ex.py": "x = 5\n" * lines})
    [run] = grade(student, reference).tests
    assert (run.status, run.tests[0].details) == (
        "FAILED", "E   Failed: entryPoint ex.py is too large to check its imports against the "
        f"moduleBlacklist: {6 * lines} bytes, more than {MAX_SOURCE_BYTES}")


def test_a_file_too_large_to_tokenize_quickly_fails_its_structural_tests(tmp_path):
    # Each test tokenized it again, at about 1.5 s a megabyte: 20 MB and two tests took 55 s.
    lines = MAX_SOURCE_BYTES // len("x = 5\n") + 1
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - type: structural
              name: loops
              file: ex.py
              tests:
                - name: while
                  allowedOccuranceRange: [0, 0]
    """, {"ex.py": "x = 5\n"}, {"ex.py": "x = 5\n" * lines})
    [run] = grade(student, reference).tests
    assert run.tests[0].details == (
        f"E   Failed: ex.py is too large to count its tokens: {6 * lines} bytes, more than "
        f"{MAX_SOURCE_BYTES}")


def test_forged_run_times_cannot_add_up_to_infinity(tmp_path):
    # PostgreSQL refuses JSON holding Infinity: the report could not have been recorded.
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: first
              entryPoint: ex.py
              tests:
                - name: x
            - name: second
              entryPoint: ex.py
              setUpCode: y = 1
              tests:
                - name: x
    """, {"ex.py": "x = 5\n"}, {"ex.py": FORGED.format(seconds=1.7e308, figures=[])})
    report = grade(student, reference)
    assert [run.tests[0].details for run in report.tests] == [
        CRASHED_BECAUSE.format(entry=student / "ex.py") + "entry_seconds must be a number of "
        "seconds no longer than the run took"] * 2
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.slow
@pytest.mark.parametrize("student_code, problem", [
    # pyplot takes any int as a figure's number; its file name would be too long for the host.
    ("import matplotlib.pyplot as plt\nplt.figure(num=10 ** 300)\n",
     "a figure must have a number of at most 9 digits and a base64 PNG"),
    (FORGED.format(seconds=0, figures='[{"number": n, "png": ""} for n in range(200_000)]'),
     "figures must be a list of at most 1000"),
], ids=["long number", "200000 files"])
def test_figures_cannot_flood_the_host_or_overrun_a_file_name(tmp_path, student_code, problem):
    student, reference = make_assignment(tmp_path, GRAPHICS, {"ex.py": PLOT},
                                         {"ex.py": student_code})
    output = tmp_path / "output"
    [run] = grade(student, reference, options=GradeOptions(output_dir=output)).tests
    assert (run.status, run.tests[0].details) == (
        "CRASHED", CRASHED_BECAUSE.format(entry=student / "ex.py") + problem)
    assert sorted(path.name for path in (output / "artifacts").iterdir()) == [
        "reference_test_0_figure_1.png"]
