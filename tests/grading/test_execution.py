"""The solution run (§3.2, §4, §9): exits, crashes, timeouts, input, setup code, environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
from pipeline.grading import EngineError, grade
from pipeline.grading.execution import SandboxExecutor
from pipeline.grading.text_report import render_text
from pipeline.reports.failures import describe_failure
from pipeline.reports.model import read_report
from tests.conftest import STOP_LATENCY_SECONDS
from tests.grading.builders import HOLD_EVERY_DESCRIPTOR, collection, make_assignment, \
    one_value_yaml, write_files
from tests.sandbox.conftest import KEEPS_EXIT_STATUS


def one_collection(tmp_path: Path, student_code: str, *, extra: str = "", tests: str = "",
                   reference_code: str = "x = 1\n"):
    student, reference = make_assignment(tmp_path, one_value_yaml(extra, tests),
                                         {"ex.py": reference_code}, {"ex.py": student_code})
    report = grade(student, reference)
    return report.tests[0], student


ONE_VALUE = one_value_yaml()

ONE_OUTPUT = """
properties:
  tests:
    - type: stdout
      name: out
      entryPoint: ex.py
      tests:
        - name: stdout
"""


def first(run):
    test = run.tests[0]
    return run.status, test.result, test.details


def test_sys_exit_zero_completes_normally(tmp_path):
    run, _ = one_collection(tmp_path, "import sys\nx = 1\nsys.exit(0)\nx = 2\n")
    assert first(run) == ("COMPLETED", "PASSED", None)


def test_sys_exit_none_completes_normally(tmp_path):
    run, _ = one_collection(tmp_path, "import sys\nx = 1\nsys.exit()\n")
    assert first(run) == ("COMPLETED", "PASSED", None)


@pytest.mark.parametrize(("student_files", "exited"), [
    ({"ex.py": "import sys\nsys.exit(0)\nx = 1\n"},
     {"file": "ex.py", "lineno": 2, "line": "sys.exit(0)"}),
    ({"ex.py": "choice = 'q'\nwhile True:\n    if choice == 'q':\n        exit()\nx = 1\n"},
     {"file": "ex.py", "lineno": 4, "line": "exit()"}),
    ({"ex.py": "quit()\nx = 1\n"}, {"file": "ex.py", "lineno": 1, "line": "quit()"}),
    ({"ex.py": "try:\n    raise SystemExit\nfinally:\n    y = 2\nx = 1\n"},
     {"file": "ex.py", "lineno": 2, "line": "raise SystemExit"}),
    ({"ex.py": "from lib.menu import menu\nmenu()\nx = 1\n", "lib/__init__.py": "",
      "lib/menu.py": "import sys\n\n\ndef menu():\n    sys.exit()\n"},
     {"file": "lib/menu.py", "lineno": 5, "line": "sys.exit()"}),
], ids=["sys-exit-0", "exit-in-a-loop", "quit", "raise-through-finally", "in-a-module"])
def test_an_exit_with_code_0_before_a_name_is_defined_says_where_the_program_ended(
        tmp_path, student_files, exited):
    """A program that exited with code 0 or None before defining the name completes (§9) and
    the test reads only 'not found'; its debug names the innermost line of the student's files
    the exit passed through, their file named relative to their folder."""
    student, reference = make_assignment(tmp_path, ONE_VALUE, {"ex.py": "x = 1\n"},
                                         student_files)
    run = grade(student, reference).tests[0]
    assert first(run) == ("COMPLETED", "FAILED",
                          "E   KeyError: 'Variable `x` not found in student namespace'")
    assert run.tests[0].debug == {"exited": exited}


def test_output_that_ends_where_the_program_exited_with_code_0_says_where(tmp_path):
    """Before, a program that exited with code 0 before it printed all its output (a menu's
    `exit()`) failed its stdout test showing only the output cut short ('Hello' where
    'Hello\\nBye\\n' was expected), never why: only a test whose name was not found said where
    the program ended."""
    student, reference = make_assignment(
        tmp_path, ONE_OUTPUT, {"ex.py": "print('Hello')\nprint('Bye')\n"},
        {"ex.py": "print('Hello')\nexit()\nprint('Bye')\n"})
    run = grade(student, reference).tests[0]

    assert first(run) == ("COMPLETED", "FAILED", "E   AssertionError: Variable `stdout` has "
                                                 "incorrect len, expected: 10, obtained 6")
    assert run.tests[0].debug["exited"] == {"file": "ex.py", "lineno": 2, "line": "exit()"}


def test_sys_exit_with_a_code_crashes(tmp_path):
    run, student = one_collection(tmp_path, "import sys\nx = 1\nsys.exit(3)\n")
    assert first(run) == ("CRASHED", "FAILED", f"E   Failed: Execution of {student / 'ex.py'} "
                                               f"failed, ERROR: program exited with sys.exit(3)")


@pytest.mark.parametrize("exit_call", ["sys.exit(3)", "exit('bye')"])
def test_sys_exit_with_a_code_names_the_line_that_exited(tmp_path, exit_call):
    """Before, a program that exited with a code other than 0 crashed naming no line, where any
    other crash names the line that raised (and the page and comment show it): a student with
    several exits could not tell which one ended the program."""
    run, student = one_collection(
        tmp_path, f"import sys\n\ndef menu():\n    {exit_call}\n\nx = 1\nmenu()\n")
    assert run.status == "CRASHED"
    traceback = run.debug["traceback"]
    frame = traceback.get("solutionFrame", traceback)
    assert (frame["filename"], frame["lineno"], frame["line"]) == (
        str(student / "ex.py"), 4, exit_call)
    assert "raised" not in traceback


def test_os_exit_crashes_and_the_report_is_written(tmp_path):
    run, student = one_collection(tmp_path, "import os\nx = 1\nos._exit(1)\n")
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: program "
                          f"exited with os._exit(1)")


@pytest.mark.parametrize("student_files, place", [
    ({"ex.py": "import os\n\ndef menu():\n    os._exit(3)\n\nx = 1\nmenu()\n"},
     ("ex.py", 4, "os._exit(3)")),
    ({"ex.py": "from lib.menu import menu\nx = 1\nmenu()\n", "lib/__init__.py": "",
      "lib/menu.py": "from os import _exit as leave\n\n\ndef menu():\n    leave(3)\n"},
     ("lib/menu.py", 5, "leave(3)")),
], ids=["in-a-function", "in-a-module"])
def test_os_exit_says_so_at_the_line_that_called_it(tmp_path, student_files, place):
    """Before, a program that ended with os._exit(3) read 'process ended unexpectedly with exit
    code 3', naming neither the call the student wrote nor its line, where sys.exit(3) reads
    'program exited with sys.exit(3)' at its line."""
    student, reference = make_assignment(tmp_path, ONE_VALUE, {"ex.py": "x = 1\n"},
                                         student_files)
    run = grade(student, reference).tests[0]
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: program "
                          f"exited with os._exit(3)")
    file, lineno, line = place
    traceback = run.debug["traceback"]
    assert (traceback["filename"], traceback["lineno"], traceback["line"]) == (
        str(student / file), lineno, line)
    assert "raised" not in traceback


def test_os_exit_of_a_forked_child_is_not_taken_for_the_programs(tmp_path):
    """A child process of the student's that ends with os._exit() is not the program's exit:
    the program that then ends otherwise (its C library's _exit, which nothing notes) is told
    as an unexpected end, not as the child's os._exit at the child's line."""
    run, student = one_collection(
        tmp_path, "import ctypes, os\nif os.fork() == 0:\n    os._exit(0)\nos.wait()\nx = 1\n"
                  "ctypes.CDLL(None)._exit(0)\n")
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: process "
                          f"ended unexpectedly with exit code 0")
    assert not run.debug["traceback"]


@KEEPS_EXIT_STATUS
def test_an_exit_code_that_bwrap_gives_for_sigxcpu_is_a_crash_not_a_timeout(tmp_path):
    run, student = one_collection(tmp_path, "import os\nx = 1\nos._exit(152)\n")
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: program "
                          f"exited with os._exit(152)")


def test_killing_its_own_process_crashes(tmp_path):
    run, student = one_collection(tmp_path,
                                  "import os, signal\nx = 1\nos.kill(os.getpid(), 9)\n")
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: process "
                          f"was killed by signal SIGKILL")


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_signals_to_the_parent_do_not_lose_the_report(tmp_path, signal_name):
    run, _ = one_collection(tmp_path, f"import os, signal\nx = 1\n"
                                      f"os.kill(os.getppid(), signal.{signal_name})\n")
    assert first(run) == ("COMPLETED", "PASSED", None)


def test_an_exception_crashes_with_its_message_and_last_frame(tmp_path):
    run, student = one_collection(tmp_path, "x = 1\n\ny = z + 1\n")
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: name "
                          f"'z' is not defined")
    assert run.debug["traceback"] == {"name": "<module>", "filename": str(student / "ex.py"),
                                      "lineno": 3, "line": "y = z + 1",
                                      "errormsg": "name 'z' is not defined",
                                      "raised": "NameError: name 'z' is not defined"}


def test_a_crash_in_a_library_keeps_its_frame_and_names_the_solutions_innermost_line(tmp_path):
    run, student = one_collection(tmp_path, "import json\n\ndef load(text):\n"
                                            "    return json.loads(text)\n\nx = load('{')\n")
    traceback = run.debug["traceback"]
    assert traceback["filename"].endswith("json/decoder.py")
    assert traceback["solutionFrame"] == {"filename": str(student / "ex.py"), "lineno": 4,
                                          "line": "return json.loads(text)"}


def test_a_crash_in_the_solutions_own_line_has_no_second_frame(tmp_path):
    run, _ = one_collection(tmp_path, "def f():\n    return 1 / 0\n\nx = f()\n")
    assert "solutionFrame" not in run.debug["traceback"]


@pytest.mark.parametrize(("code", "shown"), [
    ("raise RuntimeError\n", "RuntimeError"),
    ("assert x == 2\n", "AssertionError"),
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ("class Odd(Exception):\n    def __str__(self):\n        raise ValueError('no')\n\n"
     "raise Odd()\n", "Odd"),
])
def test_an_exception_without_a_message_is_named_by_its_class(tmp_path, code, shown):
    run, student = one_collection(tmp_path, "x = 1\n" + code)
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: {shown}")
    assert run.debug["traceback"]["errormsg"] == run.debug["traceback"]["raised"] == shown


def test_an_infinite_loop_times_out(tmp_path):
    run, _ = one_collection(tmp_path, "x = 1\nwhile True:\n    pass\n", extra="timeout: 0.5")
    assert first(run) == ("TIMEDOUT", "FAILED",
                          "E   Failed: Maximum execution time of 0.5 seconds exceeded")


def test_a_sleeping_program_times_out_too(tmp_path):
    run, _ = one_collection(tmp_path, "import time\nx = 1\ntime.sleep(30)\n", extra="timeout: 1")
    assert first(run) == ("TIMEDOUT", "FAILED",
                          "E   Failed: Maximum execution time of 1.0 seconds exceeded")


# Half a second of work, however long the program waits for a CPU, then the value tested.
HALF_A_SECOND_OF_WORK = ("import time\nend = time.process_time() + 0.5\n"
                         "while time.process_time() < end:\n    pass\nx = 1\n")


def test_a_collection_starved_of_cpu_has_its_timeout_stretched_by_its_wait(tmp_path, starved_cpu):
    """A collection of 0.5 s of work under a timeout of 1 s, given a third of a CPU (a host with
    three runs per core, as at a deadline), took 1.5 s and timed out: a correct solution lost
    its points for the host's load. Its timeout now runs on by the time it waited, ready to run,
    for a CPU."""
    run, _ = one_collection(tmp_path, HALF_A_SECOND_OF_WORK, extra="timeout: 1")
    assert first(run) == ("COMPLETED", "PASSED", None)
    assert run.debug["executionDurationStudent"] > 1


def test_an_endless_collection_starved_of_cpu_still_times_out_by_twice_its_timeout(
        tmp_path, starved_cpu):
    student, reference = make_assignment(tmp_path, one_value_yaml("timeout: 1"),
                                         {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\nwhile True: pass\n"})
    report = grade(student, reference)
    assert first(report.tests[0]) == ("TIMEDOUT", "FAILED",
                                      "E   Failed: Maximum execution time of 1.0 seconds exceeded")
    # Stopped by its own timer, where it looped, not by the sandbox's limit on the whole run.
    debug = report.tests[0].debug
    assert debug["traceback"]["line"] == "while True: pass"
    assert 1 < debug["executionDurationStudent"] < 2 + STOP_LATENCY_SECONDS


@pytest.mark.parametrize("after_catching", ["pass", "sys.exit(0)", "raise ValueError('late')"],
                         ids=["ends-normally", "exits-with-0", "raises-another-error"])
def test_a_program_that_catches_its_timeout_still_times_out(tmp_path, after_catching):
    """The timer's stop is a BaseException that the program can catch; one that caught it and
    then ended normally was graded as completed (its values compared), though it ran past its
    timeout."""
    run, _ = one_collection(tmp_path, "import sys, time\nx = 1\ntry:\n    time.sleep(30)\n"
                                      f"except BaseException:\n    {after_catching}\n",
                            extra="timeout: 0.5")
    assert first(run) == ("TIMEDOUT", "FAILED",
                          "E   Failed: Maximum execution time of 0.5 seconds exceeded")


STOPPED_AT = {"name": "<module>", "filename": "ex.py", "lineno": 2, "line": "while True: pass",
              "errormsg": "Maximum execution time of 0.5 seconds exceeded"}


@pytest.mark.parametrize(("student_files", "extra", "stopped_at"), [
    ({"ex.py": "x = 1\nwhile True: pass\n"}, "", STOPPED_AT),
    ({"ex.py": "import sys\nx = 1\ntry:\n    y = 0\n    while True: y += 1\n"
               "except BaseException:\n    sys.exit(0)\n"},
     "", {**STOPPED_AT, "lineno": 5, "line": "while True: y += 1"}),
    ({"ex.py": "from lib.wait import wait\nx = 1\nwait()\n",
      "lib/__init__.py": "",
      "lib/wait.py": "import queue\n\n\ndef wait():\n    return queue.Queue().get()\n"},
     "", {**STOPPED_AT, "name": "wait", "filename": "lib/wait.py", "lineno": 5,
          "line": "return queue.Queue().get()"}),
    ({"ex.py": "def spin():\n    while True: pass\n\n\nx = 1\n"},
     "setUpCode: 'spin()'", {**STOPPED_AT, "name": "spin"}),
], ids=["in-the-entry-point", "caught-and-exited", "waiting-in-a-module", "called-by-setup"])
def test_a_timed_out_run_names_the_students_line_it_was_stopped_at(tmp_path, student_files,
                                                                   extra, stopped_at):
    """A run past its timeout said only that the time was exceeded, not where the student's
    program was; the innermost line of their files is its debug's traceback, their file named
    relative to their folder. The message and details keep the original's wording."""
    student, reference = make_assignment(
        tmp_path, one_value_yaml("timeout: 0.5\n              " + extra),
        {"ex.py": "x = 1\n"}, student_files)
    run = grade(student, reference).tests[0]
    assert first(run) == ("TIMEDOUT", "FAILED",
                          "E   Failed: Maximum execution time of 0.5 seconds exceeded")
    assert run.debug["traceback"] == stopped_at


def test_the_timeout_covers_set_up_code(tmp_path):
    # Only the student's run loops there: a reference that ran out of time would be ours.
    run, _ = one_collection(tmp_path, "x = 1\nslow = True\n",
                            extra="timeout: 0.3\n              "
                                  "setUpCode: 'while globals().get(\"slow\"): pass'")
    assert first(run) == ("TIMEDOUT", "FAILED",
                          "E   Failed: Maximum execution time of 0.3 seconds exceeded")
    assert run.debug["traceback"] == {}


def test_set_up_and_tear_down_code_run_in_order_in_the_namespace(tmp_path):
    run, _ = one_collection(
        tmp_path, "x = 1\n",
        extra="setUpCode: ['y = x + 1', 'z = y * 10']\n              tearDownCode: 'w = z + 1'",
        tests="- name: w\n                  value: 21")
    assert [(t.result, t.details) for t in run.tests] == [("PASSED", None), ("PASSED", None)]
    assert (run.setup, run.teardown) == ("y = x + 1\nz = y * 10", "w = z + 1")


def test_failing_set_up_code_fails_the_run(tmp_path):
    run, _ = one_collection(tmp_path, "x = 1\n", extra="setUpCode: ['y = 1', '1/0']")
    assert first(run) == ("FAILED", "FAILED",
                          "E   Failed: setupCode ['y = 1', '1/0'] could not be executed")


def test_failing_tear_down_code_fails_the_run(tmp_path):
    run, _ = one_collection(tmp_path, "x = 1\n", extra="tearDownCode: undefined_call()")
    assert first(run) == ("FAILED", "FAILED",
                          "E   Failed: teardownCode ['undefined_call()'] could not be executed")


def test_a_missing_student_entry_point_fails_every_test(tmp_path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: run
              entryPoint: ex.py
              tests:
                - name: x
                - name: y
    """, {"ex.py": "x = 1\ny = 2\n"}, {"other.py": ""})
    run = grade(student, reference).tests[0]
    assert run.status == "FAILED"
    assert [(t.result, t.details) for t in run.tests] == [
        ("FAILED", "E   Failed: entryPoint ex.py not found")] * 2


def test_a_missing_reference_entry_point_is_skipped_silently(tmp_path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: run
              entryPoint: ex.py
              setUpCode: y = 5
              tests:
                - name: x
                - name: y
    """, {}, {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    run = report.tests[0]
    assert [(t.result, t.details) for t in run.tests] == [
        ("SKIPPED", "Skipped: Variable `x` not found in reference namespace"),
        ("PASSED", None)]
    assert run.debug["referenceStatus"] == "COMPLETED"
    # The results are the original's; the run is the course's failure, and is not scored.
    assert (report.score, report.course_error) == (
        None, "the reference solution gives no expected value for `x` in collection `run`: "
              "its entryPoint ex.py does not exist")


def test_output_compared_with_a_reference_lacking_its_entry_point_is_a_course_error(tmp_path):
    student, reference = make_assignment(tmp_path, ONE_OUTPUT, {}, {"ex.py": "print('hi')\n"})
    report = grade(student, reference)
    # The result is the original's: the output is compared with the nothing the reference printed.
    assert first(report.tests[0]) == (
        "COMPLETED", "FAILED", "E   AssertionError: Variable `stdout` has incorrect len, "
                               "expected: 0, obtained 3")
    assert (report.score, report.course_error) == (
        None, "the reference solution gives no expected value for `stdout` in collection "
              "`out`: its entryPoint ex.py does not exist")


def test_output_compared_with_a_reference_that_crashed_part_way_is_a_course_error(tmp_path):
    student, reference = make_assignment(
        tmp_path, ONE_OUTPUT, {"ex.py": "print('a')\nraise ValueError('no')\nprint('b')\n"},
        {"ex.py": "print('a')\n"})
    report = grade(student, reference)
    # The result is the original's, against the start of the output the reference printed.
    assert first(report.tests[0]) == ("COMPLETED", "PASSED", None)
    assert report.score is None
    assert report.course_error.startswith(
        "the reference solution gives no expected value for `stdout` in collection `out`: "
        "its run ended CRASHED: Execution of ")
    assert report.course_error.endswith("ex.py failed, ERROR: no")


def test_output_of_a_reference_that_ran_out_of_time_part_way_is_ours_to_grade_again(tmp_path):
    student, reference = make_assignment(
        tmp_path, ONE_OUTPUT.replace("entryPoint: ex.py", "entryPoint: ex.py\n      timeout: 0.5"),
        {"ex.py": "print('a', flush=True)\nwhile True:\n    pass\n"}, {"ex.py": "print('a')\n"})
    with pytest.raises(EngineError, match="the reference ran out of time, which a busy host may "
                                          "cause: the reference solution gives no expected value "
                                          "for `stdout` in collection `out`: its run ended "
                                          "TIMEDOUT: Maximum execution time of 0.5 seconds"):
        grade(student, reference)


def test_a_reference_out_of_time_in_a_hidden_collection_leaves_its_test_unnamed(tmp_path):
    # The run's reason, once it ends in error, is what students read.
    student, reference = make_assignment(tmp_path, """
properties:
  tests:
    - type: variable
      name: Secret
      entryPoint: ex.py
      timeout: 0.5
      tests:
        - name: f(4711)
""", {"ex.py": "def f(x):\n    while True:\n        pass\n"},
        {"ex.py": "def f(x):\n    return x\n"}, meta_yaml="properties:\n  hiddenTests: [Secret]\n")
    with pytest.raises(EngineError) as raised:
        grade(student, reference)
    assert str(raised.value) == ("the reference ran out of time, which a busy host may cause: "
                                 "the reference solution gives no expected value for a test of "
                                 "a hidden collection")


HIDDEN_RUN = "properties:\n  hiddenTests: [run]\n"


@pytest.mark.parametrize("student_code, meta_yaml, named", [
    ("x = 1\n", None, "collection `run`"),
    ("x = 1\nwhile True:\n    pass\n", None, "collection `run`"),
    # The run's reason, once it ends in error, is what students read.
    ("x = 1\n", HIDDEN_RUN, "a hidden collection"),
], ids=["student-in-time", "student-out-of-time-too", "hidden-collection-unnamed"])
def test_a_reference_that_ran_out_of_time_after_giving_its_values_is_ours_to_grade_again(
        tmp_path, student_code, meta_yaml, named):
    """Its values are those of a run stopped part way; a timeout too small for the reference
    would fail every student's run that also stops, and score it."""
    student, reference = make_assignment(
        tmp_path, one_value_yaml(extra="timeout: 0.5"),
        {"ex.py": "x = 1\nwhile True:\n    pass\n"}, {"ex.py": student_code}, meta_yaml=meta_yaml)
    with pytest.raises(EngineError) as caught:
        grade(student, reference)
    assert str(caught.value) == (
        f"the reference ran out of time, which a busy host may cause: the reference solution's "
        f"run for {named} ended TIMEDOUT (Maximum execution time of 0.5 seconds exceeded), so "
        "the values expected of students would be those of a run stopped part way; if it does "
        "so every time, the collection's timeout is too small for the reference")


def test_a_name_misspelt_in_a_test_not_compared_with_the_reference_is_a_course_error(tmp_path):
    """A test with a `value` or a pattern needs no value of the reference; a name misspelt there
    fails every student, as it would fail the reference solution."""
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: values
              entryPoint: ex.py
              tests:
                - name: x
                  value: 1
                - name: totl
                  value: 3
                - name: totl + 1
                  qualification: contains
                  pattern: "4"
    """, {"ex.py": "x = 1\ntotal = 3\n"}, {"ex.py": "x = 1\ntotal = 3\n"})
    report = grade(student, reference)
    assert [t.result for t in report.tests[0].tests] == ["PASSED", "FAILED", "FAILED"]
    assert report.score is None
    assert report.course_error == (
        "the reference solution would fail `totl` in collection `values` too: its run defines "
        "no `totl` (and 1 more tests without an expected value)")


def test_an_entry_point_misspelt_in_test_yaml_is_a_course_error_not_the_students_zero(
        tmp_path):
    # Neither solution has `exp.py`: the student's run fails first, as the original's did, but
    # no student could pass, and the reference could give no expected value.
    student, reference = make_assignment(tmp_path, ONE_VALUE.replace("ex.py", "exp.py"),
                                         {"ex.py": "x = 1\n"}, {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    assert first(report.tests[0]) == (
        "FAILED", "FAILED", "E   Failed: entryPoint exp.py not found")
    assert (report.score, report.course_error) == (
        None, "the reference solution gives no expected value for `x` in collection `run`: "
              "its entryPoint exp.py does not exist")


def test_a_reference_that_crashes_as_the_students_run_does_is_a_course_error(tmp_path):
    code = {"ex.py": "raise ValueError('no')\nx = 1\n"}
    student, reference = make_assignment(tmp_path, ONE_VALUE, code, code)
    report = grade(student, reference)
    assert first(report.tests[0])[:2] == ("CRASHED", "FAILED")
    assert report.score is None
    assert report.course_error.startswith(
        "the reference solution gives no expected value for `x` in collection `run`: "
        "its run ended CRASHED: Execution of ")


def test_a_call_that_raises_in_both_solutions_is_a_course_error_saying_what_it_raised(
        tmp_path):
    code = {"ex.py": "def add(a, b):\n    return a + b\n"}
    student, reference = make_assignment(tmp_path, one_value_yaml().replace(
        "name: x", "name: add(1)"), code, code)
    report = grade(student, reference)
    # The result is the original's; but no solution's add takes one argument, the reference's
    # neither, so no student could pass.
    assert first(report.tests[0]) == (
        "COMPLETED", "FAILED", "E   KeyError: 'Variable `add(1)` not found in student namespace'")
    assert (report.score, report.course_error) == (
        None, "the reference solution gives no expected value for `add(1)` in collection `run`: "
              "evaluating `add(1)` in its namespace raised TypeError: add() missing 1 required "
              "positional argument: 'b'")


def test_an_eval_string_that_raises_in_the_reference_names_the_error_and_its_line(tmp_path):
    student, reference = make_assignment(
        tmp_path, one_value_yaml(tests="  evalString: half(2)"),
        {"ex.py": "def half(a):\n    return a / 0\n"}, {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    assert first(report.tests[0]) == (
        "COMPLETED", "SKIPPED", "Skipped: Evaluation of `half(2)` not possible")
    assert (report.score, report.course_error) == (
        None, "the reference solution gives no expected value for `x` in collection `run`: "
              "evaluating `half(2)` in its namespace raised ZeroDivisionError: division by zero "
              "(ex.py, line 2: return a / 0)")


def test_a_looked_up_test_name_that_is_not_python_is_a_course_error_named_at_its_line(
        tmp_path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: run
              entryPoint: ex.py
              tests:
                - name: x
                - name: add(1,
                  value: 2
                - name: x = 1
                  value: 1
            - type: graphics
              name: plot
              tests:
                - name: figure(1).axes[0].get_title(
                  value: t
            - type: stdout
              name: out
              entryPoint: ex.py
              tests:
                - name: what it prints (
    """, {"ex.py": "x = 1\n"}, {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    # The results are the original's; no student could pass those tests, and staff are told.
    assert [test.details for test in report.tests[0].tests] == [
        None, "E   KeyError: 'Variable `add(1,` not found in student namespace'",
        "E   KeyError: 'Variable `x = 1` not found in student namespace'"]
    assert report.tests[2].result == "PASSED"
    assert report.score is None
    assert report.course_error.splitlines() == [
        "test.yaml line 8: properties.tests[0].tests[1].name: `add(1,` is not a Python "
        "expression, so no solution can give its value and the test fails for every student: "
        "'(' was never closed",
        "test.yaml line 10: properties.tests[0].tests[2].name: `x = 1` is not a Python "
        "expression, so no solution can give its value and the test fails for every student: "
        "invalid syntax",
        "test.yaml line 15: properties.tests[1].tests[0].name: `figure(1).axes[0].get_title(` "
        "is not a Python expression, so no solution can give its value and the test fails for "
        "every student: '(' was never closed"]


def test_a_reference_breaking_its_module_blacklist_is_a_course_error_though_the_student_crashed(
        tmp_path):
    # The reference never runs, so it gives no expected value: no student can pass, and one
    # whose own run crashed is not scored either (one whose run completed never was).
    student, reference = make_assignment(
        tmp_path, one_value_yaml("moduleBlacklist: [random]"),
        {"ex.py": "import random\nx = 1\n"}, {"ex.py": "x = 1 / 0\n"})
    report = grade(student, reference)
    assert (report.score, report.course_error) == (
        None, "the reference solution gives no expected value for `x` in collection `run`: "
              "its run ended FAILED: Import not allowed for: ['random']")


def test_a_crashing_reference_that_gave_every_value_is_reported_in_debug_only(tmp_path):
    student, reference = make_assignment(tmp_path, ONE_VALUE,
                                         {"ex.py": "x = 1\nraise ValueError('no')\n"},
                                         {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    run = report.tests[0]
    assert first(run) == ("COMPLETED", "PASSED", None)
    assert run.debug["referenceStatus"] == "CRASHED"
    assert run.debug["referenceMessage"].endswith("ex.py failed, ERROR: no")
    assert (report.score, report.course_error) == (1.0, None)


def test_a_reference_that_crashed_before_giving_a_value_is_a_course_error(tmp_path):
    student, reference = make_assignment(tmp_path, ONE_VALUE,
                                         {"ex.py": "raise ValueError('no')\nx = 1\n"},
                                         {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    assert first(report.tests[0]) == (
        "COMPLETED", "SKIPPED", "Skipped: Variable `x` not found in reference namespace")
    assert report.score is None
    assert report.course_error.startswith(
        "the reference solution gives no expected value for `x` in collection `run`: "
        "its run ended CRASHED: Execution of ")
    assert report.course_error.endswith("ex.py failed, ERROR: no")


def test_module_blacklist_matches_direct_imports_exactly(tmp_path):
    run, _ = one_collection(tmp_path, "import os.path\nfrom math import sqrt\nimport math\nx = 1\n",
                            extra="moduleBlacklist: [math, os, random]")
    assert first(run) == ("FAILED", "FAILED", "E   Failed: Import not allowed for: ['math']")


def test_input_answers_feed_stdin_and_prompts_are_captured(tmp_path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - type: stdout
              name: dialog
              entryPoint: ex.py
              inputAnswers: [3, 4]
              tests:
                - name: stdout
                  value: "a? b? 7\\n"
            - name: values
              entryPoint: ex.py
              inputAnswers: [3, 4]
              tests:
                - name: total
                  value: 7
            - name: too few answers
              entryPoint: ex.py
              inputAnswers: 3
              tests:
                - name: total
            - name: no answers
              entryPoint: ex.py
              tests:
                - name: total
    """, {"ex.py": "total = 7\n"},
        {"ex.py": "a = int(input('a? '))\nb = int(input('b? '))\ntotal = a + b\nprint(total)\n"})
    report = grade(student, reference)
    path = student / "ex.py"
    assert [(c.status, c.tests[0].result, c.tests[0].details) for c in report.tests] == [
        ("COMPLETED", "PASSED", None),
        ("COMPLETED", "PASSED", None),
        ("CRASHED", "FAILED", f"E   Failed: Execution of {path} failed, ERROR: program reads "
                              f"input, but the test provides no more inputAnswers"),
        ("CRASHED", "FAILED", f"E   Failed: Execution of {path} failed, ERROR: program reads "
                              f"input, but the test provides no inputAnswers"),
    ]


def test_environment_cwd_path_seeds_and_no_name(tmp_path):
    code = """
        import os, random, sys
        import helper
        with open("data.txt") as handle:
            data = handle.read().strip()
        first_random = random.random()
        cwd_is_solution = os.getcwd() == os.path.dirname(__file__)
        name_is_builtins = __name__ == "builtins"
        if __name__ == "__main__":
            data = "main block ran"
        from_helper = helper.VALUE
    """
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: env
              entryPoint: ex.py
              tests:
                - name: data
                  value: from reference
                - name: first_random
                  value: 0.13436424411240122
                - name: cwd_is_solution
                  value: true
                - name: name_is_builtins
                  value: true
                - name: from_helper
                  value: 42
    """, {"ex.py": code, "helper.py": "VALUE = 42\n", "data.txt": "from reference\n"},
        {"ex.py": code, "helper.py": "VALUE = 42\n"},
        meta_yaml="properties:\n  additionalFiles: [data.txt]\n")
    run = grade(student, reference).tests[0]
    assert [(t.name, t.result, t.details) for t in run.tests] == [
        (name, "PASSED", None) for name in ("data", "first_random", "cwd_is_solution",
                                            "name_is_builtins", "from_helper")]


def test_student_sees_needed_test_files_but_no_reference_or_hidden_files(tmp_path):
    student_code = f"""
        import os
        x = 1
        sees_reference = os.path.exists({str(tmp_path / 'reference')!r})
        sees_secret = any(os.path.exists(os.path.join(p, "secret_expected.py"))
                          for p in __import__("sys").path)
    """
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: isolation
              entryPoint: ex.py
              setUpCode: import checker
              tests:
                - name: sees_reference
                  value: false
                - name: sees_secret
                  value: false
                - name: checker.check(x)
                  value: ok
                - name: x
                  evalString: secret_expected.X
    """, {"ex.py": "import secret_expected\nx = 1\n",
          "tests/checker.py": "def check(v):\n    return 'ok'\n",
          "tests/secret_expected.py": "X = 1\n"},
        {"ex.py": student_code},
        meta_yaml="properties:\n  testFiles: [tests/checker.py, tests/secret_expected.py]\n")
    report = grade(student, reference)
    run = report.tests[0]
    assert [(t.result, t.details) for t in run.tests] == [("PASSED", None)] * 4


def test_printing_a_fake_report_or_fake_values_changes_nothing(tmp_path):
    fake = ('{"error": null, "values": {"x": {"found": true, "value": {"t": "int", "v": "0x1"}}},'
            ' "texts": {}, "evals": {}, "entry_seconds": 0}')
    code = f"""
        import json, os, sys
        x = 2
        print({fake!r})
        print('{{"result": "PASSED", "summary": {{"total": 1, "passed": 1}}}}')
        for path in ("/opt/gradehook/result",):
            try:
                with open(path, "w") as channel:
                    channel.write("\\n" + {fake!r} + "\\n")
            except OSError:
                pass
    """
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: run
              entryPoint: ex.py
              tests:
                - name: x
    """, {"ex.py": "x = 1\n"}, {"ex.py": code})
    run = grade(student, reference).tests[0]
    assert first(run) == ("COMPLETED", "FAILED", "E   AssertionError: Variable `x` has incorrect "
                                                 "value (`2` instead of `1`)")


def test_each_collection_runs_in_a_fresh_process(tmp_path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: first
              entryPoint: ex.py
              setUpCode: "import sys; sys.modules['leak'] = 1; open('marker', 'w').close()"
              tests:
                - name: x
            - name: second
              entryPoint: ex.py
              tests:
                - name: "'leak' in __import__('sys').modules"
                  value: false
                - name: "__import__('os').path.exists('marker')"
                  value: false
    """, {"ex.py": "x = 1\n"}, {"ex.py": "x = 1\n"})
    report = grade(student, reference)
    assert [t.result for t in collection(report, "second").tests] == ["PASSED", "PASSED"]
    assert not (student / "marker").exists()


def test_a_student_directory_that_does_not_exist_fails_its_tests(tmp_path):
    reference = write_files(tmp_path / "reference", {
        "ex.py": "x = 1\n",
        "test.yaml": "properties:\n  tests:\n    - name: c\n      entryPoint: ex.py\n"
                     "      tests:\n        - name: x\n"})
    report = grade(tmp_path / "nobody", reference)
    assert report.tests[0].tests[0].details == "E   Failed: entryPoint ex.py not found"
    assert report.gradehook.score == 0.0


def test_collections_running_the_same_code_share_one_process(tmp_path, monkeypatch):
    from pipeline.grading.execution import SandboxExecutor

    executed = []
    original = SandboxExecutor.execute

    def counting(self, request):
        executed.append((request.side, request.collection_index))
        return original(self, request)

    monkeypatch.setattr(SandboxExecutor, "execute", counting)
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {name: one, entryPoint: ex.py, tests: [{name: x}]}
            - {name: two, entryPoint: ex.py, tests: [{name: y}]}
            - {type: stdout, name: three, entryPoint: ex.py, tests: [{name: out}]}
            - {name: four, entryPoint: ex.py, setUpCode: z = 3, tests: [{name: z}]}
    """, {"ex.py": "x, y = 1, 2\nprint(x)\n"}, {"ex.py": "x, y = 1, 2\nprint(x)\n"})
    report = grade(student, reference)
    assert [c.result for c in report.tests] == ["PASSED"] * 4
    assert sorted(executed) == [("reference", 0), ("reference", 3), ("student", 0),
                                ("student", 3)]


@pytest.mark.parametrize("broken, status, details", [
    ("while True:\n        pass", "COMPLETED",
     [None, "E   Failed: Maximum execution time of 1.0 seconds exceeded"]),
    ("import os\n    os._exit(3)", "CRASHED",
     ["E   Failed: Execution of {entry} failed, ERROR: program exited with os._exit(3)"] * 2),
], ids=["endless-loop", "os-exit"])
def test_a_test_that_ends_a_shared_process_fails_its_own_collection_alone(
        tmp_path, broken, status, details):
    """Before, collections running the same code share one process (above), which evaluated the
    tests of all of them: a function of the student's that looped for ever (or ended the
    process) in one collection's test failed every test of the others too, `x` of `values`
    included, and the score counted them all failed. (One that loops fails its own test alone:
    below.)"""
    student, reference = make_assignment(tmp_path, """
        properties:
          timeout: 1
          tests:
            - {name: values, entryPoint: ex.py, tests: [{name: x}, {name: y}]}
            - {name: calls, entryPoint: ex.py, tests: [{name: twice(2)}, {name: spin()}]}
            - {type: stdout, name: output, entryPoint: ex.py, tests: [{name: out}]}
    """, {"ex.py": "x, y = 1, 2\nprint(x)\n\ndef twice(n):\n    return 2 * n\n\n"
                   "def spin():\n    return 0\n"},
        {"ex.py": f"x, y = 1, 2\nprint(x)\n\ndef twice(n):\n    return 2 * n\n\n"
                  f"def spin():\n    {broken}\n"})
    report = grade(student, reference)

    calls = collection(report, "calls")
    assert [c.result for c in report.tests] == ["PASSED", "FAILED", "PASSED"]
    assert calls.status == status
    assert [test.details for test in calls.tests] == [
        None if line is None else line.format(entry=student / "ex.py") for line in details]
    assert report.gradehook.score == pytest.approx(2 / 3)


COUNTDOWN = """\
def add(a, b):
    return a + b


def countdown(n):
    while n > 0: n -= 1
    return "liftoff"
"""
ENDLESS_COUNTDOWN = COUNTDOWN.replace("n -= 1", "n += 1")
STOPPED_COUNTDOWN = {"name": "countdown", "filename": "calc.py", "lineno": 6,
                     "line": "while n > 0: n += 1",
                     "errormsg": "Maximum execution time of 1.0 seconds exceeded"}


def test_a_call_that_loops_for_ever_fails_its_own_test_where_it_was_stopped(tmp_path):
    """A test calling a function of the student's that looped for ever had no time limit of its
    own: the sandbox's limit on the whole run stopped it, and every test of the collection, the
    right calls included, failed with 'Maximum execution time of 1.0 seconds exceeded', naming
    no test and no line. The call has what remains of the collection's limit and fails alone,
    stopped at the line of the student's it was running; the tests after it are graded."""
    student, reference = make_assignment(tmp_path, """
        properties:
          timeout: 1
          tests:
            - name: calls
              entryPoint: calc.py
              tests:
                - {name: 'add(10, 5)'}
                - {name: countdown(3)}
                - {name: 'add(1, 2)'}
                - {name: countdown(0)}
    """, {"calc.py": COUNTDOWN}, {"calc.py": ENDLESS_COUNTDOWN})
    report = grade(student, reference)

    calls = report.tests[0]
    assert (calls.status, calls.result) == ("COMPLETED", "FAILED")
    assert [(test.result, test.details) for test in calls.tests] == [
        ("PASSED", None),
        ("FAILED", "E   Failed: Maximum execution time of 1.0 seconds exceeded"),
        ("PASSED", None), ("PASSED", None)]
    assert calls.tests[1].debug == {"traceback": STOPPED_COUNTDOWN}
    assert (calls.summary.passed, calls.summary.failed, calls.summary.total) == (3, 1, 4)
    failure = describe_failure(read_report(report.to_dict()).collections[0].tests[1])
    assert (failure.problem, failure.crash.in_message, failure.crash.code) == (
        "Failed: Maximum execution time of 1.0 seconds exceeded", "stopped at calc.py, line 6",
        "while n > 0: n += 1")
    assert "  FAILED  countdown(3)  E   Failed: Maximum execution time of 1.0 seconds exceeded\n" \
           "    stopped at calc.py, line 6: while n > 0: n += 1\n" in render_text(report)


def test_calls_that_loop_for_ever_share_what_remains_of_the_limit_and_each_fails_alone(
        tmp_path):
    """Before, each test's call had the whole of what the code left of the collection's limit:
    three calls of a function that looped for ever took three times that, past the sandbox's
    room for the run, which ended it, and every test of the collection, add(10, 5) and
    add(1, 2) included, failed as the run past its timeout. The calls share what remains (a
    tenth of a second at least each): each loop fails alone and the other tests are graded."""
    loops = [f"countdown({n})" for n in range(3, 8)]
    student, reference = make_assignment(tmp_path, f"""
        properties:
          timeout: 1
          tests:
            - name: calls
              entryPoint: calc.py
              tests: [{{name: 'add(10, 5)'}}, {", ".join(f"{{name: '{call}'}}" for call in loops)},
                      {{name: 'add(1, 2)'}}]
    """, {"calc.py": COUNTDOWN}, {"calc.py": ENDLESS_COUNTDOWN})
    report = grade(student, reference)

    calls = report.tests[0]
    assert (calls.status, calls.result) == ("COMPLETED", "FAILED")
    assert [(test.result, test.details) for test in calls.tests] == [("PASSED", None)] + [
        ("FAILED", "E   Failed: Maximum execution time of 1.0 seconds exceeded")] * len(loops) \
        + [("PASSED", None)]
    assert {test.debug["traceback"]["line"] for test in calls.tests[1:-1]} == {
        "while n > 0: n += 1"}


def test_a_call_that_loops_for_ever_in_the_reference_is_ours_to_grade_again_saying_where(
        tmp_path):
    """As a reference run out of time is (a busy host may cause it): a test's call that ran out
    of time in the reference stopped the reference's whole run, which said where no more."""
    student, reference = make_assignment(tmp_path, """
        properties:
          timeout: 1
          tests:
            - {name: calls, entryPoint: calc.py, tests: [{name: 'add(1, 2)'}, {name: countdown(3)}]}
    """, {"calc.py": ENDLESS_COUNTDOWN}, {"calc.py": COUNTDOWN})
    with pytest.raises(EngineError) as caught:
        grade(student, reference)
    assert str(caught.value) == (
        "the reference ran out of time, which a busy host may cause: the reference solution "
        "gives no expected value for `countdown(3)` in collection `calls`: evaluating "
        "`countdown(3)` in its namespace was stopped: Maximum execution time of 1.0 seconds "
        "exceeded (calc.py, line 6: while n > 0: n += 1)")


def test_a_program_holding_every_descriptor_it_may_is_told_by_its_exit(tmp_path):
    """A program that held every descriptor the sandbox allows and then exited with sys.exit(3)
    read "[Errno 24] Too many open files: '/usr/lib/python3.11/traceback.py'", the runner's own
    import, naming no line; it reads as any exit with a code does."""
    code = HOLD_EVERY_DESCRIPTOR + "import sys\n\nx = 1\nhold_every_descriptor()\nsys.exit(3)\n"
    run, student = one_collection(tmp_path, code)
    assert first(run) == ("CRASHED", "FAILED", f"E   Failed: Execution of {student / 'ex.py'} "
                                               "failed, ERROR: program exited with sys.exit(3)")
    assert (run.debug["traceback"]["lineno"], run.debug["traceback"]["line"]) == (
        18, "sys.exit(3)")


def test_a_program_holding_every_descriptor_it_may_times_out_at_its_line(tmp_path):
    # The stopped line was left out (null): reading it takes a descriptor.
    code = HOLD_EVERY_DESCRIPTOR + "import time\n\nx = 1\nhold_every_descriptor()\ntime.sleep(30)\n"
    run, _ = one_collection(tmp_path, code, extra="timeout: 0.5")
    assert first(run) == ("TIMEDOUT", "FAILED",
                          "E   Failed: Maximum execution time of 0.5 seconds exceeded")
    assert run.debug["traceback"] == {**STOPPED_AT, "lineno": 18, "line": "time.sleep(30)"}


def test_a_call_holding_every_descriptor_it_may_fails_alone_with_what_it_raised(tmp_path):
    """A test's call that held every descriptor and raised ended the whole run, every test
    'process ended unexpectedly with exit code 1': the runner could not import what tells
    where it raised."""
    student, reference = make_assignment(
        tmp_path, one_value_yaml(tests="- name: fail()"), {"ex.py": "x = 1\n"},
        {"ex.py": HOLD_EVERY_DESCRIPTOR + "def fail():\n    hold_every_descriptor()\n"
                                          "    raise ValueError('bad')\n\n\nx = 1\n"})
    run = grade(student, reference).tests[0]
    assert run.status == "COMPLETED"
    assert [(test.name, test.result) for test in run.tests] == [("x", "PASSED"),
                                                                ("fail()", "FAILED")]
    assert run.tests[1].debug == {"raised": {"error": "ValueError: bad", "file": "ex.py",
                                             "lineno": 16, "line": "raise ValueError('bad')"}}


def test_links_out_of_the_student_directory_are_never_followed_on_the_host(tmp_path):
    secret = write_files(tmp_path / "host", {"secret.py": "for x in range(3):\n    pass\n"})
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {name: run, entryPoint: ex.py, tests: [{name: x}]}
            - type: structural
              name: shape
              file: ex.py
              tests: [{name: for, allowedOccuranceRange: [1, 1]}]
    """, {"ex.py": "for x in range(3):\n    pass\n"}, {})
    (student / "ex.py").symlink_to(secret / "secret.py")
    report = grade(student, reference)
    assert [(c.tests[0].result, c.tests[0].details) for c in report.tests] == [
        ("FAILED", "E   Failed: entryPoint ex.py not found"),
        ("FAILED", f"E   FileNotFoundError: [Errno 2] No such file or directory: "
                   f"'{student / 'ex.py'}'"),
    ]


def test_binary_writes_to_stdout_are_captured(tmp_path):
    expected = '          value: "text bytes\\n"\n'
    student, reference = make_assignment(
        tmp_path, ONE_OUTPUT + expected, {"ex.py": ""},
        {"ex.py": "import sys\nprint('text', end=' ')\nsys.stdout.buffer.write(b'bytes\\n')\n"})
    run = grade(student, reference).tests[0]
    assert first(run) == ("COMPLETED", "PASSED", None)


def test_output_cut_at_the_capture_limit_says_so_when_it_fails(tmp_path):
    student, reference = make_assignment(tmp_path, ONE_OUTPUT, {"ex.py": "print('done')\n"},
                                         {"ex.py": "print('done')\nprint('x' * 5000)\n"})
    run = grade(student, reference, settings=SandboxSettings(max_output_bytes=1024)).tests[0]
    assert first(run) == (
        "COMPLETED", "FAILED", "E   AssertionError: Variable `stdout` has incorrect len, "
        "expected: 5, obtained 1024 (the program printed more than the 1024 characters kept)")


def test_a_huge_exception_message_is_cut_and_says_so(tmp_path):
    run, student = one_collection(tmp_path, "x = 1\nraise Exception('A' * 30_000_000)\n")
    note = " [... cut: 30000000 characters in all]"
    cut = "A" * (2000 - len(note)) + note
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: {cut}")
    assert run.debug["traceback"]["errormsg"] == cut
    assert len(json.dumps(run.to_dict())) < 20_000


def test_a_result_document_of_the_wrong_shape_is_graded_as_a_crash(tmp_path):
    forged = ('{"error": "boom", "entry_seconds": "abc", "stdout": null, "figures": [], '
              '"values": {"x": {"found": true, "value": {"t": "int", "v": "0x1"}}}, '
              '"texts": {}, "evals": {}}')
    code = f"""
        import os
        x = 2
        channel = os.open("/opt/gradehook/result", os.O_WRONLY)
        os.write(channel, b"\\n" + {forged!r}.encode() + b"\\n")
        os._exit(0)
    """
    run, student = one_collection(tmp_path, code)
    assert first(run) == (
        "CRASHED", "FAILED",
        f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: the run handed back a "
        f"malformed result: entry_seconds must be a number of seconds no longer than the run "
        f"took")


def test_nan_and_infinity_the_program_computes_are_compared_as_the_spec_says(tmp_path):
    code = """
        import numpy as np
        x = 1
        nan = float("nan")
        inf = float("inf")
        array = np.array([1.0, np.nan, -np.inf])
    """
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: values
              entryPoint: ex.py
              tests:
                - name: nan
                - name: inf
                - name: array
    """, {"ex.py": code}, {"ex.py": code})
    run = grade(student, reference).tests[0]
    assert [(t.name, t.result, t.details) for t in run.tests] == [
        ("nan", "FAILED", "E   AssertionError: Variable `nan` has incorrect value "
                          "(`nan` instead of `nan`)"),
        ("inf", "PASSED", None),
        ("array", "PASSED", None),
    ]
    text = json.dumps(run.to_dict())
    assert "NaN" not in text and "Infinity" not in text


@pytest.mark.parametrize(("code", "frame"), [
    ("def ask():\n    return input('a? ')\n\nx = ask()\n",
     {"name": "ask", "lineno": 2, "line": "return input('a? ')",
      "errormsg": "program reads input, but the test provides no inputAnswers",
      "raised": "EOFError: program reads input, but the test provides no inputAnswers"}),
    ("x = 1\ny = (\n",
     {"name": "<module>", "lineno": 2, "line": "y = (",
      "errormsg": "'(' was never closed (ex.py, line 2)",
      "raised": "SyntaxError: '(' was never closed (ex.py, line 2)"}),
])
def test_the_last_frame_is_the_students_line_never_the_runners(tmp_path, code, frame):
    """§3.2: debug.traceback is the last frame of the student's code, as the original gives
    it for the builtin input(), which the runner replaces; a syntax error is at its place."""
    run, student = one_collection(tmp_path, code)
    assert run.debug["traceback"] == {**frame, "filename": str(student / "ex.py")}


def test_the_test_files_a_needed_test_file_imports_are_there_too(tmp_path):
    """§5: testFiles are on sys.path; a helper the tests import may import another one."""
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: helper
              entryPoint: ex.py
              setUpCode: from checker import check
              tests:
                - name: check(x)
    """, {"ex.py": "x = 2\n",
          "tests/checker.py": "from rules import double\n\n\ndef check(v):\n"
                              "    return double(v)\n",
          "tests/rules/__init__.py": "from rules.factor import FACTOR\n\n\ndef double(v):\n"
                                     "    return FACTOR * v\n",
          "tests/rules/factor.py": "FACTOR = 2\n"},
        {"ex.py": "x = 2\n"},
        meta_yaml="properties:\n  testFiles: [tests/checker.py, tests/rules]\n")
    run = grade(student, reference).tests[0]
    assert (run.status, [(t.result, t.details) for t in run.tests]) == (
        "COMPLETED", [("PASSED", None)])


def test_a_test_file_the_tests_name_in_a_string_is_there_though_its_name_is_no_python_name(
        tmp_path):
    """A testFile is given to a run whose code names it: a data file such as table-2.csv,
    named only in a string, was taken for unnamed, and the tests opening it found nothing."""
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: data
              entryPoint: ex.py
              setUpCode:
                - import os, sys
                - found = [p for p in sys.path if os.path.isfile(os.path.join(p, 'table-2.csv'))]
              tests:
                - name: open(os.path.join(found[0], 'table-2.csv')).read()
                  value: "1,2"
    """, {"ex.py": "x = 2\n", "tests/table-2.csv": "1,2"}, {"ex.py": "x = 2\n"},
        meta_yaml="properties:\n  testFiles: [tests/table-2.csv]\n")
    run = grade(student, reference).tests[0]
    assert [(t.result, t.details) for t in run.tests] == [("PASSED", None)]


def test_an_empty_input_answer_is_an_empty_line(tmp_path):
    run, _ = one_collection(tmp_path, "name = input('name? ') or 'nobody'\nx = int(input())\n",
                            extra="inputAnswers: ['', 1]",
                            tests="- name: name\n                  value: nobody")
    assert [(t.result, t.details) for t in run.tests] == [("PASSED", None), ("PASSED", None)]


def test_an_error_of_the_runner_itself_reaches_the_log(tmp_path: Path, monkeypatch, caplog):
    """The runner's own uncaught error (here a request it cannot read) is written to the
    sandbox's stderr and logged for the staff; since descriptor 2 became the output meter's, it
    was read and dropped with the solution's output, and the run only 'exited unexpectedly'."""
    document = SandboxExecutor._document

    def without_stages(self, *args):
        return {key: value for key, value in document(self, *args).items() if key != "stages"}

    monkeypatch.setattr(SandboxExecutor, "_document", without_stages)
    with caplog.at_level("WARNING", logger="pipeline.grading.execution"):
        run, _ = one_collection(tmp_path, "x = 1\n")
    assert run.status == "CRASHED"
    logged = [record.getMessage() for record in caplog.records
              if record.name == "pipeline.grading.execution"]
    assert any("ended without its result" in message and "KeyError: 'stages'" in message
               for message in logged), logged


def test_a_message_names_the_students_files_as_they_know_them(tmp_path):
    """Before, Python's message named the module a name was not found in by its path in the
    sandbox, which the student never sees: `cannot import name 'shout' from 'stats'
    (/sandbox/work/stats.py)`."""
    student, reference = make_assignment(
        tmp_path, one_value_yaml(), {"ex.py": "from stats import shout\nx = 1\n",
                                     "stats.py": "def shout():\n    pass\n"},
        {"ex.py": "from stats import shout\nx = 1\n", "stats.py": "def shou():\n    pass\n"})
    run = grade(student, reference).tests[0]

    error = f"cannot import name 'shout' from 'stats' ({student / 'stats.py'})"
    assert first(run) == ("CRASHED", "FAILED",
                          f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: {error}")
    assert (run.debug["traceback"]["errormsg"], run.debug["traceback"]["raised"]) == (
        error, f"ImportError: {error}")


def test_what_a_tests_name_raised_names_the_students_files_as_they_know_them(tmp_path):
    """Before, what evaluating `shout()` raised named the module by its path in the sandbox."""
    shout = "def shout():\n    from helpers import yell\n    return yell()\n"
    student, reference = make_assignment(
        tmp_path, one_value_yaml().replace("- name: x", "- name: shout()"),
        {"ex.py": shout, "helpers.py": "def yell():\n    return 'A!'\n"},
        {"ex.py": shout, "helpers.py": "def shout():\n    return 'A!'\n"})
    (test,) = grade(student, reference).tests[0].tests

    assert test.debug["raised"]["error"] == (
        f"ImportError: cannot import name 'yell' from 'helpers' ({student / 'helpers.py'})")
