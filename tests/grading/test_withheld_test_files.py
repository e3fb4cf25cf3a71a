"""A testFile withheld from a student's run, which the course's code loads by a name it builds as
it runs, is the course's error, never the students' failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.grading import grade
from pipeline.grading.withheld_files import withheld_file_named
from tests.grading.builders import make_assignment, outcomes

CALC = {"calc.py": "def add(a, b):\n    return a + b\n"}
HIDDEN_TEST = "from calc import add\n\n\ndef test_secret():\n    assert add(2, 2) == 4\n"
# A visible test file opening its data by a path it builds as it runs, and one importing its
# helper by a name it builds so: no reading of their code finds either testFile.
OPENS_BUILT_PATH = ("from pathlib import Path\nfrom calc import add\n\nDATA = Path(__file__).parent"
                    "\n\n\ndef test_case():\n    n = 1\n"
                    "    assert add(1, 2) == int((DATA / f'case{n}.txt').read_text())\n")
IMPORTS_BUILT_NAME = ("import importlib\nfrom calc import add\n\n\ndef test_helper():\n"
                      "    helper = importlib.import_module('secret_' + 'helper')\n"
                      "    assert add(1, 2) == helper.EXPECTED\n")
# A visible test file whose student forgot a file of their own: the student's failure.
OPENS_STUDENTS_FILE = ("from pathlib import Path\n\n\ndef test_notes():\n"
                       "    assert Path('notes.txt').read_text() == 'done'\n")


@pytest.mark.parametrize("test_file, loaded, message", [
    (OPENS_BUILT_PATH, "case1.txt",
     "E   FileNotFoundError: [Errno 2] No such file or directory: 'case1.txt'"),
    (IMPORTS_BUILT_NAME, "secret_helper.py",
     "E   ModuleNotFoundError: No module named 'secret_helper'")],
    ids=["data file", "helper module"])
def test_a_visible_test_file_loading_a_test_file_by_a_built_name_is_a_course_error(
        tmp_path: Path, test_file: str, loaded: str, message: str):
    """Before, beside hidden test files, a visible test file loading a testFile by a name it built
    as it ran (`DATA / f'case{n}.txt'`) failed for every student on the file its run lacked, and
    was scored as their failure. It is now the course's error, naming the testFile and how to
    have it in the run; the run still lacks it, so that no visible test can show a hidden one's
    data, and a file the student forgot is still theirs to fail on."""
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "test_visible.py": test_file, "test_notes.py": OPENS_STUDENTS_FILE,
         "test_secret.py": HIDDEN_TEST, "case1.txt": "3", "secret_helper.py": "EXPECTED = 3\n"},
        CALC, meta_yaml="properties:\n  hiddenTests: [test_secret.py]\n"
                        "  testFiles: [case1.txt, secret_helper.py]\n")

    report = grade(student, reference)

    error = (f"test_visible.py loads the testFile {loaded} by a name built as it runs, so the "
             "visible test files' run lacks it and every student fails: beside hidden test "
             "files, that run holds only the meta.yaml testFiles the visible test files import "
             f"or write the name of in a string, or lie in; write '{loaded}' in test_visible.py,"
             " or move it into a testFiles folder whose name test_visible.py writes")
    assert (report.gradehook.course_error, report.gradehook.course_error_for_students,
            report.gradehook.score) == (error, error, None)
    found = outcomes(report)
    assert [found[test] for test in sorted(found)] == [
        ("FAILED", "E   FileNotFoundError: [Errno 2] No such file or directory: 'notes.txt'"),
        ("PASSED", None), ("FAILED", message)]


def test_a_conftest_or_a_test_file_loading_a_withheld_test_files_folder_is_a_course_error(
        tmp_path: Path):
    """A folder's conftest.py importing a testFile by a name built as it runs is named as such,
    and a file read inside a testFiles folder whose name is built so names the folder."""
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "test_secret.py": HIDDEN_TEST, "secret_helper.py": "EXPECTED = 3\n",
         "cases/case1.txt": "3",
         "sub/conftest.py": "import importlib\n\n"
                            "helper = importlib.import_module('secret_' + 'helper')\n",
         "sub/test_sub.py": "def test_sub():\n    pass\n",
         "test_cases.py": "from pathlib import Path\nfrom calc import add\n\n\n"
                          "def test_case():\n"
                          "    cases = Path(__file__).parent / ('ca' + 'ses')\n"
                          "    assert add(1, 2) == int((cases / 'case1.txt').read_text())\n"},
        CALC, meta_yaml="properties:\n  hiddenTests: [test_secret.py]\n"
                        "  testFiles: [secret_helper.py, cases]\n")

    report = grade(student, reference)

    assert [line.split(", so ")[0] for line in report.gradehook.course_error.splitlines()] == [
        "sub/conftest.py loads the testFile secret_helper.py by a name built as it runs",
        "test_cases.py loads the testFile cases by a name built as it runs"]
    assert report.gradehook.course_error.splitlines()[1].endswith(
        "write 'cases' in test_cases.py, or move it into a testFiles folder whose name "
        "test_cases.py writes")


def _test_yaml_assignment(tmp_path: Path, collection: str, code: str,
                          hidden: bool = False) -> tuple[Path, Path]:
    """Write a test.yaml assignment of a collection `loads` (whose code is code) beside one whose
    student forgot a module of their own, with two testFiles: a helper and its data."""
    hidden_tests = "  hiddenTests: [loads]\n" if hidden else ""
    return make_assignment(tmp_path, f"""
        properties:
          tests:
            - name: {collection}
              entryPoint: ex.py
{code}
            - name: forgotten
              entryPoint: uses_own.py
              tests:
                - name: x
        """, {"ex.py": "x = 2\n", "uses_own.py": "x = 2\n",
              "secret_helper.py": "from pathlib import Path\n\n\ndef double(v):\n"
                                  "    return 2 * v\n\n\ndef case(n):\n"
                                  "    return (Path(__file__).parent / f'case{n}.txt')"
                                  ".read_text()\n",
              "case1.txt": "4"},
        {"ex.py": "x = 2\n", "uses_own.py": "import own_helpers\nx = 2\n"},
        meta_yaml=f"properties:\n{hidden_tests}  testFiles: [secret_helper.py, case1.txt]\n")


SET_UP_IMPORTS_BUILT_NAME = """
              setUpCode:
                - import importlib
                - helper = importlib.import_module('secret_' + 'helper')
              tests:
                - name: helper.double(x)
"""
HELPER_OPENS_BUILT_PATH = """
              setUpCode: import secret_helper
              tests:
                - name: secret_helper.case(1)
"""


@pytest.mark.parametrize("code, loaded, details", [
    (SET_UP_IMPORTS_BUILT_NAME, "secret_helper.py",
     "E   Failed: setupCode ['import importlib', \"helper = importlib.import_module('secret_' + "
     "'helper')\"] could not be executed"),
    (HELPER_OPENS_BUILT_PATH, "case1.txt",
     "E   KeyError: 'Variable `secret_helper.case(1)` not found in student namespace'")],
    ids=["setUpCode imports", "test name opens"])
def test_a_collection_loading_a_test_file_by_a_built_name_is_a_course_error(
        tmp_path: Path, code: str, loaded: str, details: str):
    """Before, a student's run held only the testFiles its collection's code names, and one
    whose code loaded a testFile by a name built as it ran (`import_module('secret_' +
    'helper')`, a helper opening f'case{n}.txt') failed for every student, scored as theirs,
    while the reference's run, which holds every testFile, passed. It is now the course's error,
    naming the testFile and how to have it in the run; the run still lacks it, and a module the
    student forgot is still theirs to fail on."""
    student, reference = _test_yaml_assignment(tmp_path, "loads", code)

    report = grade(student, reference)

    error = (f"collection `loads` loads the testFile {loaded} by a name built as it runs, so "
             "students' runs lack it and fail: a student's run holds only the meta.yaml "
             "testFiles named in the collection's setUpCode, tearDownCode and test names (or in "
             f"the testFiles they name); write '{loaded}' there, or move it into a testFiles "
             "folder named there")
    assert (report.gradehook.course_error, report.gradehook.course_error_for_students,
            report.gradehook.score) == (error, error, None)
    assert [(test, result, first) for (_, test), (result, first) in outcomes(report).items()] \
        == [(report.tests[0].tests[0].name, "FAILED", details),
            ("x", "FAILED", "E   Failed: Execution of "
                            f"{student / 'uses_own.py'} failed, ERROR: No module named "
                            "'own_helpers'")]


def test_students_read_nothing_of_a_hidden_collection_loading_a_withheld_test_file(
        tmp_path: Path):
    """A hidden collection whose code loads a testFile by a name built as it runs is the course's
    error too; students read it without the collection's name or the testFile's."""
    student, reference = _test_yaml_assignment(tmp_path, "loads", SET_UP_IMPORTS_BUILT_NAME,
                                               hidden=True)

    report = grade(student, reference)

    assert report.gradehook.course_error.startswith(
        "collection `loads` loads the testFile secret_helper.py by a name built as it runs")
    assert report.gradehook.course_error_for_students.splitlines() == [
        "a hidden collection loads a testFile by a name built as it runs, so students' runs lack "
        "it and fail", "the course's staff see the whole cause in GET /api/runs"]


@pytest.mark.parametrize("message, named", [
    ("[Errno 2] No such file or directory: '/t/data/cases/case 1.txt'", "data"),
    ("/t/tables/week1.csv not found.", "tables/week1.csv"),
    ("No module named 'data'", "data"),
    ("No module named 'checks.rules'", "checks/rules.py"),
    ("No module named 'rules'", "checks/rules.py"),
    ("cannot import name 'rules' from 'checks' (/t/checks/__init__.py)", "checks/rules.py"),
    ("[Errno 2] No such file or directory: '/t/data.txt'", None),
    ("[Errno 2] No such file or directory: '/t/tables/week1.csv.bak'", None),
    ("[Errno 2] No such file or directory: 'data'", None),
    ("No module named 'week1'", None),
    ("No module named 'other.rules'", None),
    ("cannot import name 'check' from 'checks' (/t/checks/__init__.py)", None)])
def test_a_withheld_test_file_is_named_by_its_path_in_the_tests_folder_or_by_its_module(
        message: str, named: str | None):
    """A path at or inside a withheld testFile in the run's tests' folder names it, as does the
    module it would be (a folder's: a package), by its path from any folder above it; a data
    file has no module, and another file of the student's folder or of the tests' is no withheld
    testFile."""
    assert withheld_file_named(message, {"data", "tables/week1.csv", "checks/rules.py"},
                               "/t") == named


# A student's program naming a testFile withheld from its run in its own error: it never loads
# the course's file, so the failure is the student's.
NAMES_WITHHELD = ("def add(a, b):\n"
                  "    raise ModuleNotFoundError(\"No module named 'secret_helper'\")\n")


def test_a_students_program_naming_a_withheld_test_file_fails_as_theirs_in_pytest_mode(
        tmp_path: Path):
    """Before, a student's program raising an error that names a testFile withheld from the
    visible run (`No module named 'secret_helper'`) turned its failing tests into an unscored
    course error. The course's test files load no such file with the reference solution, so
    the failure is now the student's, scored."""
    student, reference = make_assignment(
        tmp_path, None,
        {**CALC, "test_visible.py": "from calc import add\n\n\ndef test_add():\n"
                                    "    assert add(1, 2) == 3\n",
         "test_secret.py": HIDDEN_TEST, "secret_helper.py": "EXPECTED = 3\n"},
        {"calc.py": NAMES_WITHHELD}, meta_yaml="properties:\n  hiddenTests: [test_secret.py]\n"
                                               "  testFiles: [secret_helper.py]\n")

    report = grade(student, reference)

    assert (report.gradehook.course_error, report.gradehook.score) == (None, 0.0)


def test_a_students_program_naming_a_withheld_test_file_fails_as_theirs_with_test_yaml(
        tmp_path: Path):
    """Before, a student's program raising an error that names a testFile withheld from its run
    turned a collection's failing tests into an unscored course error; the collection's code
    loads no such file with the reference solution, so the failure is now the student's."""
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: adds
              entryPoint: calc.py
              tests:
                - name: add(1, 2)
        """, {**CALC, "secret_helper.py": "EXPECTED = 3\n"}, {"calc.py": NAMES_WITHHELD},
        meta_yaml="properties:\n  testFiles: [secret_helper.py]\n")

    report = grade(student, reference)

    assert (report.gradehook.course_error, report.gradehook.score) == (None, 0.0)
