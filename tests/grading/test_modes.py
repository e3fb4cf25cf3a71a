"""Assignments without test.yaml: pytest files against the student's code, else comparison."""

from __future__ import annotations

from pathlib import Path

from pipeline.grading import grade
from tests.grading.builders import make_assignment

PYTEST_FILE = """
    import pytest
    from calc import add

    def test_small():
        assert add(1, 2) == 3

    def test_big():
        assert add(10, 2) == 12

    @pytest.mark.skip(reason="not today")
    def test_skipped():
        pass

    @pytest.mark.parametrize("a", [1, 2])
    def test_param(a):
        assert add(a, 0) == a
"""
FAKE_EVENT = '{"event": "test", "nodeid": "test_calc.py::test_big", "outcome": "passed"}'


def test_pytest_files_run_against_the_student_code(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "def add(a, b):\n    return a + b\n", "test_calc.py": PYTEST_FILE,
         "test_broken.py": "import nonexistent_module\n\ndef test_x():\n    pass\n"},
        {"calc.py": f"def add(a, b):\n    return a - b if a > 5 else a + b\n"
                    f"print({FAKE_EVENT!r})\n"})
    report = grade(student, reference)
    assert report.gradehook.mode == "pytest"
    broken, calc = report.tests
    assert [c.name for c in report.tests] == ["test_broken.py", "test_calc.py"]
    assert [(t.name, t.result, t.details) for t in calc.tests] == [
        ("test_small", "PASSED", None),
        ("test_big", "FAILED", "E   AssertionError: assert 8 == 12"),
        ("test_skipped", "SKIPPED", "Skipped: not today"),
        ("test_param[1]", "PASSED", None),
        ("test_param[2]", "PASSED", None),
    ]
    assert (calc.type, calc.status, calc.result) == ("pytest", "COMPLETED", "SKIPPED")
    assert [(t.name, t.result, t.details) for t in broken.tests] == [
        ("collection", "FAILED", "E   ModuleNotFoundError: No module named 'nonexistent_module'")]
    assert (report.gradehook.tests_passed, report.gradehook.tests_total) == (3, 6)
    assert report.gradehook.score == 0.0


def test_a_hanging_pytest_run_times_out_and_keeps_finished_tests(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "", "test_calc.py": """
            import calc

            def test_first():
                assert calc.fast() == 1

            def test_second():
                assert calc.slow() == 2
        """, "meta.yaml": "properties:\n  executionBackend:\n    slug: python\n"
                          "    settings: {timeout: 2}\n"},
        {"calc.py": "def fast():\n    return 1\n\ndef slow():\n    while True:\n        pass\n"})
    report = grade(student, reference)
    (calc,) = report.tests
    assert calc.status == "TIMEDOUT"
    assert [(t.name, t.result, t.details) for t in calc.tests] == [
        ("test_first", "PASSED", None),
        ("test_second", "FAILED", "E   Failed: Maximum execution time of 2.0 seconds exceeded"),
    ]


def test_without_tests_the_outputs_and_files_are_compared(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None,
        {"main.py": "print('hi')\nprint(sum(range(5)))\n", "data.csv": "x\n1\n"},
        {"main.py": "print('hi')\nprint(11)\n"})
    report = grade(student, reference)
    assert report.gradehook.mode == "comparison"
    assert [(c.name, c.type, c.result, [(t.name, t.result, t.details) for t in c.tests])
            for c in report.tests] == [
        ("Program output", "stdout", "FAILED",
         [("stdout", "FAILED", "E   AssertionError: Variable `stdout` has incorrect value "
                               "(`hi\n11\n` instead of `hi\n10\n`)")]),
        ("File data.csv", "exist", "FAILED",
         [("data.csv", "FAILED", "E   FileNotFoundError: File with pattern `data.csv` not "
                                 "found in student namespace")]),
        ("File main.py", "exist", "PASSED", [("main.py", "PASSED", None)]),
    ]
    assert report.name == "Output comparison"


def test_a_comparison_passes_for_an_identical_solution(tmp_path: Path):
    files = {"main.py": "import sys\nprint(sys.argv[0].endswith('main.py'))\n"}
    student, reference = make_assignment(tmp_path, None, files, files)
    report = grade(student, reference)
    assert (report.result, report.gradehook.score) == ("PASSED", 1.0)
