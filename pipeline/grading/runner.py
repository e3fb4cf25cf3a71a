"""In-sandbox runner: one (collection, side) solution run, values out through the result channel.

Run as a script inside the sandbox: ``python -s runner.py <request.json> <result path>`` (-s: no
user site-packages from the solution's folder, which is HOME). It imports
only the standard library until the student's code has run (numpy and matplotlib are seeded and
made headless through import hooks only if the code imports them), then evaluates the requested
names and writes tagged JSON to the result channel; never to stdout. Messages the solution
controls (exception texts, traceback lines, sys.exit codes) are cut to MESSAGE_LIMIT characters.
What a stage prints is counted, through sys.stdout and sys.stderr or straight to the descriptors 1
and 2 (descriptor_meter): past the request's stop_limit the stage is stopped (OutputMeter), as its
timer stops it. Each lookup (one test's name or expression, evaluated and handed back once the
stages have run) has what remains of the collection's time limit once its stages and the lookups
before it ran (at least LEAST_LOOKUP_SECONDS), and what it prints is counted as a stage's is, on
a meter of its own: one that runs past its time (noted with where in the solution's files it
was) or prints past stop_limit is stopped and noted as such, and the next lookups go on.
"""

import builtins
import contextlib
import io
import json
import os
import signal
import sys
import threading
import time
import types

from pipeline.sandbox.cpu_wait import StretchedLimit, sandbox_tasks
from pipeline.sandbox.spare_descriptors import reserve, using_spares

NO_INPUT_ANSWERS = "program reads input, but the test provides no inputAnswers"
NO_MORE_INPUT_ANSWERS = "program reads input, but the test provides no more inputAnswers"
EXITED_WITH = "program exited with sys.exit({code})"
# A program that ended its process at once with os._exit(), which leaves Python no SystemExit to
# catch: the call is noted in the result channel just before (note_exits).
OS_EXITED_WITH = "program exited with os._exit({code})"
OS_EXIT_EVENT = "os._exit"
MESSAGE_LIMIT = 2000
CUT_NOTE = " [... cut: {total} characters in all]"
# What the descriptor meter sends the main thread to stop code that printed past the limit (the
# timer has SIGALRM, pytest mode's time limits SIGUSR1).
OUTPUT_STOP_SIGNAL = signal.SIGUSR2
# The modules the runners import from their own folder (this one too, when the pytest runner
# imports it): once imported, they leave sys.modules, as their folder leaves sys.path, so that a
# module of the solution's of one of their names (runner.py) is imported as its own.
RUNNER_MODULES = ("runner", "descriptor_meter", "pytest_limits", "pytest_watchdog")
# The tests' lookups run after the stage's last step: the "output" error of a lookup whose code
# printed on after its output was stopped, which ends the run, names it.
LOOKUP_STEP = "teardown"
# Written to the result channel as the lookups begin, once the stages have ended: a run that ends
# without its outcome after it ended during the lookups.
LOOKUPS_BEGAN = {"event": "lookups began"}
# The entry of a lookup the output stop stopped (it printed past the stop limit).
FLOODED = {"found": False, "flooded": True}
# The least time a lookup has, when the collection's code took (nearly) all of its limit: the
# timer takes 0 for no limit.
LEAST_LOOKUP_SECONDS = 0.1


class RunTimedOut(BaseException):
    """Raised by the interval timer when a run exceeds its timeout."""


class PrintedWithoutEnd(BaseException):
    """Raised in the solution's code on the write that takes its output past the stop limit."""


class OutputMeter:
    """Count what a stage prints to stdout and stderr together, by any way, and stop it past a
    limit.

    Text written through sys.stdout or sys.stderr is counted as it is written, in characters
    (count): the write that takes the count past stop_limit raises PrintedWithoutEnd, a
    BaseException as the timer's. Bytes that reach the descriptors some other way are counted by
    the descriptor meter's thread as it reads them (count_written): when they come past the
    limit, that thread stops what writes to them, the stage's thread where it is (stop_here
    raises PrintedWithoutEnd there while the stage's code runs). Code that prints on after the stop
    caught it: a write through the streams after it, or as much again as the limit reaching the
    descriptors beyond what was still on its way to them when the stop was decided, calls end_run,
    which ends the whole run and does not return.
    """

    def __init__(self, stop_limit, end_run):
        self.stop_limit = stop_limit
        self.end_run = end_run
        # Each changed by one thread alone: room by the stage's (the limit less what the streams
        # took), written by the descriptor meter's.
        self.room = stop_limit
        self.written = 0
        self.running = False  # the stage's code runs: stop_here may stop it
        self.stopped = False
        self.raised = False
        self.writers_stopped = False

    def count(self, size):
        """Count text of size characters written through the streams; stop the code once the
        count passes the limit."""
        self.room -= size
        if self.room < self.written:
            if self.raised:
                self.end_run()
            self.stopped = self.raised = True
            raise PrintedWithoutEnd()

    def count_written(self, size, in_flight):
        """Count bytes that reached the descriptors; return True once they are past the limit:
        then what writes to them is to be stopped. Up to in_flight bytes after that may have been
        written before the stop reached the code: only past them does it print on."""
        self.written += size
        if self.written > self.room + self.stop_limit + in_flight:
            self.end_run()
        if self.writers_stopped or self.written <= self.room:
            return False
        self.stopped = self.writers_stopped = True
        return True

    @contextlib.contextmanager
    def stoppable(self):
        """Let stop_here stop the code while the block runs."""
        self.running = True
        try:
            yield
        finally:
            self.running = False

    def stop_here(self):
        """Raise PrintedWithoutEnd in the stage's code if the descriptors decided the stop and
        it was not raised yet."""
        if self.stopped and self.running and not self.raised:
            self.raised = True
            raise PrintedWithoutEnd()


class BytesSink:
    """The binary side of a captured stream: bytes written are decoded into its text."""

    def __init__(self, text_stream):
        self.text_stream = text_stream

    def write(self, data):
        """Decode the bytes and keep them as text."""
        self.text_stream.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self):
        """Nothing to flush."""


class CappedWriter(io.TextIOBase):
    """A text stream that keeps at most a fixed number of characters of what is written and
    counts all of it on a meter.

    fd, if given, is the descriptor of the stream it stands in for, which fileno() hands out
    (faulthandler, a subprocess's stderr): what is written there goes past it, to the descriptor
    meter, which counts it on the same meter.
    """

    encoding = "utf-8"

    def __init__(self, limit, meter, fd=None):
        super().__init__()
        self.space = limit
        self.meter = meter
        self.fd = fd
        self.parts = []
        self.truncated = False
        self.buffer = BytesSink(self)

    def writable(self):
        """Tell io that this stream accepts writes."""
        return True

    def fileno(self):
        """Return the descriptor of the stream this one stands in for; without one, refuse."""
        return super().fileno() if self.fd is None else self.fd

    def write(self, text):
        """Count the text, keep it up to the limit and report it all as written.

        Once the limit is kept, a write only counts: an endless loop printing one character
        at a time calls this millions of times.
        """
        if text.__class__ is not str:
            text = str(text)
        size = len(text)
        self.meter.count(size)
        if self.space > 0:
            kept = text[:self.space]
            self.parts.append(kept)
            self.space -= len(kept)
            if len(kept) < size:
                self.truncated = True
        elif size:
            self.truncated = True
        return size

    def getvalue(self):
        """Return everything kept so far."""
        return "".join(self.parts)


class AfterImportLoader:
    """Delegate loading a module, then call a hook on the loaded module."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        """Let the real loader create the module."""
        return self._loader.create_module(spec)

    def exec_module(self, module):
        """Execute the module with the real loader, then run the hook."""
        self._loader.exec_module(module)
        self._hook(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class ImportHooks:
    """A meta path finder that seeds numpy and neutralises pyplot.show when they are imported."""

    def __init__(self, mpl_config_source):
        self.mpl_config_source = mpl_config_source
        self.hooks = {"numpy": seed_numpy, "matplotlib": self.prepare_matplotlib,
                      "matplotlib.pyplot": disable_show}

    def find_spec(self, fullname, path, target=None):
        """Wrap the real spec's loader for the modules that need a hook."""
        hook = self.hooks.get(fullname)
        if hook is None:
            return None
        if fullname == "matplotlib":
            hook(None)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and fullname != "matplotlib":
                    spec.loader = AfterImportLoader(spec.loader, hook)
                return spec
        return None

    def prepare_matplotlib(self, module):
        """Give matplotlib a writable config dir, seeded with the prebuilt font cache if any."""
        import shutil
        import tempfile

        target = os.environ.get("MPLCONFIGDIR") or tempfile.mkdtemp(prefix="mpl-")
        os.makedirs(target, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = target
        source = self.mpl_config_source
        if source and os.path.isdir(source):
            for name in os.listdir(source):
                if not os.path.exists(os.path.join(target, name)):
                    shutil.copy(os.path.join(source, name), target)


def seed_numpy(module):
    """Seed numpy's global random generator as the original engine does."""
    module.random.seed(1)


def disable_show(module):
    """Make pyplot.show a no-op."""
    module.show = lambda *args, **kwargs: None


# fired: the stage ran past its timeout, whatever its code made of the RunTimedOut raised in it;
# stopped_at: where in the files of the solution's folder its code was then (innermost_in);
# limit: the stage's timeout, stretched by the sandbox's wait for a CPU (cpu_wait).
TIMER = {"armed": False, "fired": False, "folder": None, "stopped_at": None, "limit": None}


def innermost_in(frame, folders):
    """Return where the innermost frame of a stack that lies in one of the folders is: its file
    relative to its folder, its line number and its function's name; None when none does."""
    while frame is not None:
        path = frame.f_code.co_filename
        for folder in folders:
            if path.startswith(folder + os.sep):
                return path[len(folder) + 1:], frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back
    return None


def on_alarm(signum, frame):
    """Interrupt the running code once when its time is up, noting where it was; while the
    sandbox waited for a CPU, its time runs on."""
    if TIMER["armed"]:
        left = TIMER["limit"].deadline() - time.monotonic()
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        TIMER["armed"] = False
        TIMER["fired"] = True
        TIMER["stopped_at"] = innermost_in(frame, [TIMER["folder"]])
        raise RunTimedOut()


def arm_timer(seconds):
    """Start the one-shot run timer (0 means no limit)."""
    TIMER["fired"] = False
    TIMER["stopped_at"] = None
    if seconds > 0:
        TIMER["limit"] = StretchedLimit(seconds, sandbox_tasks)
        TIMER["armed"] = True
        signal.setitimer(signal.ITIMER_REAL, seconds)


def disarm_timer():
    """Stop the run timer; a signal already on its way is ignored."""
    TIMER["armed"] = False
    signal.setitimer(signal.ITIMER_REAL, 0)


def time_left(seconds):
    """Return a function that tells what then remains of the limit of seconds the timer last
    ran with, stretched as it is, at least LEAST_LOOKUP_SECONDS (0: no limit): the lookups share
    what the code left of the collection's limit, each having what the ones before it left."""
    if seconds <= 0:
        return lambda: 0
    limit = TIMER["limit"]
    return lambda: max(limit.deadline() - time.monotonic(), LEAST_LOOKUP_SECONDS)


@using_spares
def stopped_place():
    """Return where in the solution's files the timer stopped its code, as a crash's last frame
    (name, filename, lineno, line), or None when it was in none of them."""
    import linecache

    if TIMER["stopped_at"] is None:
        return None
    file, lineno, name = TIMER["stopped_at"]
    line = linecache.getline(os.path.join(TIMER["folder"], file), lineno).strip()
    return {"name": shorten(name), "filename": shorten(file), "lineno": lineno,
            "line": shorten(line) if line else None}


def note_exits(folder, emit, real_exit=os._exit):
    """Make os._exit, called from the solution's files in this process, emit where it was called
    (its file relative to the folder, line number and line) with its code before it ends the
    process; its other calls (the runners' own, a child process's) end it as before."""
    import linecache

    runner_pid = os.getpid()

    @using_spares
    def exit_noting_place(code):
        try:
            found = innermost_in(sys._getframe(1), [folder])
            if found is not None and type(code) is int and os.getpid() == runner_pid:
                file, lineno, _ = found
                line = linecache.getline(os.path.join(folder, file), lineno)
                emit({"event": OS_EXIT_EVENT, "code": code,
                      "place": {"file": shorten(file), "lineno": lineno,
                                "line": code_line(line) or None}})
        finally:
            real_exit(code)

    os._exit = exit_noting_place


def timed_out(step):
    """Return the error of a stage its timer stopped, with the line of the solution's files it
    was running then (as a crash's last frame), if it was in them."""
    error = {"step": step, "kind": "timeout"}
    place = stopped_place()
    if place is not None:
        error["traceback"] = place
    return error


def make_input(answers_given):
    """Return an input() that reads sys.stdin and explains a read past the answers."""

    def answer_input(prompt=""):
        """Read one answer, echoing the prompt (not the answer) to stdout."""
        sys.stdout.write(str(prompt))
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError(NO_MORE_INPUT_ANSWERS if answers_given else NO_INPUT_ANSWERS)
        return line[:-1] if line.endswith("\n") else line

    return answer_input


def exit_message(code):
    """Return how a program that ended with SystemExit is told: by the call that ends so, as its
    code would write it (`sys.exit()` without a code)."""
    return shorten(EXITED_WITH.format(code="" if code is None else repr(code)))


def shorten(text, limit=MESSAGE_LIMIT):
    """Return text cut to limit characters (MESSAGE_LIMIT), ending in a note of how long it
    was."""
    if len(text) <= limit:
        return text
    note = CUT_NOTE.format(total=len(text))
    return text[:limit - len(note)] + note


def error_text(exc):
    """Return str(exc), or the exception's class name when that is empty or str() itself fails
    (`raise RuntimeError`, `assert False`): what Python's traceback ends with, not nothing."""
    try:
        text = str(exc)
    except BaseException:
        text = ""
    return shorten(text or type(exc).__name__)


def error_line(exc):
    """Return an exception as Python's traceback ends with it: `TypeError: message`."""
    kind, text = type(exc).__name__, error_text(exc)
    return text if text == kind else shorten(f"{kind}: {text}")


def code_line(line):
    """Return a line of code as a traceback shows it, stripped and cut; None stays None."""
    return None if line is None else shorten(line.strip())


@using_spares
def last_frame(exc, solution_dir):
    """Return the last traceback frame of the solution's code as the report's traceback dict,
    with the exception as Python's traceback ends with it (raised).

    This runner's own frames are left out (its input() raises for the solution's line that read
    input); a syntax error, raised while this runner compiles the entry point, is at its place.
    When the last frame is a library's (`statistics.mean([])`), the innermost frame of the
    solution's files goes with it (solutionFrame): the line the student can change. An error
    about a module of theirs that Python passed over names it (shadowing).
    """
    import traceback

    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if frame.filename != __file__]
    if frames:
        frame = frames[-1]
        name, filename, lineno, line = frame.name, frame.filename, frame.lineno, frame.line
    elif isinstance(exc, SyntaxError) and isinstance(exc.lineno, int):
        name, filename, lineno, line = "<module>", str(exc.filename), exc.lineno, exc.text
    else:
        return {"errormsg": error_text(exc), "raised": error_line(exc),
                **shadowing(exc, solution_dir)}
    found = {"name": shorten(name), "filename": shorten(filename), "lineno": lineno,
             "line": code_line(line), "errormsg": error_text(exc),
             "raised": error_line(exc), **shadowing(exc, solution_dir)}
    own = innermost_frame_in_files(frames, solution_dir)
    if own is not None and own is not frames[-1]:
        found["solutionFrame"] = {"filename": shorten(own.filename), "lineno": own.lineno,
                                  "line": code_line(own.line)}
    return found


def innermost_frame_in_files(frames, solution_dir):
    """Return the innermost of a traceback's frames that lies in the solution's files, or None."""
    prefix = solution_dir + "/"
    return next((frame for frame in reversed(frames) if frame.filename.startswith(prefix)), None)


def shadowing(exc, solution_dir):
    """Return {"shadowed": ...} when an ImportError or AttributeError is about a module of the
    solution's folder that Python passed over (shadowed_module), else {}."""
    shadowed = shadowed_module(exc, solution_dir)
    return {} if shadowed is None else {"shadowed": shadowed}


def shadowed_module(exc, solution_dir):
    """Return the module of the solution's folder (a file name.py, or a folder) that an
    ImportError or AttributeError is about, when the module Python imported under that name is
    another one (a standard module, or one installed with the grader): the folder comes last on
    sys.path. As {"module": name, "folder": whether it is a folder, "standard": whether the
    other is a standard module}; None when the error is about no such module."""
    try:
        if isinstance(exc, ImportError):
            name = exc.name
        elif isinstance(exc, AttributeError) and isinstance(exc.obj, types.ModuleType):
            name = exc.obj.__name__
        else:
            return None
        top = name.partition(".")[0] if isinstance(name, str) else ""
        module = sys.modules.get(top)
        if not top.isidentifier() or module is None:
            return None
        places = [module.__file__] if getattr(module, "__file__", None) \
            else list(getattr(module, "__path__", None) or [])
        if any(str(place).startswith(solution_dir + "/") for place in places):
            return None
        folder = os.path.join(solution_dir, top)
        is_folder = os.path.isdir(folder) and any(entry.endswith(".py")
                                                  for entry in os.listdir(folder))
        if not is_folder and not os.path.isfile(folder + ".py"):
            return None
        return {"module": top, "folder": is_folder,
                "standard": top in sys.stdlib_module_names}
    except Exception:
        return None


def close_figures():
    """Close every pyplot figure, if the solution's code imported pyplot (§4: before and after
    each collection's run, so that its figure numbers start at 1 after a replayed one)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    try:
        pyplot.close("all")
    except BaseException:
        pass


def run_code(code_list, namespace):
    """Execute each code string in the namespace."""
    for code in code_list:
        exec(code, namespace)


@contextlib.contextmanager
def metered_output(meter, capture_limit, descriptors):
    """Count everything printed while the block runs on meter; yield sys.stdout's stand-in,
    which keeps up to capture_limit characters of it."""
    captured = CappedWriter(capture_limit, meter)
    real_streams = sys.stdout, sys.stderr
    # Text written to sys.stderr is counted, not kept: nothing reads the sandbox's stderr. Its
    # descriptor stays the process's, for code that asks for one.
    sys.stdout, sys.stderr = captured, CappedWriter(0, meter, real_streams[1].fileno())
    descriptors.meter = meter
    try:
        yield captured
    finally:
        descriptors.meter = None
        sys.stdout, sys.stderr = real_streams


def run_stage(stage, namespace, capture_limit, stop_limit, send, descriptors, solution_dir):
    """Run one collection's code steps; return (error or None, how the entry point ran (as
    run_entry notes it), captured output).

    A stage that runs past its timeout ends with a "timeout" error, and one that prints more
    than stop_limit characters or bytes with an "output" error (that one, should both come),
    even if its code caught the stop; should the code print on after catching the output stop,
    send gets that error as the whole run's outcome at once.
    """
    import random

    close_figures()
    random.seed(1)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(1)
    answers = stage["input_answers"]
    sys.stdin = io.StringIO("\n".join(answers))
    builtins.input = make_input(bool(answers))
    sys.argv = [stage["entry_point"] or ""]
    entry = {"seconds": 0.0, "exited_at": None}
    step = "entry"
    meter = OutputMeter(stop_limit, lambda: send(stopped_outcome(step)))
    with metered_output(meter, capture_limit, descriptors) as captured:
        try:
            try:
                arm_timer(stage["timeout"])
                with meter.stoppable():
                    error = None
                    if stage["entry_point"] is not None:
                        error = run_entry(stage["entry_point"], namespace, entry, solution_dir)
                        if error is None and stage["graphics"] is not None:
                            stage["graphics_values"] = evaluate_graphics(stage["graphics"],
                                                                         stage["store_figures"])
                    if error is None:
                        step = "setup"
                        run_code(stage["set_up_code"], namespace)
                        step = "teardown"
                        run_code(stage["tear_down_code"], namespace)
            finally:
                disarm_timer()
        except BaseException as exc:
            error = {"step": step, "kind": "exception", "message": error_text(exc)}
    if TIMER["fired"]:
        error = timed_out(step)
    if meter.stopped:
        error = {"step": step, "kind": "output"}
    close_figures()
    return error, entry, captured


def stopped_outcome(step):
    """Return the outcome of a run whose code printed on after its output was stopped."""
    return {"error": {"step": step, "kind": "output"}, "entry_seconds": 0.0, "stdout": None,
            "stdout_truncated": False, "figures": [], "values": {}, "texts": {}, "evals": {}}


def run_entry(path, namespace, entry, solution_dir):
    """Execute the entry point file in the namespace; return an error or None.

    entry gets how long it ran (seconds) and, when it ended with sys.exit(0) or sys.exit(None),
    a normal completion, the innermost line of the solution's files that exit passed through
    (exited_at): the names it did not define by then are not found.
    """
    started = time.perf_counter()
    try:
        with open(path, "rb") as handle:
            source = handle.read()
        exec(compile(source, path, "exec"), namespace)
    except RunTimedOut:
        raise
    except SystemExit as exc:
        if exc.code not in (None, 0):
            # Where it exited, as a crash's frame, without an exception raised: it is no error.
            message = exit_message(exc.code)
            frame = {key: value for key, value in last_frame(exc, solution_dir).items()
                     if key != "raised"}
            return {"step": "entry", "kind": "exception", "message": message,
                    "traceback": {**frame, "errormsg": message}}
        entry["exited_at"] = place_in_files(exc, solution_dir)
    except BaseException as exc:
        return {"step": "entry", "kind": "exception", "message": error_text(exc),
                "traceback": last_frame(exc, solution_dir)}
    finally:
        entry["seconds"] = time.perf_counter() - started
    return None


def evaluate_graphics(names, store_figures):
    """Evaluate each name as matplotlib.pyplot.<name>; optionally keep every figure as PNG."""
    import matplotlib.pyplot as plt

    figures = []
    if store_figures:
        import base64

        for number in plt.get_fignums():
            buffer = io.BytesIO()
            plt.figure(number).savefig(buffer, format="png")
            figures.append({"number": number,
                            "png": base64.b64encode(buffer.getvalue()).decode("ascii")})
    values = {}
    for name in names:
        try:
            values[name] = eval("plt." + name, {"plt": plt})
        except Exception:
            continue
    return {"values": values, "figures": figures}


def lookup(name, namespace, solution_dir):
    """Return (found, value): the namespace entry, else the expression evaluated in it. Not
    found, the value is what the evaluation raised (raised_entry), or None for a NameError of
    the name itself: a variable the solution does not define. The output stop and the timer's
    are no errors of the solution's to report: they go on to end this lookup (evaluate_metered,
    within_time)."""
    if name in namespace:
        return True, namespace[name]
    try:
        return True, eval(name, namespace)
    except (PrintedWithoutEnd, RunTimedOut):
        raise
    except BaseException as exc:
        if isinstance(exc, NameError) and exc.name == name:
            return False, None
        return False, raised_entry(exc, solution_dir)


@using_spares
def raised_entry(exc, solution_dir):
    """Return an exception as Python's traceback ends with it (`TypeError: message`), the
    innermost line of the solution's files it passed through, if any, and the module of theirs
    it is about that Python passed over, if it is (shadowing)."""
    return {"error": error_line(exc), **(place_in_files(exc, solution_dir) or {}),
            **shadowing(exc, solution_dir)}


@using_spares
def place_in_files(exc, solution_dir):
    """Return the innermost line of the solution's files an exception passed through (a syntax
    error of one of them: the line it lies on): its file relative to the solution's folder, line
    number and line; None when it passed through none."""
    import traceback

    prefix = solution_dir + "/"
    if isinstance(exc, SyntaxError) and isinstance(exc.filename, str) \
            and exc.filename.startswith(prefix) and isinstance(exc.lineno, int) and exc.lineno > 0:
        return {"file": shorten(exc.filename[len(prefix):]), "lineno": exc.lineno,
                "line": code_line(exc.text)}
    frame = innermost_frame_in_files(traceback.extract_tb(exc.__traceback__), solution_dir)
    if frame is None:
        return None
    return {"file": shorten(frame.filename[len(prefix):]), "lineno": frame.lineno,
            "line": code_line(frame.line)}


def not_found(raised):
    """Return the entry of a name or expression not found, with what its evaluation raised."""
    return {"found": False} if raised is None else {"found": False, "raised": raised}


def graphics_lookup(name, values):
    """Return (found, value) from the evaluated pyplot expressions."""
    return (True, values[name]) if name in values else (False, None)


def transfer(value, values):
    """Return the tagged JSON form of a value, or a note that it cannot leave the sandbox: its
    type's module.qualname and why."""
    try:
        return {"found": True, "value": values.encode(value)}
    except RunTimedOut:
        raise
    except BaseException as exc:
        return {"found": True, "untransferable": shorten(values.qualified_name(type(value))),
                "reason": shorten(str(exc))}


def describe(value):
    """Return str(value), or a note if str() itself fails."""
    try:
        return {"found": True, "text": str(value)}
    except RunTimedOut:
        raise
    except BaseException as exc:
        return {"found": True, "error": shorten(f"{type(exc).__name__}: {exc}")}


def evaluate_metered(wanted, namespace, graphics_values, values, solution_dir, stop_limit,
                     send, descriptors, seconds_left):
    """Evaluate as evaluate does, what each lookup prints counted as a stage's output on a meter
    of its own: one that prints past stop_limit is stopped there, whatever its code made of the
    stop, and noted as such (FLOODED), and the next lookups go on."""
    def metered(look_up):
        meter = OutputMeter(stop_limit, lambda: send(stopped_outcome(LOOKUP_STEP)))
        with metered_output(meter, 0, descriptors):
            try:
                with meter.stoppable():
                    entry = look_up()
            except PrintedWithoutEnd:
                entry = None
        return FLOODED if meter.stopped else entry

    return evaluate(wanted, namespace, graphics_values, values, solution_dir, seconds_left,
                    metered)


def evaluate(wanted, namespace, graphics_values, values, solution_dir, seconds_left, metered):
    """Evaluate the requested names (as values and as text) and expressions after the run, each
    within the seconds seconds_left() then gives (within_time), its output counted by metered."""
    if graphics_values is None:
        find = lambda name: lookup(name, namespace, solution_dir)  # noqa: E731
    else:
        find = lambda name: graphics_lookup(name, graphics_values)  # noqa: E731

    def as_value(name, find=find):
        found, value = find(name)
        return transfer(value, values) if found else not_found(value)

    def as_text(name):
        found, value = find(name)
        return describe(value) if found else not_found(value)

    def as_evaluated(expression):
        return as_value(expression, lambda code: lookup(code, namespace, solution_dir))

    results = {"values": {}, "texts": {}, "evals": {}}
    for kind, entry_of in (("values", as_value), ("texts", as_text), ("evals", as_evaluated)):
        for name in wanted[kind]:
            results[kind][name] = within_time(lambda: metered(lambda: entry_of(name)),
                                              seconds_left())
    return results


def within_time(look_up, seconds):
    """Return the entry look_up returns, its timer armed with seconds (0: no limit); stopped
    there, whatever its code made of the stop, the entry of a lookup not found that says where
    in the solution's files it was (stopped: a crash's last frame, or {})."""
    try:
        try:
            arm_timer(seconds)
            entry = look_up()
        finally:
            disarm_timer()
    except RunTimedOut:
        entry = None
    if TIMER["fired"]:
        return {"found": False, "stopped": stopped_place() or {}}
    return entry


def load_encoder(python_path):
    """Import the value encoder's module before any solution code (forget_runner_modules hides
    its package again)."""
    sys.path[:0] = python_path
    from pipeline.sandbox import values

    del sys.path[:len(python_path)]
    return values


def forget_runner_modules():
    """Take the runners' own modules (RUNNER_MODULES) and gradehook's package, which they
    import from, out of sys.modules."""
    for name in [*RUNNER_MODULES,
                 *(m for m in sys.modules if m == "pipeline" or m.startswith("pipeline."))]:
        sys.modules.pop(name, None)


def prepare_process(request):
    """Set up sys.path, cwd and the import hooks before any solution code runs."""
    runner_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != runner_dir]
    forget_runner_modules()
    if request["test_dir"]:
        sys.path.append(request["test_dir"])
    sys.path.append(request["solution_dir"])
    os.chdir(request["solution_dir"])
    os.environ["MPLBACKEND"] = "Agg"
    sys.meta_path.insert(0, ImportHooks(request["mpl_config"]))
    TIMER["folder"] = request["solution_dir"]
    signal.signal(signal.SIGALRM, on_alarm)


def preload(modules):
    """Import the heavy libraries the solution uses before its timer starts."""
    for name in modules:
        try:
            __import__(name)
        except BaseException:
            continue


def write_all(fd, data, write=os.write):
    """Write all of data to a descriptor (with the os.write bound before any solution ran)."""
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]


def write_line(fd, value, dumps=json.dumps):
    """Write a value as one JSON line to the result channel (with the json.dumps bound before
    any solution ran)."""
    write_all(fd, ("\n" + dumps(value) + "\n").encode("utf-8", "surrogatepass"))


def result_sender(fd, leave=os._exit):
    """Return a function that writes an outcome to the result channel and ends the process
    (with the os._exit bound before any solution ran).

    One outcome is written: the descriptor meter's thread may end the run while the main thread
    sends its outcome.
    """
    sending = threading.Lock()

    def send(outcome):
        with sending:
            write_line(fd, outcome)
            leave(0)

    return send


def main(request_path, result_path):
    """Run the requested stages and write the outcome of the last one to the result channel."""
    # Beside this script, found while its folder is first on sys.path: only the sandbox runs it.
    from descriptor_meter import DescriptorMeter

    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    channel = os.open(result_path, os.O_WRONLY)
    send = result_sender(channel)
    values = load_encoder(request["python_path"])
    descriptors = DescriptorMeter(OUTPUT_STOP_SIGNAL)
    reserve()
    prepare_process(request)
    note_exits(request["solution_dir"], lambda event: write_line(channel, event))
    preload(request["preload"])
    root = request["namespace_file"]
    namespace = {} if root is None else {"__file__": root}
    stages = request["stages"]
    stop_limit = request["stop_limit"]
    solution_dir = request["solution_dir"]
    for stage in stages[:-1]:
        run_stage(stage, namespace, 0, stop_limit, send, descriptors, solution_dir)
    current = stages[-1]
    error, entry, captured = run_stage(current, namespace, request["capture_limit"], stop_limit,
                                       send, descriptors, solution_dir)
    graphics = current.get("graphics_values")
    outcome = {"error": error, "entry_seconds": entry["seconds"], "exited_at": entry["exited_at"],
               "stdout": captured.getvalue() if request["capture_stdout"] else None,
               "stdout_truncated": captured.truncated,
               "figures": graphics["figures"] if graphics else []}
    graphics_values = None
    if current["graphics"] is not None:
        graphics_values = graphics["values"] if graphics else {}
    lookup_seconds = time_left(current["timeout"])
    write_line(channel, LOOKUPS_BEGAN)
    outcome.update(evaluate_metered(request["evaluate"], namespace, graphics_values, values,
                                    solution_dir, stop_limit, send, descriptors, lookup_seconds))
    send(outcome)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
