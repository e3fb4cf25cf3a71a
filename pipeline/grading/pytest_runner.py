"""In-sandbox pytest runner: the assignment's test files against the student's code.

Run as ``python -s pytest_runner.py <tests dir> <ini file> <result path> <seconds> <stop limit> <log
stop limit> [pytest options]`` with the student's solution as the working directory (and HOME, hence
-s: no user site-packages from it); the reference solution's, with --collect-only, to count the
tests the course's files define. Each outcome is written as one JSON line to the result channel as
soon as it is known, so a crash or a timeout keeps what finished before it. pytest is imported
before the solution's folder goes on sys.path, last but for the tests' folder, so the solution can
neither replace pytest nor shadow an installed package or the standard library; the runners' own
modules leave sys.modules, so that the solution's modules of their names are its own. pytest runs in
a child process under a watchdog that ends a test, or a test file's import, running longer than its
time limit (seconds, unless a test's timeout marker says otherwise; 0: none) and runs the tests
after it (pytest_watchdog, pytest_limits). Messages are cut, and a test or a test file's import that
prints more than the stop limit, through sys.stdout and sys.stderr or straight to the descriptors 1
and 2, is stopped, as the runner of test.yaml collections does: pytest captures sys.stdout and
sys.stderr alone, so that what reaches the descriptors is counted (descriptor_meter). One that logs
more than the log stop limit is stopped alike (pytest keeps every log record of a test in memory). A
failed test's message keeps pytest's assertion explanation (which items differ, what a call
returned), and an error its code raised (or a test file's import: a syntax error too) names the
innermost line of the student's files it passed through, and the module of theirs it is about that
Python passed over for one of that name it already had (runner.shadowed_module). Standard input has
nothing to read: reading it raises EOFError (as input() does at the end of an input), saying that
the tests give the program none. """

import ast
import io
import logging
import os
import re
import sys
import threading

import pytest

# The plugins below need pytest 8 (pytest.Directory, new-style hook wrappers): an older one is
# the operator's to replace, said before anything else runs (pytest_mode.OLD_PYTEST).
if int(pytest.__version__.split(".")[0]) < 8:
    sys.exit(f"gradehook's pytest runner needs pytest 8 or newer, not pytest {pytest.__version__}")

from _pytest.config import ConftestImportFailure

# The runner of test.yaml collections and the time limits' modules lie beside this script, found
# while this script's folder is still first on sys.path; both runners cut messages, stop endless
# printing and write result lines alike.
from descriptor_meter import DescriptorMeter
from pytest_limits import CONFTEST, TimeLimits
from pytest_watchdog import supervise
from runner import MESSAGE_LIMIT, OUTPUT_STOP_SIGNAL, OutputMeter, PrintedWithoutEnd, \
    exit_message, forget_runner_modules, note_exits, place_in_files, shadowed_module, shorten, \
    write_line

# The lines pytest's log capture keeps of each record: its default log_format.
CAPTURED_LOG_FORMAT = "%(levelname)-8s %(name)s:%(filename)s:%(lineno)d %(message)s"
# pytest's advice to run it again more verbosely, which a student cannot do: a line of the
# explanation that is only that advice goes, and the advice that ends a line.
VERBOSE_ADVICE_LINE = "Use -v to get more diff"
VERBOSE_ADVICE_ENDING = re.compile(r", use '?-vv?'? to show$")
# The fewest characters a line of the explanation is cut to: less shows little beside the note
# saying it was cut.
SHORTEST_CUT_LINE = 100
# What fails a test on behalf of pytest or gradehook (a time limit, the output stop, a skip), not
# an error of the student's code: its place in their files is not where they went wrong.
NOT_THE_STUDENTS = (pytest.fail.Exception, pytest.skip.Exception, PrintedWithoutEnd)
# What pytest raises in place of the error that failed a test file's import, or a folder's
# conftest.py's, which it says it came from.
WRAPPED_IMPORT_ERRORS = (pytest.Collector.CollectError, ConftestImportFailure)
# The outcome of a test marked xfail that failed, as expected (pytest reports it skipped, noting
# the marker's reason); its message is that reason.
XFAILED = "xfailed"
# The phase of a test file's import, beside a test's setup, call and teardown.
COLLECT = "collect"
# What an event says of a failure whose error was not the student's code's, or is not known.
NOTHING_TRACED = {"place": None, "shadowed": None}
# Why reading standard input failed.
NO_INPUT = "the program reads input, but the tests give it none"
# What pytest takes only from a conftest.py imported as it starts: the plugins it names, and the
# hook it calls as the session starts.
NEEDED_AT_START = frozenset({"pytest_plugins", "pytest_sessionstart"})
# The encoding standard input names: the sandbox's locale's (LANG=C.UTF-8).
STDIN_ENCODING = "utf-8"


def first_line(text):
    """Return the first line of a text, shortened."""
    return shorten(str(text).strip().splitlines()[0]) if str(text).strip() else ""


class Recorder:
    """A pytest plugin that streams collection and test outcomes to a descriptor."""

    def __init__(self, fd, announce_collection, solution_dir):
        self.fd = fd
        self.announce_collection = announce_collection
        self.solution_dir = solution_dir
        # Where the error of each failed phase (node id, and setup, call, teardown or collect: a
        # test file's import) passed last through the student's files and the module of theirs
        # it is about that Python passed over, with the failure its report showed then.
        self.places = {}
        # The descriptor meter's thread may end the run while the main thread writes an event:
        # a line longer than PIPE_BUF is not written at once.
        self.writing = threading.Lock()

    def emit(self, event):
        """Write one event as a JSON line."""
        with self.writing:
            write_line(self.fd, event)

    def pytest_collection_finish(self, session):
        """Announce every collected test (once a run: not again for the tests after one that
        overran its limit)."""
        if self.announce_collection:
            self.emit({"event": "collected", "tests": [item.nodeid for item in session.items]})

    def pytest_collectreport(self, report):
        """Report a test file that could not be collected."""
        if report.failed:
            self.emit({"event": "collecterror", "nodeid": report.nodeid,
                       "message": collect_message(report), **self.traced(report, COLLECT)})

    def pytest_internalerror(self, excinfo):
        """Report what stopped pytest itself (a SystemExit raised while a test file imported),
        or a KeyboardInterrupt, which ends pytest's session."""
        self.emit({"event": "stopped", "message": first_line(excinfo.exconly())})

    pytest_keyboard_interrupt = pytest_internalerror

    def pytest_collectstart(self, collector):
        """Report that a test file's import begins (or a folder's, with its conftest.py): a run
        that ends before the next one begins, and before any test, ended during it."""
        if isinstance(collector, (pytest.Module, pytest.Directory)):
            self.emit({"event": "began", "nodeid": collector.nodeid})

    def pytest_runtest_logstart(self, nodeid, location):
        """Report that a test begins: a run that ends before the next one begins ended during
        it, its teardown too (where the fixtures of its file or session may be torn down)."""
        self.emit({"event": "began", "nodeid": nodeid})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Note where a phase's error passed last through the student's files, if it did."""
        report = yield
        if call.excinfo is not None:
            self.note_place(item.nodeid, call.when, report.longrepr, call.excinfo.value)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        """Note the failure of a test file's import as pytest reports it (its error comes with
        pytest_exception_interact). A SystemExit raised as it was imported (the student's
        module calling sys.exit() at its top level), which would stop pytest, fails that
        import alone, as any other error of the student's code does."""
        try:
            report = yield
        except SystemExit as exited:
            # Worded as a test.yaml run's exit is (its `E` line is what collect_message reads).
            report = pytest.CollectReport(collector.nodeid, "failed",
                                          f"E   {exit_message(exited.code)}", [])
            self.note_place(collector.nodeid, COLLECT, report.longrepr, exited)
            return report
        if report.failed:
            self.places[collector.nodeid, COLLECT] = (report.longrepr, None)
        return report

    def pytest_exception_interact(self, node, call, report):
        """Note where the error that failed a test file's import (or a folder's conftest.py's)
        passed last through the student's files."""
        if isinstance(report, pytest.CollectReport) and call.excinfo is not None:
            failure, _ = self.places.get((report.nodeid, COLLECT), (None, None))
            error = call.excinfo.value
            if isinstance(error, WRAPPED_IMPORT_ERRORS) and error.__cause__ is not None:
                error = error.__cause__
            self.note_place(report.nodeid, COLLECT, failure, error)

    def note_place(self, nodeid, phase, failure, error):
        """Note where the error of a phase passed last through the student's files and the
        module of theirs it is about that Python passed over, with the failure its report showed
        then."""
        if not isinstance(error, NOT_THE_STUDENTS):
            self.places[nodeid, phase] = (failure, {
                "place": place_in_files(error, self.solution_dir),
                "shadowed": shadowed_module(error, self.solution_dir)})

    def traced(self, report, phase):
        """Return where the error of a phase's report passed last through the student's files
        and the module of theirs it is about that Python passed over (an event's "place" and
        "shadowed"); None each when its report shows another failure now (a test, or a test
        file's import, stopped at its time limit fails on that, whatever its code raised
        after)."""
        failure, found = self.places.pop((report.nodeid, phase), (None, None))
        return found if found is not None and failure is report.longrepr else NOTHING_TRACED

    def pytest_runtest_logreport(self, report):
        """Report a test once its outcome is decided."""
        decided = report.when == "call" or (report.when == "setup" and not report.passed) \
            or (report.when == "teardown" and report.failed)
        traced = self.traced(report, report.when)
        if decided and report.skipped and hasattr(report, "wasxfail"):
            self.emit({"event": "test", "nodeid": report.nodeid, "outcome": XFAILED,
                       "when": report.when, "message": first_line(report.wasxfail),
                       **NOTHING_TRACED})
        elif decided:
            self.emit({"event": "test", "nodeid": report.nodeid, "outcome": report.outcome,
                       "when": report.when, "message": crash_message(report), **traced})


class MeteredStream:
    """A stream that writes to another and counts what it writes on a meter (text in characters,
    and bytes through its buffer)."""

    def __init__(self, stream, meter):
        self.stream = stream
        self.meter = meter

    def write(self, data):
        """Write the text (or bytes), then count it."""
        written = self.stream.write(data)
        self.meter.count(len(data))
        return written

    def writelines(self, lines):
        """Write each line as write does."""
        for line in lines:
            self.write(line)

    @property
    def buffer(self):
        """Return the binary side of the stream, metered on the same meter."""
        return MeteredStream(self.stream.buffer, self.meter)

    def __getattr__(self, name):
        return getattr(self.stream, name)


class LogMeter(logging.Handler):
    """A handler, the root logger's first, that counts the lines pytest's log capture keeps on a
    meter: the record that passes its limit, and every one after it, raises PrintedWithoutEnd in
    the code that logs it before the capture (a later handler) keeps it."""

    def __init__(self, meter):
        super().__init__()
        self.meter = meter
        self.setFormatter(logging.Formatter(CAPTURED_LOG_FORMAT))

    def emit(self, record):
        """Count the record's line."""
        try:
            line = self.format(record)
        except Exception:
            # Its message cannot be formatted: pytest's capture fails the test on that itself.
            line = ""
        self.meter.count(len(line) + 1)


class NoInput(io.TextIOBase):
    """Standard input with nothing to read: reading it raises EOFError, as input() does at the
    end of an input, saying why (pytest's own raises OSError, saying to run pytest with -s)."""

    def readable(self):
        """Tell that this stream is read from."""
        return True

    @property
    def encoding(self):
        """Name the encoding a program may read its input in, as a terminal's is (io's stand-in
        names none, and sys.stdin.encoding.lower() failed)."""
        return STDIN_ENCODING

    @property
    def buffer(self):
        """Return the binary side of the stream: this one, which has nothing to read either."""
        return self

    def read(self, size=-1):
        """End reading: there is no input."""
        raise EOFError(NO_INPUT)

    def readline(self, size=-1):
        """End reading: there is no input (input() reads here)."""
        raise EOFError(NO_INPUT)

    def close(self):
        """Stay open, as pytest's own does: the stream serves every test after this one."""


class NoInputGiven:
    """A pytest plugin that gives the whole session standard input with nothing to read, in place
    of pytest's own: input that a test file or a fixture gives stays until it is taken back, as
    it did with pytest's."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session):
        """Replace pytest's standard input, set once its capture has begun (which puts the
        original back when it ends)."""
        sys.stdin = NoInput()


class FolderConftestsAtCollection:
    """A pytest plugin that leaves the conftest.py of each folder of the tests to be imported as
    its folder is collected: under the import's time limit, a failure failing that folder's tests.

    pytest imports, as it starts and before anything is collected, the conftest.py of the tests'
    folder and of each folder in it whose name starts with "test" (a course's `tests/`): one of
    those stuck in the student's code hung the whole run, and one whose import failed ended it
    with every test of every folder not run. A conftest.py that names plugins (`pytest_plugins`)
    or hooks the session's start, which pytest takes from no conftest.py imported later, is still
    imported as pytest starts (with those of the folders above it); one of those whose import
    fails is left to be imported again as its folder is collected, where its failure fails the
    folder's tests.
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_load_initial_conftests(self, early_config):
        """Let pytest import at its start only the conftest.py files it needs then."""
        manager = early_config.pluginmanager
        load = getattr(manager, "_loadconftestmodules", None)
        if load is None:  # a pytest other than those known: its own way, all of them at start
            return (yield)

        def load_at_start(path, *args, **kwargs):
            if not needed_at_start(os.path.join(path, CONFTEST)):
                return
            try:
                load(path, *args, **kwargs)
            except ConftestImportFailure:
                pass  # imported again, failing again, as its folder is collected

        manager._loadconftestmodules = load_at_start
        try:
            return (yield)
        finally:
            del manager._loadconftestmodules


def needed_at_start(conftest):
    """Tell whether pytest needs a conftest.py as it starts: it assigns `pytest_plugins`, or
    defines a hook pytest calls at its start alone, at its top level."""
    try:
        with open(conftest, "rb") as source:
            module = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        return False
    names = {target.id for node in module.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
             if isinstance(target, ast.Name)}
    names.update(node.name for node in module.body if isinstance(node, ast.FunctionDef))
    return not names.isdisjoint(NEEDED_AT_START)


def refuse_log():
    """Refuse a record logged after the log stop: the capture keeps no more."""
    raise PrintedWithoutEnd()


class OutputStop:
    """A pytest plugin that stops a test, or a test file's import, printing or logging past its
    stop limit.

    sys.stdout and sys.stderr are metered inside pytest's capture of each phase, what reaches the
    descriptors 1 and 2 on the same meter (the descriptor meter's), and the records that reach
    the root logger's handlers (pytest's log capture) on a meter of their own. A phase that
    printed past the limit is reported with a "printed" event, one that logged past the log limit
    with a "logged" event (it fails, even if its code caught the stop); code that prints on after
    catching it (through the streams, or as much again to the descriptors) ends the run with a
    "printed_on" event, and a record logged after the stop is refused again.
    """

    def __init__(self, recorder, stop_limit, log_stop_limit, descriptors):
        self.recorder = recorder
        self.stop_limit = stop_limit
        self.log_stop_limit = log_stop_limit
        self.descriptors = descriptors

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_make_collect_report(self, collector):
        """Meter a collector's output (a test file's import)."""
        return (yield from self.metered(collector.nodeid))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self, item):
        """Meter a test's setup."""
        return (yield from self.metered(item.nodeid))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item):
        """Meter a test's call."""
        return (yield from self.metered(item.nodeid))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item):
        """Meter a test's teardown."""
        return (yield from self.metered(item.nodeid))

    def metered(self, nodeid):
        """Run a phase with its stdout and stderr, streams and descriptors, counted on one meter
        and its log records on another (a hook wrapper's body)."""
        meter = OutputMeter(self.stop_limit, lambda: self.end_run(nodeid))
        log_meter = OutputMeter(self.log_stop_limit, refuse_log)
        log_handler = LogMeter(log_meter)
        root = logging.getLogger()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = MeteredStream(saved[0], meter), MeteredStream(saved[1], meter)
        # First of the root logger's handlers: it refuses a record before pytest's capture keeps it.
        root.handlers.insert(0, log_handler)
        self.descriptors.meter = meter
        try:
            with meter.stoppable():
                return (yield)
        finally:
            self.descriptors.meter = None
            sys.stdout, sys.stderr = saved
            root.removeHandler(log_handler)
            if meter.stopped:
                self.recorder.emit({"event": "printed", "nodeid": nodeid})
            if log_meter.stopped:
                self.recorder.emit({"event": "logged", "nodeid": nodeid})

    def end_run(self, nodeid, leave=os._exit):
        """End the run: the code of nodeid caught the stop and printed on."""
        self.recorder.emit({"event": "printed_on", "nodeid": nodeid})
        leave(0)


def crash_message(report):
    """Return the one-line reason of a failed or skipped report."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return first_line(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return explained(crash.message)
    return error_line(str(longrepr))


def explained(message):
    """Return a failure's first line, cut as every message is, then pytest's explanation of an
    assertion (the lines after it: which items differ, what a call returned), without blank lines
    and advice to run pytest more verbosely, as far as it fits within the same limit (the line
    that does not fit cut to what is left, unless that is too little to read)."""
    text = first_line(message)
    for line in str(message).strip().splitlines()[1:]:
        line = VERBOSE_ADVICE_ENDING.sub("", line.rstrip())
        if not line.strip() or line.strip() == VERBOSE_ADVICE_LINE:
            continue
        room = MESSAGE_LIMIT - len(text) - 1
        if len(line) > room:
            return text + "\n" + shorten(line, room) if room >= SHORTEST_CUT_LINE else text
        text += "\n" + line
    return text


def error_line(text):
    """Return the first `E` line of a report's text, pytest's error (a fixture not found), else
    its first line: the text starts with where the error lies, a path in the sandbox."""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return first_line(errors[0] if errors else text)


def collect_message(report):
    """Return the error that stopped a test file from being collected (its last `E` line)."""
    lines = [line[4:] for line in str(report.longrepr).splitlines() if line.startswith("E   ")]
    return shorten(lines[-1]) if lines else crash_message(report)


def main(tests_dir, ini_path, result_path, seconds, stop_limit, log_stop_limit, options):
    """Run pytest on the test directory under the watchdog and stream its outcomes (options:
    pytest's own, added to the runner's: --collect-only announces the tests and runs none)."""
    fd = os.open(result_path, os.O_WRONLY)
    # Before any code of the student's runs: the channel is a pipe, so no code can take it back.
    write_line(fd, {"event": "started"})
    own = {os.path.dirname(os.path.abspath(__file__)),
           *os.environ.get("PYTHONPATH", "").split(os.pathsep)}
    sys.path[:] = [path for path in sys.path if path and os.path.abspath(path) not in own]
    forget_runner_modules()
    # The tests' folder after it, as `python -m pytest` run in the assignment's folder has it: a
    # test file in a subfolder imports a testFile at the top (`import helpers`) without a conftest.
    sys.path += [os.getcwd(), tests_dir]
    folders = (os.getcwd(), tests_dir)
    default_seconds = float(seconds)

    def run_pytest(finished, watchdog_fd):
        # Test files are imported before any test runs: a pytest after one whose import was
        # ended (a test file's node id, without "::") has announced no tests yet.
        recorder = Recorder(fd, announce_collection=not any("::" in nodeid
                                                            for nodeid in finished),
                            solution_dir=folders[0])
        note_exits(folders[0], recorder.emit)
        limits = TimeLimits(default_seconds, watchdog_fd, folders, finished)
        descriptors = DescriptorMeter(OUTPUT_STOP_SIGNAL)
        # Captured output is not shown: pytest's own output is never read (it goes to the
        # descriptor meter, which keeps none).
        code = pytest.main([tests_dir, "-c", ini_path, "--rootdir", tests_dir, "-q",
                            "-p", "no:cacheprovider", "--continue-on-collection-errors",
                            "--capture=sys", "--show-capture=no", *options],
                           plugins=[recorder, limits, NoInputGiven(),
                                    FolderConftestsAtCollection(),
                                    OutputStop(recorder, stop_limit, log_stop_limit,
                                               descriptors)])
        recorder.emit({"event": "done", "exit": int(code)})

    supervise(run_pytest, lambda event: write_line(fd, event))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
         sys.argv[7:])
