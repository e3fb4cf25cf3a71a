"""Assignments without test.yaml: pytest files against the student's code, else comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
from pipeline.grading import EngineError, grade
from pipeline.grading.execution import TESTS_DIR
from pipeline.grading.pytest_mode import defined_tests
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
        ("test_big", "FAILED", "E   AssertionError: assert 8 == 12\nE    +  where 8 = add(10, 2)"),
        ("test_skipped", "SKIPPED", "Skipped: not today"),
        ("test_param[1]", "PASSED", None),
        ("test_param[2]", "PASSED", None),
    ]
    assert (calc.type, calc.status, calc.result) == ("pytest", "COMPLETED", "SKIPPED")
    assert [(t.name, t.result, t.details) for t in broken.tests] == [
        ("test_x", "FAILED", "E   Failed: the test did not run, as importing test_broken.py "
                             "failed: ModuleNotFoundError: No module named 'nonexistent_module'")]
    assert (report.gradehook.tests_passed, report.gradehook.tests_total) == (3, 6)
    assert report.gradehook.score == 0.0


def test_a_pytest_run_times_no_sandbox_of_the_program_or_the_reference_apart(tmp_path: Path):
    """Before, its report timed the student's program and the reference at 0.0 seconds each,
    which the result page showed as 'Your program ran for 0.00' after 'Running the tests 0.87'."""
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": "def add(a, b):\n    return a + b\n",
                         "test_calc.py": PYTEST_FILE},
        {"calc.py": "def add(a, b):\n    return a + b\n"})
    timings = grade(student, reference).gradehook.timings
    assert list(timings) == ["load", "stage", "grading", "total"]
    assert timings["grading"] > 0


def test_a_hanging_pytest_run_times_out_and_keeps_finished_tests(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "", "test_calc.py": """
            import calc
            import pytest

            def test_first():
                assert calc.fast() == 1

            # No limit of its own (without one, a test has half the run's): the run's stops it.
            @pytest.mark.timeout(0)
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


def test_a_student_module_named_pytest_does_not_replace_pytest(tmp_path: Path):
    forged_pytest = """
        def main(args, plugins=()):
            ids = ["test_calc.py::test_a", "test_calc.py::test_b"]
            plugins[0].emit({"event": "collected", "tests": ids})
            for nodeid in ids:
                plugins[0].emit({"event": "test", "nodeid": nodeid, "outcome": "passed",
                                 "when": "call", "message": ""})
            return 0
    """
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "def add(a, b):\n    return a + b\n",
         "test_calc.py": "from calc import add\n\ndef test_a():\n    assert add(1, 2) == 3\n"
                         "\ndef test_b():\n    import json, random\n    assert add(2, 2) == 4\n"},
        {"calc.py": "def add(a, b):\n    return 0\n", "pytest.py": forged_pytest,
         "json.py": "raise ImportError('student json')\n", "random.py": "VALUE = 1\n"})
    report = grade(student, reference)
    (calc,) = report.tests
    assert [(t.name, t.result, t.details) for t in calc.tests] == [
        ("test_a", "FAILED", "E   AssertionError: assert 0 == 3\nE    +  where 0 = add(1, 2)"),
        ("test_b", "FAILED", "E   AssertionError: assert 0 == 4\nE    +  where 0 = add(2, 2)"),
    ]
    assert report.gradehook.score == 0.0


def test_a_fixture_not_found_shows_pytests_error_not_where_the_test_lies(tmp_path: Path):
    test_file = """
        from calc import add

        def test_add(numbers):
            assert add(*numbers) == 3
    """
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "def add(a, b):\n    return a + b\n", "test_calc.py": test_file},
        {"calc.py": "def add(a, b):\n    return a + b\n"})
    (calc,) = grade(student, reference).tests
    assert [(t.name, t.result, t.details) for t in calc.tests] == [
        ("test_add", "FAILED", "E   fixture 'numbers' not found")]


def test_forged_outcomes_count_only_for_the_tests_the_test_file_defines(tmp_path: Path):
    forging = """
        import json, os

        def add(a, b):
            return 0

        events = [{"event": "collected", "tests": ["test_calc.py::test_everything",
                                                   "test_calc.py::test_small"]},
                  {"event": "test", "nodeid": "test_calc.py::test_everything",
                   "outcome": "passed", "when": "call", "message": ""},
                  {"event": "test", "nodeid": "test_calc.py::test_small",
                   "outcome": "passed", "when": "call", "message": ""},
                  {"event": "done", "exit": 0}]
        channel = os.open("/opt/gradehook/result", os.O_WRONLY)
        os.write(channel, ("\\n" + "\\n".join(map(json.dumps, events)) + "\\n").encode())
        os._exit(0)
    """
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "def add(a, b):\n    return a + b\n", "test_calc.py": PYTEST_FILE},
        {"calc.py": forging})
    report = grade(student, reference)
    (calc,) = report.tests
    assert [(t.name, t.result, t.details) for t in calc.tests] == [
        ("test_small", "PASSED", None),
        ("test_big", "FAILED", "E   Failed: the test did not run"),
        ("test_skipped", "FAILED", "E   Failed: the test did not run"),
        ("test_param", "FAILED", "E   Failed: the test did not run"),
    ]
    assert (calc.result, report.gradehook.score) == ("FAILED", 0.0)


def test_a_run_naming_more_tests_than_a_run_may_report_fails_each_test_its_files_define(
        tmp_path: Path):
    # Forged, the list of tests collected made a line of the report for each test named (200,000
    # in 8 MiB, a report of 29 MB), each repeating what ended the run, up to 2,000 characters.
    forging = """
        import json, os

        def add(a, b):
            return 0

        ids = [f"test_calc.py::test_param[{number}]" for number in range(2001)]
        events = [{"event": "collected", "tests": ids},
                  {"event": "stopped", "message": "x" * 2000}]
        channel = os.open("/opt/gradehook/result", os.O_WRONLY)
        os.write(channel, ("\\n" + "\\n".join(map(json.dumps, events)) + "\\n").encode())
        os._exit(0)
    """
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "def add(a, b):\n    return a + b\n", "test_calc.py": PYTEST_FILE},
        {"calc.py": forging})
    (calc,) = grade(student, reference).tests
    why = ("E   Failed: Execution of pytest failed, ERROR: pytest collected 2001 tests, more than "
           "the 2000 gradehook grades in a run")
    assert [(t.name, t.result, t.details) for t in calc.tests] == [
        ("test_small", "FAILED", why), ("test_big", "FAILED", why),
        ("test_skipped", "FAILED", why), ("test_param", "FAILED", why)]
    assert (calc.status, calc.result) == ("CRASHED", "FAILED")


def test_test_files_collecting_more_tests_than_a_run_reports_with_the_reference_are_a_course_error(
        tmp_path: Path):
    # Before, every student failed each test, CRASHED, 'pytest collected 2001 tests, more than the
    # 2000 gradehook grades in a run', scored 0 for the course's parametrize.
    many = """
        import pytest
        from calc import add

        @pytest.mark.parametrize("number", range(2001))
        def test_add(number):
            assert add(number, 0) == number
    """
    student, reference = make_assignment(tmp_path, None, {**CALC, "test_calc.py": many}, CALC)
    report = grade(student, reference)
    assert (report.gradehook.course_error, report.gradehook.score, report.tests) == (
        "its pytest files collect 2001 tests with the reference solution, more than the 2000 "
        "gradehook grades in a run: spread them over more assignments, or parametrize less",
        None, [])


@pytest.mark.parametrize("entry", ["secret/test_secret.py", "secret", "./secret/"])
def test_hidden_test_files_run_apart_from_the_visible_ones(tmp_path: Path, entry: str):
    # The student's code reads the test files of its run: in a visible test's failure it
    # showed a hidden test file (or its folder's conftest.py) to the student. An entry naming
    # the folder of hidden test files hid none of them.
    seen = """
        import os
        def seen():
            return sorted(os.path.relpath(os.path.join(folder, file), "/opt/gradehook/tests")
                          for folder, _, files in os.walk("/opt/gradehook/tests") for file in files)
    """
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "",
         "conftest.py": "",
         "test_shown.py": "from calc import seen\ndef test_shown():\n"
                          "    assert seen() == ['conftest.py', 'test_shown.py', "
                          "'test_spare.py']\n",
         "secret/conftest.py": "",
         "secret/test_secret.py": "from calc import seen\ndef test_secret():\n"
                                  "    assert seen() == ['conftest.py', 'secret/conftest.py',\n"
                                  "                      'secret/test_secret.py']\n",
         "test_spare.py": "def test_spare():\n    pass\n"},
        {"calc.py": seen},
        meta_yaml=f"properties:\n  hiddenTests: [{entry}]\n")
    report = grade(student, reference)
    assert [(c.name, [(t.name, t.result) for t in c.tests]) for c in report.tests] == [
        ("secret/test_secret.py", [("test_secret", "PASSED")]),
        ("test_shown.py", [("test_shown", "PASSED")]),
        ("test_spare.py", [("test_spare", "PASSED")])]
    assert report.gradehook.hidden == ["secret/test_secret.py"]


def test_a_test_files_folder_holding_test_files_runs_them_once(tmp_path: Path):
    """A meta.yaml testFiles folder that holds test files as well as their data (`checks`,
    checks/test_calc.py opening checks/cases.txt) was copied over the test files already in the
    run's folder: 'File exists', and every run of the assignment ended as our error."""
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "checks/cases.txt": "3",
         "checks/test_calc.py": "from pathlib import Path\nfrom calc import add\n\n\n"
                                "def test_add():\n"
                                "    cases = Path(__file__).parent / 'cases.txt'\n"
                                "    assert add(1, 2) == int(cases.read_text())\n"},
        CALC, meta_yaml="properties:\n  testFiles: [checks]\n")
    report = grade(student, reference)
    assert [(c.name, [(t.name, t.result, t.details) for t in c.tests]) for c in report.tests] \
        == [("checks/test_calc.py", [("test_add", "PASSED", None)])]


def test_test_files_lie_where_they_lie_in_the_assignments_folder(tmp_path: Path):
    """As when staff run pytest in the assignment's folder: before, testFiles landed at the top of
    the tests' folder by their name alone, so a test file opening its data beside it
    (tests/test_calc.py reading tests/cases.txt and tests/data/more.txt) found nothing."""
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "tests/cases.txt": "3", "tests/data/more.txt": "4",
         "tests/test_calc.py": "from pathlib import Path\nfrom calc import add\n\n"
                               "HERE = Path(__file__).parent\n\n\ndef test_add():\n"
                               "    assert add(1, 2) == int((HERE / 'cases.txt').read_text())\n"
                               "    assert add(2, 2) == int((HERE / 'data/more.txt')"
                               ".read_text())\n"},
        CALC, meta_yaml="properties:\n  testFiles: [tests/data, tests/cases.txt]\n")
    report = grade(student, reference)
    assert [(c.name, [(t.name, t.result, t.details) for t in c.tests]) for c in report.tests] \
        == [("tests/test_calc.py", [("test_add", "PASSED", None)])]


@pytest.mark.parametrize("student_files", [{}, {"calc.py": "def add(a, b):\n    return 0\n"}])
def test_the_whole_assignment_folder_as_test_files_is_a_course_error(tmp_path: Path,
                                                                     student_files: dict):
    """Before, testFiles: [.] put the reference's calc.py at the top of the tests' folder, which is
    on sys.path (first for a test file there): a student who submitted no calc.py, or a wrong
    one, passed every test with the reference's."""
    tests = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    student, reference = make_assignment(
        tmp_path, None, {**CALC, "test_top.py": tests, "tests/test_sub.py": tests},
        student_files, meta_yaml="properties:\n  testFiles: [.]\n")
    report = grade(student, reference)
    assert (report.gradehook.course_error, report.gradehook.tests_passed) == (
        "meta.yaml line 2: properties.testFiles[0]: . is the assignment's whole folder, the "
        "reference solution with it, which the student's code would import and read in its run: "
        "list the files and folders the tests need", 0)


def test_test_files_of_one_name_in_different_folders_each_lie_beside_their_test_files(
        tmp_path: Path):
    """In pytest mode testFiles keep their folders, so two of one name are no clash: each test
    file reads its own expected.txt, as when staff run pytest in the assignment's folder."""
    reads = "from pathlib import Path\nfrom calc import add\n\n\ndef test_add():\n" \
            "    assert str(add({a}, 2)) == (Path(__file__).parent / 'expected.txt').read_text()\n"
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "a/expected.txt": "3", "b/expected.txt": "4",
         "a/test_a.py": reads.format(a=1), "b/test_b.py": reads.format(a=2)},
        CALC, meta_yaml="properties:\n  testFiles: [a/expected.txt, b/expected.txt]\n")
    report = grade(student, reference)
    assert (report.gradehook.course_error, [(c.name, [(t.name, t.result) for t in c.tests])
                                            for c in report.tests]) == (
        None, [("a/test_a.py", [("test_add", "PASSED")]),
               ("b/test_b.py", [("test_add", "PASSED")])])


def test_a_hidden_test_files_test_file_sharing_a_name_with_a_visible_ones_stays_out_of_its_run(
        tmp_path: Path):
    """Before, a/test_a.py's 'expected.txt' named b/expected.txt too, which only the hidden
    b/test_b.py reads: the visible run held it, and the student's code read and showed it."""
    reads = "from pathlib import Path\nfrom calc import add\n\n\ndef test_add():\n" \
            "    assert str(add({a}, 2)) == (Path(__file__).parent / 'expected.txt').read_text()\n"
    lists_tests = f"import os\n\nTESTS = {TESTS_DIR!r}\n\n\ndef add(a, b):\n" \
                  "    return sorted(os.path.relpath(os.path.join(folder, name), TESTS)\n" \
                  "                  for folder, _, names in os.walk(TESTS)\n" \
                  "                  for name in names if name.endswith('.txt'))\n"
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "a/expected.txt": "3", "b/expected.txt": "4",
         "a/test_a.py": reads.format(a=1), "b/test_b.py": reads.format(a=2)},
        {"calc.py": lists_tests},
        meta_yaml="properties:\n  testFiles: [a/expected.txt, b/expected.txt]\n"
                  "  hiddenTests: [b/test_b.py]\n")
    visible, hidden = grade(student, reference).tests
    assert [(visible.name, visible.tests[0].details.splitlines()[-1]),
            (hidden.name, hidden.tests[0].details.splitlines()[-1])] == [
        ("a/test_a.py", "E     + ['a/expected.txt']"),
        ("b/test_b.py", "E     + ['a/expected.txt', 'b/expected.txt']")]


def test_a_test_file_in_a_subfolder_imports_a_test_file_at_the_top_without_a_conftest(
        tmp_path: Path):
    """As `python -m pytest` in the assignment's folder has it: before, only a test file's own
    folder was on sys.path, and tests/sub/test_calc.py failed as 'importing tests/sub/test_calc.py
    failed: ModuleNotFoundError: No module named 'helpers'' unless the course added a conftest.py
    at the top."""
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "helpers.py": "EXPECTED = 3\n",
         "tests/sub/test_calc.py": "from calc import add\nfrom helpers import EXPECTED\n\n\n"
                                   "def test_add():\n    assert add(1, 2) == EXPECTED\n"},
        CALC, meta_yaml="properties:\n  testFiles: [helpers.py]\n")
    report = grade(student, reference)
    assert [(c.name, [(t.name, t.result, t.details) for t in c.tests]) for c in report.tests] \
        == [("tests/sub/test_calc.py", [("test_add", "PASSED", None)])]


def test_a_hidden_tests_entry_naming_no_test_file_is_a_course_error_showing_students_its_place(
        tmp_path: Path):
    """Before, an entry naming no test file (a typo, a single test's node id) hid nothing: the
    test file staff meant to hide ran beside the visible ones and was shown to students."""
    student, reference = make_assignment(
        tmp_path, None, {**CALC, "test_calc.py": TEST_CALC,
                         "secret/test_secret.py": "def test_secret():\n    pass\n"},
        CALC, meta_yaml="properties:\n  hiddenTests:\n    - secret/test_secert.py\n"
                        "    - secrte\n    - test_calc.py::test_add\n")
    report = grade(student, reference)
    assert (report.gradehook.score, report.tests) == (None, [])
    assert report.gradehook.course_error.splitlines() == [
        "meta.yaml line 3: properties.hiddenTests[0]: no test file (test_*.py) is named "
        "'secret/test_secert.py' or lies in a folder of that name, so this entry hides nothing; "
        "did you mean secret/test_secret.py?",
        "meta.yaml line 4: properties.hiddenTests[1]: no test file (test_*.py) is named "
        "'secrte' or lies in a folder of that name, so this entry hides nothing; did you mean "
        "secret?",
        "meta.yaml line 5: properties.hiddenTests[2]: hiddenTests hides whole test files, not "
        "single tests: name the test file test_calc.py, or move the tests to hide into a test "
        "file of their own"]
    assert report.gradehook.course_error_for_students.splitlines() == [
        "meta.yaml line 3: properties.hiddenTests[0]: a problem with a hidden test",
        "meta.yaml line 4: properties.hiddenTests[1]: a problem with a hidden test",
        "meta.yaml line 5: properties.hiddenTests[2]: a problem with a hidden test",
        "the course's staff see the whole cause in GET /api/runs"]


def test_test_classes_fixtures_and_imported_tests_are_collected_as_defined(tmp_path: Path):
    test_file = """
        import pytest
        from calc import add
        from helpers import test_imported

        @pytest.fixture
        def test_data():
            return 2

        def test_uses_fixture(test_data):
            assert add(test_data, 1) == 3

        class TestAdd:
            @pytest.mark.parametrize("a", [1, 2])
            def test_zero(self, a):
                assert add(a, 0) == a

            def helper(self):
                pass

        class TestNotCollected:
            def __init__(self):
                pass

            def test_never(self):
                pass
    """
    student, reference = make_assignment(
        tmp_path, None,
        {"calc.py": "def add(a, b):\n    return a + b\n", "test_calc.py": test_file,
         "meta.yaml": "properties:\n  testFiles: [helpers.py]\n",
         "helpers.py": "def test_imported():\n    pass\n"},
        {"calc.py": "def add(a, b):\n    return a + b\n"})
    report = grade(student, reference)
    (calc,) = report.tests
    assert [(t.name, t.result) for t in calc.tests] == [
        ("test_imported", "PASSED"), ("test_uses_fixture", "PASSED"),
        ("TestAdd::test_zero[1]", "PASSED"), ("TestAdd::test_zero[2]", "PASSED")]
    assert report.gradehook.score == 1.0


def test_defined_tests_are_top_level_ones_and_names_come_from_the_whole_file():
    assert defined_tests(b"def test_a(:\n") is None
    defined = defined_tests(b"if True:\n    def test_hidden():\n        pass\n"
                            b"def test_a():\n    pass\nasync def test_b():\n    pass\n")
    assert defined.required == ("test_a", "test_b")
    assert defined.defines("test_hidden") and not defined.defines("test_forged")


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


def test_a_comparison_hides_the_collections_meta_yaml_names_and_refuses_an_entry_naming_none(
        tmp_path: Path):
    """Before, an entry naming none of the comparison's collections (`Program outptu`) hid
    nothing: the reference's output was shown to students in the output's failure."""
    reference = {"main.py": "print(4711)\n"}
    hidden = make_assignment(tmp_path / "hidden", None, reference, {"main.py": "print(1)\n"},
                             meta_yaml="properties:\n  hiddenTests: [Program output]\n")
    assert grade(*hidden).gradehook.hidden == ["Program output"]
    misspelt = make_assignment(tmp_path / "misspelt", None, reference,
                               {"main.py": "print(1)\n"},
                               meta_yaml="properties:\n  hiddenTests: [Program outptu]\n")
    report = grade(*misspelt)
    assert (report.gradehook.score, report.tests) == (None, [])
    assert report.gradehook.course_error == (
        "meta.yaml line 2: properties.hiddenTests[0]: the output comparison has no collection "
        "named 'Program outptu', so this entry hides nothing; did you mean Program output?")
    assert report.gradehook.course_error_for_students.splitlines()[0] == (
        "meta.yaml line 2: properties.hiddenTests[0]: a problem with a hidden test")


def test_a_comparison_passes_for_an_identical_solution(tmp_path: Path):
    files = {"main.py": "import sys\nprint(sys.argv[0].endswith('main.py'))\n"}
    student, reference = make_assignment(tmp_path, None, files, files)
    report = grade(student, reference)
    assert (report.result, report.gradehook.score) == ("PASSED", 1.0)


def test_a_comparison_with_several_programs_and_none_named_is_a_course_error(tmp_path: Path):
    """Before, no program ran and every student who had the files passed."""
    files = {"shapes.py": "print('square')\n", "util.py": "print('helper')\n"}
    student, reference = make_assignment(tmp_path, None, {"shapes.py": "print('circle')\n",
                                                          "util.py": ""}, files)
    report = grade(student, reference)
    assert (report.gradehook.score, report.course_error) == (None, (
        "the default comparison cannot tell which program to run: the reference has 2 Python "
        "files at its top (shapes.py, util.py) and no main.py; name the program main.py, list "
        "it first in meta.yaml's studentSubmissionFiles, or add test.yaml or pytest files"))


CALC = {"calc.py": "def add(a, b):\n    return a + b\n"}
TEST_CALC = "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"


def _engine_error_grading_calc(tmp_path: Path, python: str) -> str:
    """Grade a pytest-mode assignment on a sandbox interpreter; return the engine's error."""
    student, reference = make_assignment(tmp_path, None, {**CALC, "test_calc.py": TEST_CALC},
                                         CALC)
    with pytest.raises(EngineError) as caught:
        grade(student, reference, settings=SandboxSettings(python=python))
    return str(caught.value)


def test_a_sandbox_interpreter_without_pytest_is_our_error_not_a_zero(tmp_path: Path,
                                                                      bare_python: str):
    assert _engine_error_grading_calc(tmp_path, bare_python) == (
        f"the sandbox interpreter {bare_python} has no pytest module, which assignments without "
        f"test.yaml run: install pytest into it (the `runtime` extra has it) or set [sandbox] "
        f"python to an interpreter that has it")


def test_a_sandbox_interpreter_with_a_pytest_older_than_8_is_our_error_not_a_zero(
        tmp_path: Path, old_pytest_python: str):
    """Before, the runner ran on a sandbox interpreter's pytest 7 (older than the `runtime`
    extra's pytest>=8) and every test of every file failed with the runner's own crash,
    'pytest stopped on AttributeError: module pytest has no attribute Directory', scored 0."""
    assert _engine_error_grading_calc(tmp_path, old_pytest_python) == (
        f"the sandbox interpreter {old_pytest_python} has pytest 7.4.4, older than pytest 8, which "
        f"assignments without test.yaml need: install pytest 8 or newer into it (the `runtime` "
        f"extra has it) or set [sandbox] python to an interpreter that has it")


def test_student_code_saying_pytest_is_missing_is_graded_not_taken_for_our_error(
        tmp_path: Path):
    """The runner announces it started before any of the student's code runs: a module that
    prints pytest's missing-module error and exits cannot pass for a missing pytest."""
    # Past pytest's capture: to every descriptor, the saved stderr among them.
    forged = ("import os\nfor fd in range(64):\n    try:\n        os.write(fd, b\"\\n"
              "ModuleNotFoundError: No module named 'pytest'\\n\")\n    except OSError:\n"
              "        pass\nos._exit(1)\n")
    student, reference = make_assignment(
        tmp_path, None, {**CALC, "test_calc.py": TEST_CALC}, {"calc.py": forged})
    report = grade(student, reference)
    assert (report.result, report.gradehook.score) == ("FAILED", 0.0)


def test_a_pytest_run_the_sandbox_stops_names_the_limit_or_signal(tmp_path: Path):
    tests = (f"{TEST_CALC}\ndef test_big():\n    assert add(200 * 1024 * 1024, 0)\n"
             f"\ndef test_abort():\n    assert add(-1, 0) == -1\n")
    student_code = ("import os\n\ndef add(a, b):\n    if a < 0:\n        os.abort()\n"
                    "    return len(bytearray(a)) + b if a > 10 else a + b\n")
    meta = "properties:\n  executionBackend:\n    settings: {memoryLimitMB: 64}\n"
    student, reference = make_assignment(
        tmp_path, None, {**CALC, "test_calc.py": tests, "meta.yaml": meta},
        {"calc.py": student_code})
    memory = grade(student, reference).tests[0]
    prefix = "E   Failed: Execution of pytest failed, ERROR: "
    # With cgroups the sandbox stops the run; with rlimits only, the allocation fails.
    assert [(t.name, t.details) for t in memory.tests][:2] in (
        [("test_add", None), ("test_big", prefix + "memory limit of 64 MB exceeded")],
        [("test_add", None), ("test_big", "E   MemoryError")])
    (tmp_path / "reference" / "test_calc.py").write_text(
        f"{TEST_CALC}\ndef test_abort():\n    assert add(-1, 0) == -1\n", encoding="utf-8")
    aborted = grade(student, reference).tests[0]
    assert [(t.name, t.details) for t in aborted.tests] == [
        ("test_add", None), ("test_abort", prefix + "process was killed by signal SIGABRT")]


def test_student_code_that_stops_pytest_is_named_as_the_reason(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None, {**CALC, "test_calc.py": TEST_CALC},
        {"calc.py": "def add(a, b):\n    raise KeyboardInterrupt\n"})
    (calc,) = grade(student, reference).tests
    assert calc.status == "CRASHED"
    assert [(t.name, t.details) for t in calc.tests] == [
        ("test_add", "E   Failed: Execution of pytest failed, ERROR: pytest stopped on "
                     "KeyboardInterrupt")]


def test_a_hidden_test_that_stops_pytest_leaves_the_visible_tests_graded_without_its_words(
        tmp_path: Path):
    """Before, a hidden test file's test raising KeyboardInterrupt('the answer is 42') stopped
    pytest, and the visible tests not run after it read `... pytest stopped on
    KeyboardInterrupt: the answer is 42`, the hidden test's words. Hidden test files now run in
    a sandbox of their own: the visible tests run and pass."""
    hidden = "def test_hidden():\n    raise KeyboardInterrupt('the answer is 42')\n"
    student, reference = make_assignment(
        tmp_path, None, {**CALC, "test_a_hidden.py": hidden, "test_calc.py": TEST_CALC},
        CALC, meta_yaml="properties:\n  hiddenTests: [test_a_hidden.py]\n")
    report = grade(student, reference)

    assert report.gradehook.hidden == ["test_a_hidden.py"]
    assert {collection.name: {(test.result, test.details) for test in collection.tests}
            for collection in report.tests} == {
        "test_a_hidden.py": {("FAILED", "E   Failed: Execution of pytest failed, ERROR: pytest "
                                        "stopped on KeyboardInterrupt: the answer is 42")},
        "test_calc.py": {("PASSED", None)}}


def test_pytest_files_and_conftest_files_in_subfolders_run(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef one():\n"
                                      "    return 1\n",
         "tests/unit/test_deep.py": "from calc import add\n\ndef test_deep(one):\n"
                                    "    assert add(one, 2) == 3\n"},
        {"calc.py": "def add(a, b):\n    return a - b\n"})
    report = grade(student, reference)
    assert report.gradehook.mode == "pytest"
    assert [(c.name, [(t.name, t.details) for t in c.tests]) for c in report.tests] == [
        ("tests/unit/test_deep.py",
         [("test_deep", "E   AssertionError: assert -1 == 3\nE    +  where -1 = add(1, 2)")])]
