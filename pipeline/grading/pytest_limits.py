"""In-sandbox pytest plugin: each test's time limit, and the test stopped where it is stuck.

A test's limit is its closest `timeout` marker, spelt as pytest-timeout spells it
(``@pytest.mark.timeout(5)`` on the test, on its class, or as its module's ``pytestmark``;
``timeout(0)``: no limit of its own; ``method`` is taken and changes nothing), else the default the
runner is given. It covers the test's setup, call and teardown; with ``func_only=True``, as
pytest-timeout's, the test function alone (its call): its fixtures' setup and teardown then have no
limit of their own. Each test file's import (its collection), and each folder's conftest.py's, has
the default limit: a module's own `pytestmark` is not known before its import. The plugin tells the
watchdog (the process that started this pytest, see pytest_watchdog) when each test or import
begins, with its limit, and when it ends; of a func_only test, also when its call begins and ends,
its limit counting only in between. At the limit the watchdog sends STOP_SIGNAL, whose handler here
fails the test (or the import, failing its test file's collection) with pytest.fail, naming the
innermost line of the student's files or of the test files that it was running, and tells the
watchdog that line. The signal is SIGUSR1, not SIGALRM: a solution's own signal.alarm timeouts
neither reach this handler nor are taken over by it. A test stopped there fails on its limit even if
the student's code caught the failure: this plugin makes its report say so, so that this process
alone writes the outcome of every test that ends in it (the watchdog writes to the result channel
only once this process is gone). A handler the student's code replaces, or a test that goes on after
catching the failure, is left to the watchdog, which then ends this process. pytest-timeout itself
is not used: the sandbox's interpreter need not have it (plugins are not loaded by themselves there
either), its signal method lives in the student's process alone, and its thread method ends the
whole pytest run, the tests after the slow one with it.
"""

import contextlib
import json
import math
import os
import posixpath
import signal
import time

import pytest
from runner import innermost_in, shorten

MARKER = "timeout"
MARKER_HELP = ("timeout(seconds, func_only=False): the test's time limit in seconds (func_only: "
               "of its function alone, not its fixtures); 0: none of its own")
BAD_MARKER = ("@pytest.mark.timeout takes a number of seconds, 0 or more, as timeout(5) or "
              "timeout(timeout=5), got timeout({got})")
BAD_FUNC_ONLY = "@pytest.mark.timeout takes func_only=True or func_only=False, got timeout({got})"
TIMED_OUT = "Timeout: {subject} took longer than its time limit of {limit}"
THE_TEST = "the test"
IMPORTING = "importing {file}"
# What a folder's collection imports.
CONFTEST = "conftest.py"
STOPPED_IN = "; it was stopped in {place}"
# As pytest names the failure that pytest.fail raises in a test.
FAILURE = "Failed: {text}"
PLACE = "{file}, line {line}"
STOP_SIGNAL = signal.SIGUSR1


def subject_of(nodeid, importing):
    """Return what ran over its limit: the test, or the import of the test file nodeid (of the
    folder nodeid: its conftest.py; the tests' own folder's is "." to pytest)."""
    if not importing:
        return THE_TEST
    return IMPORTING.format(file=nodeid if nodeid.endswith(".py")
                            else posixpath.normpath(posixpath.join(nodeid, CONFTEST)))


def over_limit(seconds, subject):
    """Return the failure of a test (or an import) that ran longer than its limit."""
    return TIMED_OUT.format(subject=subject,
                            limit=f"{seconds:g} second" + ("" if seconds == 1 else "s"))


def timed_out(seconds, subject, place):
    """Return the failure of a test (or an import) stopped at its limit while it ran place."""
    return over_limit(seconds, subject) + STOPPED_IN.format(place=place)


def limit_of(item, default):
    """Return a test's limit in seconds, whether it covers the test function alone (func_only),
    and what is wrong with its timeout marker (or None)."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return default, False, None
    got = ", ".join([*map(repr, marker.args),
                     *(f"{name}={value!r}" for name, value in marker.kwargs.items())])
    try:
        given, func_only = marker_settings(*marker.args, **marker.kwargs)
        if given is None:
            seconds = default
        else:
            seconds = None if isinstance(given, bool) else float(given)
    except (TypeError, ValueError, OverflowError):
        seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return default, False, BAD_MARKER.format(got=shorten(got))
    if func_only is not None and not isinstance(func_only, bool):
        return default, False, BAD_FUNC_ONLY.format(got=shorten(got))
    return seconds, func_only is True, None


def marker_settings(timeout=None, method=None, func_only=None):
    """Return the seconds (None: the default) and func_only of a timeout marker's arguments,
    which are pytest-timeout's. Its method changes nothing: the watchdog is the one method."""
    return timeout, func_only


def stuck_in(frame, folders):
    """Return the innermost line of a stack that lies in one of the folders, as `file, line n`
    with the file relative to its folder; None when the stack holds none (pytest's own code)."""
    found = innermost_in(frame, folders)
    if found is None:
        return None
    file, lineno, _ = found
    return shorten(PLACE.format(file=file, line=lineno))


class RunningTest:
    """The test (or test file's import) this pytest is running: its limit, whether that covers
    its call alone (func_only), its marker's error, what it is called in a failure, when its limit
    began to count (None: it does not count now), and where it was stopped at its limit (None:
    not stopped)."""

    def __init__(self, seconds, problem, subject, func_only=False):
        self.seconds = seconds
        self.func_only = func_only
        self.problem = problem
        self.subject = subject
        self.started = None if func_only else time.monotonic()
        self.stopped_in = None
        self.stop_reported = False

    def counted_seconds(self):
        """Return the limit the watchdog is to count now: 0 (none) while it does not count."""
        return 0 if self.started is None else self.seconds

    def over_limit(self):
        """Tell whether the test's limit counts now and the test has run longer than it."""
        return self.started is not None and self.seconds > 0 \
            and time.monotonic() - self.started >= self.seconds

    def failure(self):
        """Return the failure of the test stopped at its limit."""
        return FAILURE.format(text=timed_out(self.seconds, self.subject, self.stopped_in))


class TimeLimits:
    """Give each test its time limit: tell the watchdog, and fail the test it interrupts.

    folders: where the student's files and the test files lie, to name where a test is stuck.
    finished: the tests an earlier pytest of the same run finished, and the test files whose
    import it ended, left out of this one.
    """

    def __init__(self, default, watchdog_fd, folders, finished):
        self.default = default
        self.watchdog_fd = watchdog_fd
        self.folders = folders
        self.finished = finished
        self.running = None

    def tell(self, message):
        """Write one message to the watchdog (gone, or its descriptor closed: nothing to do)."""
        try:
            os.write(self.watchdog_fd, (json.dumps(message) + "\n").encode("ascii"))
        except OSError:
            pass

    def pytest_configure(self, config):
        """Declare the timeout marker."""
        config.addinivalue_line("markers", MARKER_HELP)

    def pytest_ignore_collect(self, collection_path, config):
        """Leave out the test files whose import an earlier pytest of this run ended."""
        try:
            nodeid = collection_path.relative_to(config.rootpath).as_posix()
        except ValueError:
            return None
        return True if nodeid in self.finished else None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector):
        """Import a test file (or a folder's conftest.py) under the default limit, which fails
        its collection (whatever its code made of the stop) if it is stopped."""
        if not isinstance(collector, (pytest.Module, pytest.Directory)):
            return (yield)
        with self.watched(collector.nodeid, self.default, importing=True):
            report = yield
            if self.running.stopped_in is not None:
                report.outcome = "failed"
                report.longrepr = self.running.failure()
                report.result = []
            return report

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        """Leave out the tests that an earlier pytest of this run finished."""
        done = [item for item in items if item.nodeid in self.finished]
        if done:
            items[:] = [item for item in items if item.nodeid not in self.finished]
            config.hook.pytest_deselected(items=done)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """Run one test under its limit: the watchdog hears of its beginning and its end."""
        seconds, func_only, problem = limit_of(item, self.default)
        with self.watched(item.nodeid, seconds, problem, func_only=func_only):
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item):
        """Count a func_only test's limit over its call alone: the watchdog starts it again."""
        running = self.running
        if running is None or not running.func_only:
            return (yield)
        running.started = time.monotonic()
        self.tell({"begin": item.nodeid, "seconds": running.counted_seconds()})
        try:
            return (yield)
        finally:
            running.started = None
            self.tell({"begin": item.nodeid, "seconds": running.counted_seconds()})

    @contextlib.contextmanager
    def watched(self, nodeid, seconds, problem=None, importing=False, func_only=False):
        """Run a test, or a test file's import, as the running one that the watchdog hears of."""
        self.running = RunningTest(seconds, problem, subject_of(nodeid, importing), func_only)
        signal.signal(STOP_SIGNAL, self.interrupt)
        self.tell({"begin": nodeid, "seconds": self.running.counted_seconds(),
                   "importing": importing})
        try:
            yield
        finally:
            self.running = None
            self.tell({"end": nodeid})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        """Fail a test whose timeout marker is wrong before it runs."""
        if self.running is not None and self.running.problem is not None:
            pytest.fail(self.running.problem, pytrace=False)

    def interrupt(self, signum, frame):
        """Fail the running test where it is stuck, if it is over its limit and stuck in code
        of the student's or of the tests (a late signal, or one that comes while pytest itself
        reports, is left alone: the watchdog ends a test that goes on)."""
        running = self.running
        if running is None or not running.over_limit():
            return
        place = stuck_in(frame, self.folders)
        if place is None:
            return
        running.stopped_in = place
        self.tell({"stuck": place})
        pytest.fail(timed_out(running.seconds, running.subject, place), pytrace=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        """Fail a stopped test on its limit, whatever its code made of the stop (caught it and
        returned, skipped): the report of the phase it was stopped in, and any failure after."""
        report = yield
        running = self.running
        if running is not None and running.stopped_in is not None \
                and (report.failed or not running.stop_reported):
            running.stop_reported = True
            report.outcome = "failed"
            report.longrepr = running.failure()
        return report
