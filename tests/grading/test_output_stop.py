"""A program that prints without end is stopped soon, not at its timeout, in every mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
from pipeline.grading import grade
from pipeline.grading.runner import OUTPUT_STOP_SIGNAL
from pipeline.reports.failures import describe_failure
from pipeline.reports.model import read_report
from tests.grading.builders import HOLD_EVERY_DESCRIPTOR, make_assignment, one_value_yaml

# Output kept up to 64 KB, so a run is stopped past 1 MB.
STOPS_AT_1_MB = SandboxSettings(max_output_bytes=64 * 1024)
PRINTED = "the program printed more than 1 MB and was stopped, likely in an endless loop"
# A timeout far beyond the stop, which only a run that is not stopped reaches.
META_TIMEOUT = "properties:\n  executionBackend:\n    slug: python\n    settings: {timeout: 10}\n"
SUITE = """
    properties:
      tests:
        - name: first
          entryPoint: ex.py
          timeout: 10
          tests: [{name: x}]
        - name: after
          setUpCodeDependency: 1
          setUpCode: ["y = 2"]
          tests: [{name: y}]
        - name: fresh
          entryPoint: other.py
          tests: [{name: z}]
        - name: needs
          successDependency: 1
          entryPoint: other.py
          tests: [{name: z}]
"""
CALC = "def add(a, b):\n    return a + b\n\n"
TEST_CALC = ("from calc import add, shout\n\ndef test_shout():\n    assert shout() == 2\n\n"
             "def test_add():\n    assert add(1, 2) == 3\n")


def shown(report) -> list:
    """Return each collection's name, status and (test, result, details)."""
    return [(c.name, c.status, [(t.name, t.result, t.details) for t in c.tests])
            for c in report.tests]


def stopped_first(student: Path) -> list:
    """Return what the suite shows when its first collection's program is stopped for printing:
    as after a timeout, the collection that reuses the namespace runs the program again (and it
    is stopped again), then its own code; one that needs the first to pass is skipped."""
    return [
        ("first", "CRASHED", [("x", "FAILED", f"E   Failed: Execution of {student / 'ex.py'} "
                                              f"failed, ERROR: {PRINTED}")]),
        ("after", "COMPLETED", [("y", "PASSED", None)]),
        ("fresh", "COMPLETED", [("z", "PASSED", None)]),
        ("needs", "SKIPPED",
         [("z", "SKIPPED", "Skipped: Success-Dependency `[1]` not satisfied")])]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_an_endless_print_loop_is_stopped_and_the_others_see_what_a_timeout_leaves(
        tmp_path: Path, stream: str):
    student, reference = make_assignment(
        tmp_path, SUITE, {"ex.py": "x = 1\n", "other.py": "z = 3\n"},
        {"ex.py": f"import sys\nx = 1\nwhile True:\n    print('hello', file=sys.{stream})\n",
         "other.py": "z = 3\n"})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == stopped_first(student)


@pytest.mark.parametrize("code", [
    "while True:\n    try:\n        print('hello')\n    except BaseException:\n        pass\n",
    "try:\n    while True:\n        print('hello')\nexcept BaseException:\n    pass\n",
    "import os\nwhile True:\n    try:\n        os.write(1, b'hello\\n')\n"
    "    except BaseException:\n        pass\n",
    "import subprocess\nsubprocess.Popen(['yes'])\nwhile True:\n    pass\n",
], ids=["prints-on", "ends-normally", "writes-on-to-its-descriptor", "leaves-a-writer-running"])
def test_a_program_that_goes_on_past_the_output_stop_is_stopped_all_the_same(
        tmp_path: Path, code: str):
    student, reference = make_assignment(tmp_path, one_value_yaml("timeout: 10"),
                                         {"ex.py": "x = 1\n"}, {"ex.py": "x = 1\n" + code})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == [("run", "CRASHED", [
        ("x", "FAILED", f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: {PRINTED}")])]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_program_printing_2_mb_then_ending_is_graded_on_its_values(
        tmp_path: Path, stream: str):
    code = f"import sys\nfor _ in range(2048):\n    print('x' * 1023, file=sys.{stream})\nx = 1\n"
    student, reference = make_assignment(tmp_path, one_value_yaml(), {"ex.py": "x = 1\n"},
                                         {"ex.py": code})
    assert shown(grade(student, reference)) == [("run", "COMPLETED", [("x", "PASSED", None)])]


# Ways a program writes past sys.stdout's text, straight to the descriptors 1 and 2: each an
# endless loop, as one body of statements.
PAST_PRINT = {
    "os.write": "import os\nwhile True:\n    os.write(1, b'hello\\n')\n",
    "os.write-stderr": "import os\nwhile True:\n    os.write(2, b'hello\\n')\n",
    "sys.stdout.buffer": "import sys\nwhile True:\n    sys.stdout.buffer.write(b'hello\\n')\n",
    "sys.__stdout__": "import sys\nwhile True:\n    print('hello', file=sys.__stdout__)\n",
    "subprocess": "import subprocess\nsubprocess.run(['yes'])\n",
    "os.system": "import os\nos.system('yes')\n",
}


def indented(code: str) -> str:
    """Return code as the body of a function."""
    return "".join(f"    {line}\n" for line in code.splitlines())


@pytest.mark.parametrize("code", [code for way, code in PAST_PRINT.items()
                                  if way != "sys.stdout.buffer"],
                         ids=[way for way in PAST_PRINT if way != "sys.stdout.buffer"])
def test_a_program_writing_to_its_descriptors_without_end_is_stopped_as_print_is(
        tmp_path: Path, code: str):
    """Before, such output met the sandbox's cap on what it keeps, 64 KB here: 'ERROR: output
    limit of 65536 bytes exceeded' (sys.stdout.buffer was counted as print is already)."""
    student, reference = make_assignment(
        tmp_path, SUITE, {"ex.py": "x = 1\n", "other.py": "z = 3\n"},
        {"ex.py": "x = 1\n" + code, "other.py": "z = 3\n"})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == stopped_first(student)


def test_a_program_holding_every_descriptor_it_may_is_stopped_as_print_is(tmp_path: Path):
    """Before, the descriptor meter could not make the new pipe it stops such output with once
    the program held every descriptor the sandbox allows: its error, printed, counted as the
    program printing on after the stop, which ended the whole run, and the collection reusing
    the namespace crashed 'Execution of setUpCode failed, ERROR: the program printed more than
    1 MB and was stopped'."""
    code = HOLD_EVERY_DESCRIPTOR + "x = 1\nhold_every_descriptor()\n" + PAST_PRINT["os.write"]
    student, reference = make_assignment(
        tmp_path, SUITE, {"ex.py": "x = 1\n", "other.py": "z = 3\n"},
        {"ex.py": code, "other.py": "z = 3\n"})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == stopped_first(student)


# Writes 2.5 MB to its descriptor while the output stop's signal cannot reach it, as on a busy host
# the stop reaches code a pipe's worth of output late, then lets the stop in. Each 64 KB is written
# whole and waited on until the descriptor meter has read it, so that no more than that is unread
# at the stop, nor in the meter's hands when the stop comes in.
STOP_COMES_LATE = f"""import fcntl, os, signal, struct, termios
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.{OUTPUT_STOP_SIGNAL.name}])

def unread():
    return struct.unpack('i', fcntl.ioctl(1, termios.FIONREAD, bytes(4)))[0]

for _ in range(40):
    piece = memoryview(b'x' * 65536)
    while piece:
        try:
            piece = piece[os.write(1, piece):]
        except BrokenPipeError:
            pass
    while unread():
        pass
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.{OUTPUT_STOP_SIGNAL.name}])
"""


def test_a_program_the_stop_reaches_late_is_stopped_as_print_is(tmp_path: Path):
    """Before, what a program wrote after the stop was decided and before it reached the
    program's code counted as printing on after catching the stop once it came to the limit
    again, which ended the whole run: the collection reusing the namespace, whose own code
    printed nothing, crashed 'Execution of setUpCode failed, ERROR: the program printed more
    than 1 MB and was stopped'."""
    student, reference = make_assignment(
        tmp_path, SUITE, {"ex.py": "x = 1\n", "other.py": "z = 3\n"},
        {"ex.py": "x = 1\n" + STOP_COMES_LATE, "other.py": "z = 3\n"})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == stopped_first(student)


@pytest.mark.parametrize("code", PAST_PRINT.values(), ids=PAST_PRINT.keys())
def test_a_pytest_test_writing_to_its_descriptors_without_end_fails_as_print_does(
        tmp_path: Path, code: str):
    """Before, such output went to pytest's capture file until the file size limit: the test
    failed 'OSError: [Errno 27] File too large' after 64 MB (a subprocess was ended by it and
    the test went on), or, with sys.stdout.buffer, pytest held it all in memory."""
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": CALC, "test_calc.py": TEST_CALC, "meta.yaml": META_TIMEOUT},
        {"calc.py": CALC + "def shout():\n" + indented(code)})
    (calc,) = grade(student, reference, settings=STOPS_AT_1_MB).tests
    assert (calc.status, [(t.name, t.details) for t in calc.tests]) == (
        "COMPLETED", [("test_shout", f"E   Failed: {PRINTED}"), ("test_add", None)])


@pytest.mark.parametrize("code", [
    "    while True:\n        try:\n            print('hello')\n        except BaseException:\n"
    "            pass\n",
    "    import os\n    while True:\n        try:\n            os.write(1, b'hello\\n')\n"
    "        except BaseException:\n            pass\n",
], ids=["prints-on", "writes-on-to-its-descriptor"])
def test_a_call_that_prints_on_past_the_output_stop_ends_its_run(tmp_path: Path, code: str):
    """A test's call that catches the output stop and prints on is not stopped alone: as a
    program's code that does so, it ends the whole run, so that the output counted never grows
    past the stop limit and as much again."""
    student, reference = make_assignment(
        tmp_path, one_value_yaml("timeout: 10", tests="  value: 1").replace(
            "name: x", "name: shout()"),
        {"ex.py": "def shout():\n    return 1\n"}, {"ex.py": "def shout():\n" + code})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == [("run", "CRASHED", [
        ("shout()", "FAILED",
         f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: {PRINTED}")])]


# A function that prints without end, each way a call may print: through print(), to its
# descriptor, from a program it runs.
NOISY = {
    "print": "def noisy(n):\n    while True:\n        print('hello')\n",
    "os.write": "import os\n\ndef noisy(n):\n    while True:\n        os.write(1, b'hello\\n')\n",
    "subprocess": "import subprocess\n\ndef noisy(n):\n    subprocess.run(['yes'])\n",
}


@pytest.mark.parametrize("noisy", NOISY.values(), ids=NOISY.keys())
def test_calls_that_print_without_end_fail_alone_and_the_other_tests_are_graded(
        tmp_path: Path, noisy: str):
    """Before, a test's call that printed without end stopped every lookup of its run: each
    test of the collection, add(1, 2) and add(10, 5) included, failed 'Execution of calc.py
    failed, ERROR: the program printed more than 1 MB and was stopped', the collection CRASHED,
    though calc.py ran fine and no test was named (and before that, such output went to the
    sandbox's: 'ERROR: output limit of 65536 bytes exceeded'). Each call is stopped on its own,
    as a call past the time limit is: its test fails naming it, and the other tests are
    graded."""
    student, reference = make_assignment(tmp_path, """
        properties:
          timeout: 10
          tests:
            - name: calls
              entryPoint: calc.py
              tests: [{name: 'add(10, 5)'}, {name: noisy(2)}, {name: 'add(1, 2)'},
                      {name: noisy(3)}]
    """, {"calc.py": CALC + "def noisy(n):\n    return n\n"}, {"calc.py": CALC + noisy})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == [("calls", "COMPLETED", [
        ("add(10, 5)", "PASSED", None),
        ("noisy(2)", "FAILED", "E   Failed: the program printed more than 1 MB while evaluating "
                               "`noisy(2)` and was stopped, likely in an endless loop"),
        ("add(1, 2)", "PASSED", None),
        ("noisy(3)", "FAILED", "E   Failed: the program printed more than 1 MB while evaluating "
                               "`noisy(3)` and was stopped, likely in an endless loop")])]
    failure = describe_failure(read_report(report.to_dict()).collections[0].tests[1])
    assert failure.explanation == (
        "Your program printed more than 1 MB, far more than any test needs, and was stopped, at a "
        "line gradehook cannot name. Look for a print() in a loop that never ends.")


def test_a_call_that_prints_without_end_in_the_reference_is_the_course_s_error_naming_it(
        tmp_path: Path):
    """Before, the reference's whole run crashed: every test of its collection was skipped,
    add(1, 2) included, and the course's error named the first, add(1, 2), and the crash. Only
    the call that printed is without an expected value now, and the error says why."""
    student, reference = make_assignment(tmp_path, """
        properties:
          timeout: 10
          tests:
            - {name: calls, entryPoint: calc.py, tests: [{name: 'add(1, 2)'}, {name: noisy(2)}]}
    """, {"calc.py": CALC + "def noisy(n):\n    while True:\n        print(n)\n"},
        {"calc.py": CALC + "def noisy(n):\n    return n\n"})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report) == [("calls", "COMPLETED", [
        ("add(1, 2)", "PASSED", None),
        ("noisy(2)", "SKIPPED", "Skipped: Variable `noisy(2)` not found in reference namespace")])]
    assert report.course_error == (
        "the reference solution gives no expected value for `noisy(2)` in collection `calls`: the "
        "program printed more than 1 MB while evaluating `noisy(2)` and was stopped, likely in an "
        "endless loop")


def test_a_program_asking_for_the_descriptor_of_stderr_is_graded_on_its_values(tmp_path: Path):
    """faulthandler, and a subprocess given sys.stderr, write to its descriptor. Since the
    output stop counted sys.stderr, asking for it failed the program with 'ERROR: fileno'."""
    code = ("import faulthandler, os, sys\nfaulthandler.enable()\n"
            "os.write(sys.stderr.fileno(), b'warning\\n')\nx = 1\n")
    student, reference = make_assignment(tmp_path, one_value_yaml(), {"ex.py": "x = 1\n"},
                                         {"ex.py": code})
    assert shown(grade(student, reference)) == [("run", "COMPLETED", [("x", "PASSED", None)])]


def test_a_compared_program_printing_without_end_is_stopped(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None, {"main.py": "print('hi')\n", "meta.yaml": META_TIMEOUT},
        {"main.py": "while True:\n    print('hi')\n"})
    report = grade(student, reference, settings=STOPS_AT_1_MB)
    assert shown(report)[0] == ("Program output", "CRASHED", [
        ("stdout", "FAILED",
         f"E   Failed: Execution of {student / 'main.py'} failed, ERROR: {PRINTED}")])


@pytest.mark.parametrize("shout, status, details", [
    ("def shout():\n    while True:\n        print('hello')\n", "COMPLETED",
     [f"E   Failed: {PRINTED}", None]),
    ("import sys\n\ndef shout():\n    while True:\n        sys.stderr.write('hello')\n",
     "COMPLETED", [f"E   Failed: {PRINTED}", None]),
    ("def shout():\n    while True:\n        try:\n            print('hello')\n"
     "        except BaseException:\n            pass\n", "CRASHED",
     [f"E   Failed: Execution of pytest failed, ERROR: {PRINTED}",
      "E   Failed: the test did not run, as the run ended during an earlier test: Execution of "
      f"pytest failed, ERROR: {PRINTED}"]),
], ids=["stdout", "stderr", "prints-on"])
def test_a_pytest_test_printing_without_end_fails_saying_so(
        tmp_path: Path, shout: str, status: str, details: list):
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": CALC, "test_calc.py": TEST_CALC, "meta.yaml": META_TIMEOUT},
        {"calc.py": CALC + shout})
    (calc,) = grade(student, reference, settings=STOPS_AT_1_MB).tests
    assert (calc.status, [(t.name, t.details) for t in calc.tests]) == (
        status, list(zip(["test_shout", "test_add"], details)))


def test_a_test_file_whose_import_prints_without_end_fails_saying_so(tmp_path: Path):
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": CALC, "test_calc.py": TEST_CALC, "meta.yaml": META_TIMEOUT},
        {"calc.py": "while True:\n    print('hello')\n"})
    (calc,) = grade(student, reference, settings=STOPS_AT_1_MB).tests
    assert [(t.name, t.details) for t in calc.tests] == [
        (test, "E   Failed: the test did not run, as importing test_calc.py failed: "
               f"{PRINTED}")
        for test in ("test_shout", "test_add")]


def test_a_pytest_test_printing_one_character_at_a_time_makes_no_system_call_for_each(
        tmp_path: Path):
    """Before, pytest kept each test's output in a file written through, one write(2) for each
    print: `while True: print('x', end='')` took 22 s to reach the stop (16 MB), not 10."""
    counting = ("def shout():\n    def writes():\n"
                "        with open('/proc/self/io') as io:\n"
                "            return int(next(line for line in io if line.startswith('syscw:'))"
                ".split()[1])\n"
                "    before = writes()\n    for _ in range(10000):\n        print('x', end='')\n"
                "    return writes() - before\n")
    test = "from calc import shout\n\ndef test_shout():\n    assert shout() < 100\n"
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": CALC, "test_calc.py": test}, {"calc.py": counting})
    (calc,) = grade(student, reference).tests
    assert [(t.name, t.result, t.details) for t in calc.tests] == [("test_shout", "PASSED", None)]


def test_a_pytest_test_printing_2_mb_is_graded_on_its_assertion(tmp_path: Path):
    shout = "def shout():\n    for _ in range(2048):\n        print('x' * 1023)\n    return 1\n"
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": CALC, "test_calc.py": TEST_CALC}, {"calc.py": CALC + shout})
    (calc,) = grade(student, reference).tests
    assert (calc.status, [(t.name, t.details) for t in calc.tests]) == (
        "COMPLETED", [("test_shout",
                       "E   AssertionError: assert 1 == 2\nE    +  where 1 = shout()"),
                      ("test_add", None)])


def test_a_program_dumping_its_threads_with_faulthandler_is_graded_on_its_values(tmp_path: Path):
    """faulthandler writes what it dumps to the descriptor without letting another thread run:
    with the descriptor meter's pipe of 64 KB, a dump of 40 threads' stacks (about 150 KB)
    filled it, and the program waited on it for ever: 'Maximum execution time of 5.0 seconds
    exceeded'."""
    code = ("import faulthandler, sys, threading\nready = threading.Barrier(41)\n"
            "done = threading.Event()\n\ndef deep(n):\n    if n:\n        return deep(n - 1)\n"
            "    ready.wait()\n    done.wait()\n\nfor _ in range(40):\n"
            "    threading.Thread(target=deep, args=(150,), daemon=True).start()\n"
            "ready.wait()\nfaulthandler.dump_traceback(sys.stderr, all_threads=True)\n"
            "done.set()\nx = 1\n")
    student, reference = make_assignment(tmp_path, one_value_yaml("timeout: 5"),
                                         {"ex.py": "x = 1\n"}, {"ex.py": code})
    assert shown(grade(student, reference)) == [("run", "COMPLETED", [("x", "PASSED", None)])]


def test_a_stop_below_a_megabyte_is_named_in_kilobytes(tmp_path: Path):
    """Before, the smallest output cap the settings take (1,024 bytes, so a stop at 16 KB) read
    'the program printed more than 0.015625 MB'."""
    student, reference = make_assignment(tmp_path, one_value_yaml("timeout: 10"),
                                         {"ex.py": "x = 1\n"},
                                         {"ex.py": "x = 1\nwhile True:\n    print('hello')\n"})
    report = grade(student, reference, settings=SandboxSettings(max_output_bytes=1024))
    assert shown(report) == [("run", "CRASHED", [
        ("x", "FAILED", f"E   Failed: Execution of {student / 'ex.py'} failed, ERROR: the program "
                        "printed more than 16 KB and was stopped, likely in an endless loop")])]
