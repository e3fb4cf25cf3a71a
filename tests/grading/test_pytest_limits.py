"""pytest mode's time limit of each test: a test over it fails where it was stuck, the rest run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
from pipeline.grading import grade, pytest_mode
from pipeline.grading.runner import shorten
from tests.grading.builders import make_assignment

# The run's own limit, far above the tests' limits: a run that reached it would be TIMEDOUT.
META = "properties:\n  executionBackend:\n    settings: {timeout: 60}\n"
# A run's limit that the test reaches, stopping the run.
SHORT_RUN_META = "properties:\n  executionBackend:\n    settings: {timeout: 2}\n"
STOPPED = ("E   Failed: Timeout: the test took longer than its time limit of {limit}; it was "
           "stopped in {place}")
ENDED = "E   Failed: Timeout: the test took longer than its time limit of 1 second; it {how}"


def _graded(tmp_path: Path, student_code: str, test_file: str, meta: str = META,
            **settings: float) -> tuple[str, list[tuple[str, str, str | None]]]:
    """Grade the student's calc.py with the test file; return its collection's status and lines
    as (name, result, details)."""
    return _graded_files(tmp_path, student_code, {"test_calc.py": test_file}, meta,
                         **settings)["test_calc.py"]


def _graded_files(tmp_path: Path, student_code: str, test_files: dict[str, str],
                  meta: str = META, **settings: float
                  ) -> dict[str, tuple[str, list[tuple[str, str, str | None]]]]:
    """Grade the student's calc.py with the test files; return each collection's status and
    lines as (name, result, details), by file."""
    student, reference = make_assignment(
        tmp_path, None, {"calc.py": "", **test_files, "meta.yaml": meta},
        {"calc.py": student_code})
    report = grade(student, reference, settings=SandboxSettings(**settings))
    return {collection.name: (collection.status,
                              [(t.name, t.result, t.details) for t in collection.tests])
            for collection in report.tests}


# Student code that catches the stop in a busy loop and returns; a later test checks that it caught
# it. The statement before the loop keeps the stop inside the `try`: on Python 3.11 and 3.12 a stop
# in `try: while True: pass` escapes it (CPython issue 108214: the stop raised at a loop's jump
# back is looked up at the instruction before the loop's first, outside the `try` there), so such
# a test exercised an uncaught stop.
RECOVERS = """\
def recovers():
    global caught
    try:
        spins = 0
        while True:
            spins += 1
    except BaseException:
        caught = True
        return 1

caught = False
"""


def test_an_endless_test_fails_on_its_limit_naming_the_students_line_and_the_rest_run(
        tmp_path: Path):
    student_code = "def one():\n    return 1\n\ndef spin():\n    while True: pass\n"
    test_file = """
        import calc

        def test_first():
            assert calc.one() == 1

        def test_endless():
            assert calc.spin() == 1

        def test_after():
            assert calc.one() == 1
    """
    assert _graded(tmp_path, student_code, test_file, test_timeout_seconds=1) == ("COMPLETED", [
        ("test_first", "PASSED", None),
        ("test_endless", "FAILED", STOPPED.format(limit="1 second", place="calc.py, line 5")),
        ("test_after", "PASSED", None),
    ])


def test_a_run_limit_below_the_default_test_limit_leaves_the_stuck_test_half_of_it(
        tmp_path: Path):
    """A meta.yaml run limit at or below test_timeout_seconds (4 s, the default 30 s): the
    test's own limit never fired, the run's stopped the stuck test, naming no line
    ('Maximum execution time of 4.0 seconds exceeded'), and the tests after it did not run. A
    test without a marker now has half the run's limit when that is shorter: it fails where it
    was stuck, and the rest run."""
    student_code = "def one():\n    return 1\n\ndef spin():\n    while True: pass\n"
    test_file = """
        import calc

        def test_endless():
            assert calc.spin() == 1

        def test_after():
            assert calc.one() == 1
    """
    run_meta = "properties:\n  executionBackend:\n    settings: {timeout: 4}\n"
    assert _graded(tmp_path, student_code, test_file, meta=run_meta) == ("COMPLETED", [
        ("test_endless", "FAILED", STOPPED.format(limit="2 seconds", place="calc.py, line 5")),
        ("test_after", "PASSED", None),
    ])


def test_a_test_starved_of_cpu_has_its_limit_stretched_by_its_wait_and_an_endless_one_stops(
        tmp_path: Path, starved_cpu: None):
    """A test of 0.5 s of work under its limit of 1 s, given a third of a CPU (a host with three
    runs per core, as at a deadline), took 1.5 s and failed on its limit: a correct solution
    lost its points for the host's load. Its limit now runs on by the time the sandbox waited,
    ready to run, for a CPU, by at most the limit's length: an endless test still stops."""
    student_code = ("import time\n\ndef work():\n    end = time.process_time() + 0.5\n"
                    "    while time.process_time() < end:\n        pass\n    return 1\n\n"
                    "def spin():\n    while True: pass\n")
    test_file = """
        import pytest
        import calc

        @pytest.mark.timeout(1)
        def test_work():
            assert calc.work() == 1

        @pytest.mark.timeout(1)
        def test_endless():
            assert calc.spin() == 1
    """
    assert _graded(tmp_path, student_code, test_file) == ("COMPLETED", [
        ("test_work", "PASSED", None),
        ("test_endless", "FAILED", STOPPED.format(limit="1 second", place="calc.py, line 10")),
    ])


def test_a_tests_timeout_marker_sets_its_limit_and_a_wrong_one_fails_it(tmp_path: Path):
    student_code = "def one():\n    return 1\n\ndef spin():\n    while True: pass\n"
    test_file = """
        import pytest
        import calc

        pytestmark = pytest.mark.timeout(0.5)

        def test_module_limit():
            assert calc.spin() == 1

        @pytest.mark.timeout(1)
        class TestClass:
            def test_class_limit(self):
                while True: pass

        @pytest.mark.timeout("ten")
        def test_wrong_marker():
            assert calc.one() == 1

        @pytest.mark.timeout(seconds=0.5)
        def test_unknown_argument():
            assert calc.one() == 1
    """
    # The default would let every endless test reach the run's limit.
    assert _graded(tmp_path, student_code, test_file, test_timeout_seconds=600) == (
        "COMPLETED", [
            ("test_module_limit", "FAILED",
             STOPPED.format(limit="0.5 seconds", place="calc.py, line 5")),
            ("TestClass::test_class_limit", "FAILED",
             STOPPED.format(limit="1 second", place="test_calc.py, line 13")),
            ("test_wrong_marker", "FAILED",
             "E   Failed: @pytest.mark.timeout takes a number of seconds, 0 or more, as "
             "timeout(5) or timeout(timeout=5), got timeout('ten')"),
            ("test_unknown_argument", "FAILED",
             "E   Failed: @pytest.mark.timeout takes a number of seconds, 0 or more, as "
             "timeout(5) or timeout(timeout=5), got timeout(seconds=0.5)"),
        ])


def test_a_marker_spelt_for_pytest_timeout_sets_the_limit(tmp_path: Path):
    """A course's tests written for pytest-timeout name its method or func_only, or give the
    seconds as text, or None for the default. Before, each such marker failed its test for
    every student, saying the marker was wrong."""
    student_code = "def spin():\n    while True: pass\n"
    test_file = """
        import pytest
        import calc

        @pytest.mark.timeout(0.5, method="thread")
        def test_method():
            calc.spin()

        @pytest.mark.timeout(0.5, "signal")
        def test_method_given_second():
            calc.spin()

        @pytest.mark.timeout(timeout="0.5", func_only=True)
        def test_func_only():
            calc.spin()

        @pytest.mark.timeout(None, method="thread")
        def test_default():
            calc.spin()
    """
    stopped = STOPPED.format(limit="0.5 seconds", place="calc.py, line 2")
    assert _graded(tmp_path, student_code, test_file, test_timeout_seconds=1) == ("COMPLETED", [
        ("test_method", "FAILED", stopped),
        ("test_method_given_second", "FAILED", stopped),
        ("test_func_only", "FAILED", stopped),
        ("test_default", "FAILED", STOPPED.format(limit="1 second", place="calc.py, line 2")),
    ])


def test_a_func_only_limit_covers_the_test_function_alone(tmp_path: Path):
    """pytest-timeout's func_only=True limits the test function only, not its fixtures' setup and
    teardown. Before, the marker's limit covered them too: a slow fixture failed its test on a
    limit that pytest-timeout would not have counted it against."""
    student_code = "import time\n\ndef slow():\n    time.sleep(1.5)\n\n" \
                   "def spin():\n    while True: pass\n"
    test_file = """
        import pytest
        import calc

        @pytest.fixture
        def slow_setup():
            calc.slow()

        @pytest.fixture
        def slow_teardown():
            yield
            calc.slow()

        @pytest.mark.timeout(0.5, func_only=True)
        def test_slow_setup(slow_setup):
            pass

        @pytest.mark.timeout(0.5, func_only=True)
        def test_slow_teardown(slow_teardown):
            pass

        @pytest.mark.timeout(None, func_only=True)
        def test_slow_setup_default_limit(slow_setup):
            pass

        @pytest.mark.timeout(0.5, func_only=True)
        def test_endless_function(slow_setup):
            calc.spin()

        @pytest.mark.timeout(0.5, func_only=False)
        def test_slow_setup_counted(slow_setup):
            pass

        @pytest.mark.timeout(0.5, func_only="yes")
        def test_wrong_func_only():
            pass
    """
    assert _graded(tmp_path, student_code, test_file, test_timeout_seconds=1) == ("COMPLETED", [
        ("test_slow_setup", "PASSED", None),
        ("test_slow_teardown", "PASSED", None),
        ("test_slow_setup_default_limit", "PASSED", None),
        ("test_endless_function", "FAILED",
         STOPPED.format(limit="0.5 seconds", place="calc.py, line 7")),
        ("test_slow_setup_counted", "FAILED",
         STOPPED.format(limit="0.5 seconds", place="calc.py, line 4")),
        ("test_wrong_func_only", "FAILED",
         "E   Failed: @pytest.mark.timeout takes func_only=True or func_only=False, got "
         "timeout(0.5, func_only='yes')"),
    ])


def test_a_limit_longer_than_any_run_leaves_the_test_to_the_runs_limit(tmp_path: Path):
    """timeout(sys.maxsize), a course's way to say 'no limit': before, the watchdog could not
    wait that long and ended, and with it the run, every test failing 'process ended before all
    tests ran (exit code 1)'."""
    student_code = "def one():\n    return 1\n\ndef spin():\n    while True: pass\n"
    test_file = """
        import sys
        import pytest
        import calc

        def test_first():
            assert calc.one() == 1

        @pytest.mark.timeout(sys.maxsize)
        def test_unlimited():
            assert calc.spin() == 1

        def test_after():
            assert calc.one() == 1
    """
    run_limit = "Maximum execution time of 2.0 seconds exceeded"
    assert _graded(tmp_path, student_code, test_file, meta=SHORT_RUN_META,
                   test_timeout_seconds=1) == ("TIMEDOUT", [
                       ("test_first", "PASSED", None),
                       ("test_unlimited", "FAILED", f"E   Failed: {run_limit}"),
                       ("test_after", "FAILED", "E   Failed: the test did not run, as the run "
                                                f"ended during an earlier test: {run_limit}"),
                   ])


def test_a_test_that_goes_on_when_stopped_is_ended_and_the_rest_run(tmp_path: Path):
    """Code that catches the failure and goes on, or ignores every signal, is ended GRACE_SECONDS
    after its limit; pytest starts again for the tests after it. One that catches the failure
    and returns still fails on its limit. Resetting the alarm changes nothing."""
    student_code = """\
import signal
import time

def one():
    return 1

def swallows():
    while True:
        try:
            time.sleep(60)
        except BaseException:
            pass

def ignores_signals():
    for number in signal.valid_signals():
        try:
            signal.signal(number, signal.SIG_IGN)
        except (OSError, ValueError):
            pass
    while True: pass

def resets_the_alarm():
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.alarm(0)
    while True: pass

""" + RECOVERS
    test_file = """
        import calc

        def test_swallows():
            assert calc.swallows() == 1

        def test_after_swallows():
            assert calc.one() == 1

        def test_ignores_signals():
            assert calc.ignores_signals() == 1

        def test_resets_the_alarm():
            assert calc.resets_the_alarm() == 1

        def test_recovers():
            assert calc.recovers() == 1

        def test_recovers_caught_the_stop():
            assert calc.caught

        def test_last():
            assert calc.one() == 1
    """
    assert _graded(tmp_path, student_code, test_file, test_timeout_seconds=1) == ("COMPLETED", [
        ("test_swallows", "FAILED", ENDED.format(
            how="was stopped in calc.py, line 10, but went on, so its process was ended")),
        ("test_after_swallows", "PASSED", None),
        ("test_ignores_signals", "FAILED", ENDED.format(
            how="did not stop when told to, so its process was ended")),
        ("test_resets_the_alarm", "FAILED",
         STOPPED.format(limit="1 second", place="calc.py, line 25")),
        ("test_recovers", "FAILED", STOPPED.format(limit="1 second", place="calc.py, line 31")),
        ("test_recovers_caught_the_stop", "PASSED", None),
        ("test_last", "PASSED", None),
    ])


@pytest.mark.parametrize("stopped_test", [
    """
        @pytest.mark.timeout(0.5)
        def test_recovers():
            assert calc.recovers() == 1
    """,
    """
        @pytest.fixture
        def recovered():
            return calc.recovers()

        @pytest.mark.timeout(0.5)
        def test_recovers(recovered):
            assert recovered == 1
    """,
], ids=["in-the-test", "in-its-fixture"])
def test_a_long_failure_right_after_a_test_that_caught_its_stop_arrives_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped_test: str):
    """The test after one stopped at its limit fails with a message of 2,000 non-ASCII characters,
    a line of about 12 KB: more than a pipe takes at once (PIPE_BUF, 4 KB). The watchdog wrote the
    stopped test's failure while the child ran on into the next test, so the two lines could
    interleave and the host drop both. Each outcome must come from the child alone, one line a
    test, the watchdog writing nothing while the child runs."""
    student_code = RECOVERS + """
def word():
    return "\u00e9" * 3000
"""
    test_file = f"""
        import pytest
        import calc
        {stopped_test}
        def test_word():
            assert calc.word() == "done", calc.word()

        def test_recovers_caught_the_stop():
            assert calc.caught
    """
    channel_events: list[dict] = []

    def recorded_events(raw: bytes | None) -> list[dict]:
        events = read_events(raw)
        channel_events.extend(events)
        return events

    read_events = pytest_mode._events
    monkeypatch.setattr(pytest_mode, "_events", recorded_events)
    assert _graded(tmp_path, student_code, test_file) == ("COMPLETED", [
        ("test_recovers", "FAILED", STOPPED.format(limit="0.5 seconds", place="calc.py, line 5")),
        ("test_word", "FAILED", "E   " + shorten("AssertionError: " + "\u00e9" * 3000)),
        ("test_recovers_caught_the_stop", "PASSED", None),
    ])
    assert [(event["nodeid"], event["outcome"]) for event in channel_events
            if event["event"] == "test"] == [("test_calc.py::test_recovers", "failed"),
                                             ("test_calc.py::test_word", "failed"),
                                             ("test_calc.py::test_recovers_caught_the_stop",
                                              "passed")]


CALC_TESTS = """
    import calc

    def test_one():
        assert calc.one() == 1
"""
OTHER_TESTS = """
    def test_sum():
        assert sum([1, 2]) == 3
"""
IMPORT_STOPPED = ("E   Failed: the test did not run, as importing test_calc.py failed: Timeout: "
                  "importing test_calc.py took longer than its time limit of 1 second; it was "
                  "stopped in calc.py, line {line}")


@pytest.mark.parametrize("student_code, failure", [
    ("def one():\n    return 1\n\nwhile True: pass\n", IMPORT_STOPPED.format(line=4)),
    ("import time\n\ndef one():\n    return 1\n\ntry:\n    time.sleep(60)\n"
     "except BaseException:\n    pass\n", IMPORT_STOPPED.format(line=7)),
    ("import time\n\ndef one():\n    return 1\n\nwhile True:\n    try:\n"
     "        time.sleep(60)\n    except BaseException:\n        pass\n",
     IMPORT_STOPPED.format(line=8) + ", but went on, so its process was ended"),
], ids=["loops", "catches-the-stop", "catches-the-stop-and-loops-on"])
def test_a_student_module_stuck_in_its_import_fails_its_test_file_and_the_others_run(
        tmp_path: Path, student_code: str, failure: str):
    """A module that loops at its top level hung the test file importing it until the run's
    limit: every test of every file failed 'Maximum execution time of 60.0 seconds exceeded',
    naming neither the import nor the student's line. The import has the default limit of a test;
    one that catches the stop still fails, and one that goes on is ended with its process, the
    other test files run in a new one."""
    assert _graded_files(tmp_path, student_code,
                         {"test_calc.py": CALC_TESTS, "test_other.py": OTHER_TESTS},
                         test_timeout_seconds=1) == {
        "test_calc.py": ("COMPLETED", [("test_one", "FAILED", failure)]),
        "test_other.py": ("COMPLETED", [("test_sum", "PASSED", None)]),
    }


@pytest.mark.parametrize("student_code, went_on", [
    ("def one():\n    return 1\n\nwhile True: pass\n", ""),
    ("import time\n\ndef one():\n    return 1\n\nwhile True:\n    try:\n"
     "        time.sleep(60)\n    except BaseException:\n        pass\n",
     ", but went on, so its process was ended"),
], ids=["loops", "catches-the-stop-and-loops-on"])
# pytest imports the conftest.py of a top folder named test* as it starts, before it collects
# anything: such a folder's must be stopped as any other folder's.
@pytest.mark.parametrize("folder", ["slow", "tests"])
def test_a_folders_conftest_stuck_importing_the_students_code_fails_that_folders_tests(
        tmp_path: Path, student_code: str, went_on: str, folder: str):
    """Before, a folder's conftest.py that imported a module of the student's looping at its top
    level hung the run until its limit, every test of every file failing 'Maximum execution time
    of 60.0 seconds exceeded', the tests of other folders too. The conftest's import has the
    default limit of a test, and the tests of other folders run."""
    line = 4 if not went_on else 8
    failure = (f"E   Failed: the test did not run, as importing {folder}/conftest.py failed: "
               f"Timeout: importing {folder}/conftest.py took longer than its time limit of 1 "
               f"second; it was stopped in calc.py, line {line}{went_on}")
    assert _graded_files(tmp_path, student_code,
                         {f"{folder}/conftest.py": "import calc\n",
                          f"{folder}/test_calc.py": CALC_TESTS,
                          "test_other.py": OTHER_TESTS}, test_timeout_seconds=1) == {
        f"{folder}/test_calc.py": ("COMPLETED", [("test_one", "FAILED", failure)]),
        "test_other.py": ("COMPLETED", [("test_sum", "PASSED", None)]),
    }


def test_the_top_conftest_stuck_importing_the_students_code_fails_the_tests_at_its_limit(
        tmp_path: Path):
    """Before, the conftest.py beside the test files (the usual place), imported as pytest
    started, that imported a module of the student's looping at its top level hung the run until
    its limit: every test failed 'Maximum execution time of 60.0 seconds exceeded', never
    saying where. Its import has the default limit of a test, as a subfolder's conftest.py."""
    failure = ("E   Failed: the test did not run, as importing conftest.py failed: Timeout: "
               "importing conftest.py took longer than its time limit of 1 second; it was "
               "stopped in calc.py, line 4")
    assert _graded_files(tmp_path, "def one():\n    return 1\n\nwhile True: pass\n",
                         {"conftest.py": "import calc\n", "test_calc.py": CALC_TESTS,
                          "more/test_other.py": OTHER_TESTS}, test_timeout_seconds=1) == {
        "test_calc.py": ("COMPLETED", [("test_one", "FAILED", failure)]),
        "more/test_other.py": ("COMPLETED", [("test_sum", "FAILED", failure)]),
    }


def test_a_test_logging_without_end_fails_saying_so_and_the_rest_run(tmp_path: Path):
    """pytest keeps a test's log records in memory: endless logging filled the sandbox's memory,
    which ended the whole run, every test from that one on failing 'Execution of pytest failed,
    ERROR: memory limit of 128 MB exceeded'. A test that logs past the stop is stopped like one
    that prints past it, also when its code catches the stop; code that goes on logging keeps
    nothing more and is ended at its time limit."""
    student_code = """\
import logging

def one():
    return 1

def chatter():
    while True:
        logging.warning("still here")

def chatter_then_return():
    try:
        chatter()
    except BaseException:
        return 1

def chatter_on():
    while True:
        try:
            chatter()
        except BaseException:
            pass
"""
    test_file = """
        import pytest
        import calc

        def test_first():
            assert calc.one() == 1

        def test_chatter():
            calc.chatter()

        def test_chatter_then_return():
            assert calc.chatter_then_return() == 1

        @pytest.mark.timeout(1)
        def test_chatter_on():
            calc.chatter_on()

        def test_after():
            assert calc.one() == 1
    """
    # A phase may log memoryLimitMB / 128 MB, here 1 MB.
    meta = "properties:\n  executionBackend:\n    settings: {timeout: 60, memoryLimitMB: 128}\n"
    logged = ("E   Failed: the program logged more than 1 MB and was stopped, likely in an "
              "endless loop")
    status, lines = _graded(tmp_path, student_code, test_file, meta=meta, test_timeout_seconds=20)
    went_on = lines[3][2]
    assert (status, lines[:3], lines[4:]) == ("COMPLETED", [
        ("test_first", "PASSED", None),
        ("test_chatter", "FAILED", logged),
        ("test_chatter_then_return", "FAILED", logged),
    ], [("test_after", "PASSED", None)])
    # Code that catches every stop is ended 3 seconds after its time limit. The time limit's stop
    # can also land on the loop's jump back, outside the `try` (CPython checks for signals
    # there, and looks the handler up outside the loop: python/cpython#108214); the test then
    # ends at once, having logged past its stop, which is what it fails on.
    assert went_on == logged or (
        went_on.startswith(ENDED.format(how="was stopped in calc.py, line "))
        and went_on.endswith(", but went on, so its process was ended")), went_on
