"""What a failed pytest-mode test tells the student: the assertion explained, their line, why."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
from pipeline.grading import grade, pytest_mode, report_to_json
from pipeline.grading.runner import MESSAGE_LIMIT
from pipeline.reports import comment_marker, mr_comment_markdown, result_page_html
from tests.grading.builders import make_assignment
from tests.reports.report_samples import run

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
ALL_TESTS = ("test_squares", "test_shout", "test_counts", "test_mean")
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


HELPER = "def divide(total, count):\n    return total / count\n"


@pytest.mark.parametrize("mean, files, error, place", [
    ("def mean(values):\n    return divide(sum(values), len(values) - 4)\n",
     {"calc/ops.py": HELPER}, "ZeroDivisionError: division by zero",
     ("calc/ops.py", 2, "return total / count")),
    ("def mean(values):\n    return mean(values) + 1\n", {},
     "RecursionError: maximum recursion depth exceeded",
     ("stats.py", 14, "return mean(values) + 1")),
    ("import sys\n\n\ndef mean(values):\n    sys.exit(0)\n", {},
     "SystemExit: 0", ("stats.py", 17, "sys.exit(0)")),
])
def test_an_error_of_the_students_code_names_their_line(tmp_path, mean, files, error, place):
    """Before, a test whose call into the student's code raised showed the error alone
    (`ZeroDivisionError: division by zero`), not which of their lines raised it."""
    prefix = REFERENCE[:REFERENCE.index("def mean")]
    imports = "from calc.ops import divide\n" if files else ""
    graded = _graded(tmp_path, {"stats.py": imports + prefix + mean, **files})

    file, lineno, line = place
    assert graded["test_mean"] == ("FAILED", f"E   {error}", {
        "raised": {"error": error, "file": file, "lineno": lineno, "line": line}})
    assert {name: result for name, (result, _, _) in graded.items()} == {
        "test_squares": "PASSED", "test_shout": "PASSED", "test_counts": "PASSED",
        "test_mean": "FAILED"}


def test_a_place_that_is_not_a_line_of_the_students_files_is_left_out():
    """The events come from the student's process: a place of another shape is no runner's."""
    def place_of(place):
        return pytest_mode._place({"event": "test", "nodeid": "test_stats.py::test_mean",
                                   "outcome": "failed", "message": "ValueError: no",
                                   "place": place})

    assert place_of({"file": "stats.py", "lineno": 2, "line": None}) == {
        "file": "stats.py", "lineno": 2, "line": None}
    assert place_of({"file": "stats.py", "lineno": 2, "line": "x" * 3000})["line"].endswith(
        "[... cut: 3000 characters in all]")
    for forged in (None, "stats.py, line 2", {"file": "stats.py", "lineno": 0, "line": "x"},
                   {"file": "stats.py", "lineno": 2}, {"file": "stats.py", "lineno": True,
                                                       "line": "x"}):
        assert place_of(forged) is None


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


def test_a_test_stopped_at_its_time_limit_names_no_line_of_an_error_raised_after(tmp_path):
    """Code that catches the stop and raises another error still fails on its time limit: the
    line of that error is not why the test failed."""
    student = REFERENCE + ("\n\ndef spins():\n    try:\n        count = 0\n        while True:\n"
                           "            count += 1\n    except BaseException:\n"
                           "        raise ValueError('gave up')\n")
    student_dir, reference = make_assignment(
        tmp_path, None,
        {"stats.py": REFERENCE, "test_stats.py": "import pytest\nfrom stats import spins\n\n\n"
                                                 "@pytest.mark.timeout(0.5)\ndef test_spins():\n"
                                                 "    spins()\n"},
        {"stats.py": student})
    (stats,) = grade(student_dir, reference).tests

    assert [(test.name, test.details, test.debug) for test in stats.tests] == [
        ("test_spins", "E   Failed: Timeout: the test took longer than its time limit of 0.5 "
                       "seconds; it was stopped in stats.py, line 20", None)]


@pytest.mark.parametrize("files, error, place", [
    ({"stats.py": "def mean(values)\n    return 0\n"},
     "SyntaxError: expected ':'", ("stats.py", 1, "def mean(values)")),
    ({"stats.py": "from calc.ops import divide\n",
      "calc/ops.py": "def divide(a, b):\n  return (a\n"},
     "SyntaxError: '(' was never closed", ("calc/ops.py", 2, "return (a")),
    ({"stats.py": "import numpyy\n"},
     "ModuleNotFoundError: No module named 'numpyy'", ("stats.py", 1, "import numpyy")),
    ({"stats.py": "\ntotal = undefined_name + 1\n"},
     "NameError: name 'undefined_name' is not defined",
     ("stats.py", 2, "total = undefined_name + 1")),
])
def test_a_test_file_whose_import_failed_in_the_students_code_names_their_line(
        tmp_path, files, error, place):
    """Before, a syntax error in the student's module failed the test file's import with
    `SyntaxError: expected ':'` alone: no file, no line."""
    graded = _graded(tmp_path, files)

    file, lineno, line = place
    reason = f"Failed: the test did not run, as importing test_stats.py failed: {error}"
    assert graded == {test: ("FAILED", f"E   {reason}", {
        "raised": {"error": reason, "file": file, "lineno": lineno, "line": line}})
        for test in ALL_TESTS}


def test_a_test_file_whose_own_import_failed_names_no_line_of_the_students(tmp_path):
    """The student's module lacks a function the test file imports: the error is raised in the
    test file, whose lines are not the student's. The module is named as the student knows it:
    before, Python's message named it by its path in the sandbox, `(/sandbox/work/stats.py)`."""
    graded = _graded(tmp_path, {"stats.py": "def mean(values):\n    return 0\n"})

    assert graded == {test: ("FAILED", "E   Failed: the test did not run, as importing "
                                       "test_stats.py failed: ImportError: cannot import name "
                                       "'counts' from 'stats' (stats.py)", None)
                      for test in ALL_TESTS}


def test_each_test_of_a_test_file_that_could_not_be_imported_fails_saying_why(tmp_path):
    """Before, a test file whose import failed (a student who has not written one function yet)
    was one failed line named by the file: 0 of 1 tests passed, where the file has four."""
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": TESTS},
        {"stats.py": REFERENCE[:REFERENCE.index("def mean")]})
    report = grade(student_dir, reference)
    (stats,) = report.tests

    reason = ("Failed: the test did not run, as importing test_stats.py failed: ImportError: "
              "cannot import name 'mean' from 'stats' (stats.py)")
    assert (stats.summary.passed, stats.summary.total) == (0, 4)
    assert {test.details for test in stats.tests} == {f"E   {reason}"}
    # The comment lists them in one row, as other tests that did not run.
    comment = mr_comment_markdown([(run(), json.loads(report_to_json(report)))],
                                  comment_marker("mr-1")).split("\n")
    assert f"| ❌ | all 4 tests (test\\_stats\\.py) |  |  | ` {reason} ` |" in comment


def test_an_import_stopped_at_its_time_limit_names_no_line_of_an_error_raised_after(tmp_path):
    """A module that catches the stop of its import and raises another error fails its test
    file's collection on the time limit: that error's line is not why."""
    student = ("try:\n    count = 0\n    while True:\n        count += 1\nexcept BaseException:\n"
               "    raise ValueError('gave up')\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": TESTS}, {"stats.py": student})
    (stats,) = grade(student_dir, reference,
                     settings=SandboxSettings(test_timeout_seconds=0.5)).tests

    assert [(test.name, test.details, test.debug) for test in stats.tests] == [
        (test, "E   Failed: the test did not run, as importing test_stats.py failed: Timeout: "
               "importing test_stats.py took longer than its time limit of 0.5 seconds; it was "
               "stopped in stats.py, line 3", None) for test in ALL_TESTS]


READS_INPUT = """\
import sys


def ask():
    return int(input("How many? "))


def whole():
    return sys.stdin.read()


def whole_bytes():
    return sys.stdin.buffer.read()
"""
INPUT_TESTS = """\
import io
import sys

import stats


def test_ask():
    assert stats.ask() == 3


def test_whole():
    assert stats.whole() == "3"


def test_whole_bytes():
    assert stats.whole_bytes() == b"3"


def test_ask_given_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("3\\n"))
    assert stats.ask() == 3


def test_ask_given_answers(monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "3")
    assert stats.ask() == 3
"""


def test_reading_input_the_tests_do_not_give_says_so_plainly(tmp_path):
    """Before, input() failed with pytest's own words, `OSError: pytest: reading from stdin while
    output is captured!  Consider using `-s`.`, advice the student cannot follow."""
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": READS_INPUT, "test_stats.py": INPUT_TESTS},
        {"stats.py": READS_INPUT})
    (stats,) = grade(student_dir, reference).tests

    error = "EOFError: the program reads input, but the tests give it none"
    assert [(test.name, test.result, test.details, test.debug) for test in stats.tests] == [
        ("test_ask", "FAILED", f"E   {error}", {"raised": {
            "error": error, "file": "stats.py", "lineno": 5,
            "line": 'return int(input("How many? "))'}}),
        ("test_whole", "FAILED", f"E   {error}", {"raised": {
            "error": error, "file": "stats.py", "lineno": 9, "line": "return sys.stdin.read()"}}),
        ("test_whole_bytes", "FAILED", f"E   {error}", {"raised": {
            "error": error, "file": "stats.py", "lineno": 13,
            "line": "return sys.stdin.buffer.read()"}}),
        ("test_ask_given_input", "PASSED", None, None),
        ("test_ask_given_answers", "PASSED", None, None),
    ]


def test_a_test_that_ended_the_run_stands_out_from_those_that_did_not_run(tmp_path):
    """Before, every test from the one whose code crashed the run on failed alike, 'Execution of
    pytest failed, ERROR: process was killed by signal SIGABRT': the student could not tell which
    of their functions crashed."""
    tests = ("import stats\n\n\ndef test_squares():\n    assert stats.squares(3) == [0, 1, 4]\n\n\n"
             "def test_mean():\n    assert stats.mean([1]) == 1\n\n\n"
             "def test_shout():\n    assert stats.shout('a') == 'A!'\n")
    student = REFERENCE.replace("def mean(values):\n",
                                "def mean(values):\n    import os\n    os.abort()\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": tests}, {"stats.py": student})
    report = grade(student_dir, reference)
    (stats,) = report.tests

    crashed = "Execution of pytest failed, ERROR: process was killed by signal SIGABRT"
    assert [(test.name, test.details) for test in stats.tests] == [
        ("test_squares", None), ("test_mean", f"E   Failed: {crashed}"),
        ("test_shout", "E   Failed: the test did not run, as the run ended during an earlier test: "
                       f"{crashed}")]
    comment = mr_comment_markdown([(run(), json.loads(report_to_json(report)))],
                                  comment_marker("mr-1")).split("\n")
    mean = comment.index("| ❌ | ` test_mean ` (test\\_stats\\.py) |  |  | ` Failed: "
                         f"{crashed} ` The program crashed \\(aborted\\, signal SIGABRT\\)\\. |")
    assert comment[mean + 1].startswith(
        "| ❌ | ` test_shout ` (test\\_stats\\.py) |  |  | ` Failed: the test did not run")


def test_a_program_reading_the_encoding_of_its_input_is_told_one(tmp_path):
    """Before, standard input named no encoding (None): a module reading
    `sys.stdin.encoding.lower()` as it was imported failed its test file with `AttributeError:
    'NoneType' object has no attribute 'lower'`, which a terminal never gives."""
    student = "import sys\n\nENCODING = sys.stdin.encoding.lower()\n\n\n" + READS_INPUT
    tests = "import stats\n\n\ndef test_encoding():\n    assert stats.ENCODING == 'utf-8'\n"
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": READS_INPUT, "test_stats.py": tests}, {"stats.py": student})
    (stats,) = grade(student_dir, reference).tests

    assert [(test.name, test.result, test.details) for test in stats.tests] == [
        ("test_encoding", "PASSED", None)]


def test_input_a_fixture_or_the_test_file_gives_is_read_by_the_test(tmp_path):
    """Before, standard input was replaced again at each phase of a test, so input a fixture gave
    (its setup) or the test file gave as it was imported was gone by the test's call: the test
    failed with `EOFError: the program reads input, but the tests give it none`."""
    tests = ("import io\nimport sys\n\nimport pytest\n\nimport stats\n\n"
             "sys.stdin = io.StringIO('4\\n')\n\n\n"
             "@pytest.fixture\ndef three(monkeypatch):\n"
             "    monkeypatch.setattr(sys, 'stdin', io.StringIO('3\\n'))\n\n\n"
             "def test_ask_given_input_by_a_fixture(three):\n    assert stats.ask() == 3\n\n\n"
             "def test_ask_given_input_by_the_test_file():\n    assert stats.ask() == 4\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": READS_INPUT, "test_stats.py": tests},
        {"stats.py": READS_INPUT})
    (stats,) = grade(student_dir, reference).tests

    assert [(test.name, test.result, test.details) for test in stats.tests] == [
        ("test_ask_given_input_by_a_fixture", "PASSED", None),
        ("test_ask_given_input_by_the_test_file", "PASSED", None)]


def test_input_closed_by_one_test_is_input_with_nothing_to_read_for_the_next(tmp_path):
    """Standard input stays for the session: one that a test's code closed would fail the next
    test's reading with `ValueError: I/O operation on closed file.`, not saying that the tests
    give the program no input."""
    student = READS_INPUT + "\n\ndef done():\n    sys.stdin.close()\n\n\n" \
        "def lines():\n    return [line for line in sys.stdin]\n"
    tests = ("import stats\n\n\ndef test_done():\n    stats.done()\n\n\n"
             "def test_lines():\n    assert stats.lines() == ['3\\n']\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": student, "test_stats.py": tests}, {"stats.py": student})
    (stats,) = grade(student_dir, reference).tests

    assert [(test.name, test.result, test.details) for test in stats.tests] == [
        ("test_done", "PASSED", None),
        ("test_lines", "FAILED",
         "E   EOFError: the program reads input, but the tests give it none")]


def test_a_run_ended_in_a_tests_teardown_fails_that_test_not_the_next_one(tmp_path):
    """Before, a run that the student's code ended in a fixture's teardown (here a module-scoped
    one, torn down after the file's last test) failed the first test of the next file with the
    crash, a test that never began, and the test whose teardown crashed passed."""
    closes = REFERENCE + "\n\ndef close():\n    import os\n    os.abort()\n"
    first = ("import pytest\n\nimport stats\n\n\n@pytest.fixture(scope='module')\n"
             "def table():\n    yield [0, 1, 4]\n    stats.close()\n\n\n"
             "def test_squares(table):\n    assert stats.squares(3) == table\n")
    second = "import stats\n\n\ndef test_shout():\n    assert stats.shout('a') == 'A!'\n"
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_a.py": first, "test_b.py": second},
        {"stats.py": closes})
    report = grade(student_dir, reference)

    crashed = "Execution of pytest failed, ERROR: process was killed by signal SIGABRT"
    assert {collection.name: [(test.name, test.result, test.details)
                              for test in collection.tests] for collection in report.tests} == {
        "test_a.py": [("test_squares", "FAILED", f"E   Failed: {crashed}")],
        "test_b.py": [("test_shout", "FAILED", "E   Failed: the test did not run, as the run "
                                               f"ended during an earlier test: {crashed}")]}


def test_a_failed_teardown_says_so_and_keeps_a_failure_of_the_test_itself(tmp_path):
    """Before, a fixture torn down after a passing test (a session's after the last test) that
    raised failed that test with its error alone, `RuntimeError: not open`, as if the test had
    failed; and a test whose own assertion failed showed that error in place of its own."""
    closes = REFERENCE + "\n\ndef close():\n    raise RuntimeError('not open')\n"
    conftest = ("import pytest\n\nimport stats\n\n\n@pytest.fixture(scope='session')\n"
                "def table():\n    yield [0, 1, 4]\n    stats.close()\n\n\n"
                "@pytest.fixture\ndef mean_table():\n    yield [2.5]\n    stats.close()\n")
    tests = ("from stats import mean, squares\n\n\ndef test_mean(mean_table):\n"
             "    assert mean([1, 2, 3, 4]) == 3\n\n\n"
             "def test_squares(table):\n    assert squares(3) == table\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "conftest.py": conftest, "test_stats.py": tests},
        {"stats.py": closes})
    (stats,) = grade(student_dir, reference).tests

    teardown = ("the test passed, but tearing down a fixture after it failed: "
                "RuntimeError: not open")
    assert [(test.name, test.result, test.details, test.debug) for test in stats.tests] == [
        ("test_mean", "FAILED", "E   AssertionError: assert 2.5 == 3\n"
                                "E    +  where 2.5 = mean([1, 2, 3, 4])", None),
        ("test_squares", "FAILED", f"E   {teardown}", {"raised": {
            "error": teardown, "file": "stats.py", "lineno": 18,
            "line": "raise RuntimeError('not open')"}})]


def test_a_run_ended_importing_a_test_file_fails_that_file_and_says_why_the_others_did_not_run(
        tmp_path):
    """Before, a run that the student's code ended while one test file imported it (a crash at
    its top level) failed every test file alike with the crash, the files imported before it
    too: the student could not tell which of their modules crashed."""
    shapes = "import os\n\nos.abort()\n"
    first = "import stats\n\n\ndef test_shout():\n    assert stats.shout('a') == 'A!'\n"
    second = "import shapes\n\n\ndef test_shapes():\n    assert shapes\n"
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "shapes.py": "", "test_a.py": first,
                         "test_b.py": second}, {"stats.py": REFERENCE, "shapes.py": shapes})
    report = grade(student_dir, reference)

    crashed = "Execution of pytest failed, ERROR: process was killed by signal SIGABRT"
    assert {collection.name: [(test.name, test.result, test.details)
                              for test in collection.tests] for collection in report.tests} == {
        "test_a.py": [("test_shout", "FAILED", "E   Failed: the test did not run, as the run "
                                               "ended while another test file was imported: "
                                               f"{crashed}")],
        "test_b.py": [("test_shapes", "FAILED", f"E   Failed: {crashed}")]}


def test_each_test_of_a_test_file_whose_import_ended_the_run_fails_saying_why(tmp_path):
    """Before, a run that the student's module ended as a test file imported it (`os._exit(3)`
    at its top level; a loop past the run's time limit, the memory limit alike) failed the file
    as one line named by the file: `0/1 tests passed` where the file has four, the assignment's
    count of tests changing with the way the student's code failed."""
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": TESTS},
        {"stats.py": "import os\n\nos._exit(3)\n"})
    report = grade(student_dir, reference)
    (stats,) = report.tests

    reason = "Failed: Execution of pytest failed, ERROR: program exited with os._exit(3)"
    exited = {"raised": {"error": reason, "file": "stats.py", "lineno": 3, "line": "os._exit(3)"}}
    assert [(test.name, test.result, test.details, test.debug) for test in stats.tests] == [
        (test, "FAILED", f"E   {reason}", exited) for test in ALL_TESTS]
    assert (report.gradehook.tests_passed, report.gradehook.tests_total) == (0, 4)
    comment = mr_comment_markdown([(run(), json.loads(report_to_json(report)))],
                                  comment_marker("mr-1")).split("\n")
    assert (f"| ❌ | all 4 tests (test\\_stats\\.py) |  |  | ` {reason} ` at stats\\.py\\, line 3: "
            "` os._exit(3) ` |") in comment


def test_os_exit_in_a_test_names_the_call_and_the_line_that_ended_the_run(tmp_path):
    """Before, a function of the student's calling os._exit(3) as a test called it failed that
    test with 'process ended before all tests ran (exit code 3)', naming neither the call nor
    its line; the tests after it did not run, for that reason."""
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": TESTS},
        {"stats.py": REFERENCE.replace("def counts(text):\n",
                                       "def counts(text):\n    import os\n    os._exit(3)\n")})
    report = grade(student_dir, reference)
    (stats,) = report.tests

    reason = "Failed: Execution of pytest failed, ERROR: program exited with os._exit(3)"
    assert [(test.name, test.result, test.details, test.debug) for test in stats.tests] == [
        ("test_squares", "PASSED", None, None), ("test_shout", "PASSED", None, None),
        ("test_counts", "FAILED", f"E   {reason}",
         {"raised": {"error": reason, "file": "stats.py", "lineno": 11, "line": "os._exit(3)"}}),
        ("test_mean", "FAILED", "E   Failed: the test did not run, as the run ended during an "
                                "earlier test: Execution of pytest failed, ERROR: program exited "
                                "with os._exit(3)", None)]
    page = result_page_html(run(), json.loads(report_to_json(report)))
    assert "<dt>Exited at</dt><dd><pre>stats.py, line 11: os._exit(3)</pre></dd>" in page


@pytest.mark.parametrize("exit_call, error", [
    ("sys.exit(1)", "program exited with sys.exit(1)"),
    ("exit()", "program exited with sys.exit()"),
    ("raise SystemExit('bye')", "program exited with sys.exit('bye')")])
def test_a_module_exiting_as_a_test_file_imports_it_fails_that_files_tests_naming_the_line(
        tmp_path, exit_call, error):
    """Before, a module of the student's calling sys.exit() at its top level (a script's last
    line) stopped pytest: every test file failed as one line, `Execution of pytest failed, ERROR:
    pytest stopped on SystemExit: 1`, those that never import it too, naming no line of theirs.
    The test file importing it now fails each of its tests as any other error of the module's
    import does, naming the line, and the other test files run."""
    shapes = f"import sys\n\nSIDES = 4\n{exit_call}\n"
    first = "import stats\n\n\ndef test_shout():\n    assert stats.shout('a') == 'A!'\n"
    second = ("import shapes\n\n\ndef test_sides():\n    assert shapes.SIDES == 4\n\n\n"
              "def test_name():\n    assert shapes.__name__ == 'shapes'\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "shapes.py": "SIDES = 4\n", "test_a.py": first,
                         "test_b.py": second}, {"stats.py": REFERENCE, "shapes.py": shapes})
    report = grade(student_dir, reference)

    reason = f"Failed: the test did not run, as importing test_b.py failed: {error}"
    exited = {"raised": {"error": reason, "file": "shapes.py", "lineno": 4, "line": exit_call}}
    assert {collection.name: [(test.name, test.result, test.details, test.debug)
                              for test in collection.tests] for collection in report.tests} == {
        "test_a.py": [("test_shout", "PASSED", None, None)],
        "test_b.py": [(test, "FAILED", f"E   {reason}", exited)
                      for test in ("test_sides", "test_name")]}
    page = result_page_html(run(), json.loads(report_to_json(report)))
    assert f"<dt>Exited at</dt><dd><pre>shapes.py, line 4: {html.escape(exit_call)}</pre>" in page
    assert "Crashed at" not in page


# pytest imports the conftest.py of a top folder named test* as it starts, before it collects
# anything: such a folder's must read as any other folder's.
@pytest.mark.parametrize("folder", ["b", "tests"])
def test_a_folders_conftest_that_could_not_be_imported_fails_the_tests_of_that_folder_saying_so(
        tmp_path, folder):
    """Before, a conftest.py of a subfolder whose import failed on the student's code (here a
    module it imports raising at its top level) failed each test of the folder with `the test
    did not run`, never saying why nor naming the student's line; the tests of other folders
    run as before. A folder named test* failed every test of every folder so."""
    tests = "import stats\n\n\ndef test_shout():\n    assert stats.shout('a') == 'A!'\n"
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "shapes.py": "", "a/test_a.py": tests,
                         f"{folder}/conftest.py": "import shapes\n",
                         f"{folder}/test_b.py": tests},
        {"stats.py": REFERENCE, "shapes.py": "raise ValueError('no shapes yet')\n"})
    report = grade(student_dir, reference)

    reason = (f"Failed: the test did not run, as importing {folder}/conftest.py failed: "
              "ValueError: no shapes yet")
    assert {collection.name: [(test.name, test.result, test.details, test.debug)
                              for test in collection.tests] for collection in report.tests} == {
        "a/test_a.py": [("test_shout", "PASSED", None, None)],
        f"{folder}/test_b.py": [("test_shout", "FAILED", f"E   {reason}", {"raised": {
            "error": reason, "file": "shapes.py", "lineno": 1,
            "line": "raise ValueError('no shapes yet')"}})]}


def test_a_top_conftest_that_could_not_be_imported_fails_every_test_saying_so(tmp_path):
    """Before, the conftest.py beside the test files, which pytest imports as it starts, whose
    import failed on the student's code ended the run before anything was collected: every
    test failed `the test did not run`, never saying why nor naming the student's line."""
    tests = "import stats\n\n\ndef test_shout():\n    assert stats.shout('a') == 'A!'\n"
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "shapes.py": "", "conftest.py": "import shapes\n",
                         "test_a.py": tests, "b/test_b.py": tests},
        {"stats.py": REFERENCE, "shapes.py": "raise ValueError('no shapes yet')\n"})
    report = grade(student_dir, reference)

    reason = ("Failed: the test did not run, as importing conftest.py failed: ValueError: no "
              "shapes yet")
    failed = [("test_shout", "FAILED", f"E   {reason}", {"raised": {
        "error": reason, "file": "shapes.py", "lineno": 1,
        "line": "raise ValueError('no shapes yet')"}})]
    assert {collection.name: [(test.name, test.result, test.details, test.debug)
                              for test in collection.tests] for collection in report.tests} == {
        "b/test_b.py": failed, "test_a.py": failed}


# What pytest takes from a conftest.py it imports as it starts alone: the plugins it names, the
# hook it calls as the session starts.
@pytest.mark.parametrize("conftest, argument", [
    ("import os\n\nos.environ['WORD'] = 'a'\npytest_plugins = ['pytester']\n", "pytester"),
    ("import os\n\n\ndef pytest_sessionstart(session):\n    os.environ['WORD'] = 'a'\n",
     "monkeypatch"),
], ids=["plugins", "session-start"])
def test_a_test_folders_conftest_that_pytest_needs_as_it_starts_is_imported_then(
        tmp_path, conftest, argument):
    """A test* folder's conftest.py naming plugins, or hooking the session's start, is imported
    as pytest starts, as pytest would: its plugins' fixtures work, its hook is called."""
    tests = (f"import os\n\nimport stats\n\n\ndef test_shout({argument}):\n"
             "    assert stats.shout(os.environ['WORD']) == 'A!'\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "tests/test_b.py": tests,
                         "tests/conftest.py": conftest},
        {"stats.py": REFERENCE})
    (collection,) = grade(student_dir, reference).tests

    assert [(test.name, test.result, test.details) for test in collection.tests] == [
        ("test_shout", "PASSED", None)]


def test_a_run_ended_importing_a_folders_conftest_fails_that_folders_files_not_the_others(
        tmp_path):
    """Before, a run that the student's code ended while a subfolder's conftest.py imported it
    (a crash at its top level) failed every test file alike with the crash, those of other
    folders too: the student could not tell which of their modules crashed."""
    tests = "import stats\n\n\ndef test_shout():\n    assert stats.shout('a') == 'A!'\n"
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "shapes.py": "", "a/test_a.py": tests,
                         "b/conftest.py": "import shapes\n", "b/test_b.py": tests},
        {"stats.py": REFERENCE, "shapes.py": "import os\n\nos.abort()\n"})
    report = grade(student_dir, reference)

    crashed = "Execution of pytest failed, ERROR: process was killed by signal SIGABRT"
    assert {collection.name: [(test.name, test.result, test.details)
                              for test in collection.tests] for collection in report.tests} == {
        "a/test_a.py": [("test_shout", "FAILED", "E   Failed: the test did not run, as the run "
                                                 "ended while b/conftest.py was imported: "
                                                 f"{crashed}")],
        "b/test_b.py": [("test_shout", "FAILED", f"E   Failed: {crashed}")]}


def test_a_test_marked_xfail_that_fails_passes_saying_it_was_expected_to(tmp_path):
    """Before, a test the course marked xfail, failing as it expects, showed as SKIPPED, 'Test
    skipped' with its assertion, and made its file SKIPPED: a student who passed every other test
    lost the file's share of the score. pytest counts such a test a success, and so does this."""
    tests = ("import pytest\n\nfrom stats import mean, shout\n\n\n"
             "@pytest.mark.xfail(reason='mean of nothing is not required yet')\n"
             "def test_mean_of_nothing():\n    assert mean([]) == 0\n\n\n"
             "@pytest.mark.xfail\ndef test_shout_empty():\n    assert shout('') == ''\n\n\n"
             "def test_shout():\n    assert shout('a') == 'A!'\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": tests}, {"stats.py": REFERENCE})
    report = grade(student_dir, reference)
    (stats,) = report.tests

    assert (stats.result, report.gradehook.score) == ("PASSED", 1.0)
    assert [(test.name, test.result, test.result_message, test.details)
            for test in stats.tests] == [
        ("test_mean_of_nothing", "PASSED", "failed, as the tests expect of it (xfail): mean of "
                                           "nothing is not required yet", None),
        ("test_shout_empty", "PASSED", "failed, as the tests expect of it (xfail)", None),
        ("test_shout", "PASSED", None, None)]


def test_an_xfail_test_not_run_or_passing_against_a_strict_marker_says_so_in_words(tmp_path):
    """Before, these read in pytest's notation: `failed, as the tests expect of it (xfail):
    [NOTRUN] hangs` for an xfail test not run (run=False), `[XPASS(strict)]` alone for a strict
    one that passed."""
    tests = ("import pytest\n\nfrom stats import shout\n\n\n"
             "@pytest.mark.xfail(run=False, reason='hangs')\n"
             "def test_shout_forever():\n    assert shout('a' * 10 ** 12)\n\n\n"
             "@pytest.mark.xfail(strict=True)\ndef test_shout():\n    assert shout('a') == 'A!'\n")
    student_dir, reference = make_assignment(
        tmp_path, None, {"stats.py": REFERENCE, "test_stats.py": tests}, {"stats.py": REFERENCE})
    (stats,) = grade(student_dir, reference).tests

    assert [(test.name, test.result, test.result_message, test.details)
            for test in stats.tests] == [
        ("test_shout_forever", "PASSED", "not run, as the tests expect it to fail (xfail): hangs",
         None),
        ("test_shout", "FAILED", None, "E   Failed: the test passed, but the tests expect it to "
                                       "fail (xfail, strict)")]
