"""Run one (collection, side) solution run in the sandbox and turn its result into a RunOutcome."""

from __future__ import annotations

import base64
import binascii
import errno
import itertools
import json
import logging
import os
import re
import signal
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from pipeline.grading.checks import SHADOWED
from pipeline.grading.fontcache import font_cache_dir
from pipeline.grading.plan import REFERENCE, RunOutcome, RunRequest, Stage
from pipeline.grading.report import COMPLETED, CRASHED, FAILED_STATUS, TIMEDOUT
from pipeline.grading.runner import LEAST_LOOKUP_SECONDS, LOOKUP_STEP, LOOKUPS_BEGAN, \
    OS_EXIT_EVENT, OS_EXITED_WITH, shorten
from pipeline.grading.staging import StagedAssignment, code_names, copy_tree_lacking, \
    select_test_files, test_files_named
from pipeline.grading.withheld_files import withheld_file_named
from pipeline.logs import quoted_lines
from pipeline.sandbox import PYTHON_PLACEHOLDER, SANDBOX_PYTHONPATH, SANDBOX_WORKDIR, Mount, \
    SandboxLimits, SandboxResult, run_sandboxed
from pipeline.sandbox.model import KB, KILLED_PROCESSES, MB

log = logging.getLogger(__name__)

RUNNER_PATH = f"{SANDBOX_PYTHONPATH}/pipeline/grading/runner.py"
CONTROL_DIR = "/opt/gradehook/run"
REQUEST_PATH = f"{CONTROL_DIR}/request.json"
RESULT_PATH = "/opt/gradehook/result"
TESTS_DIR = "/opt/gradehook/tests"
MPL_DIR = "/opt/gradehook/mpl"
# Time a run may take beyond its timeouts: interpreter start, preloads, result writing. Its tests'
# lookups have what remains of its collection's timeout each (runner.within_time): the run has room
# for one more timeout, so that a lookup stopped there is its test's failure and the next ones
# still run.
STARTUP_GRACE_SECONDS = 2.0
PRELOAD_GRACE_SECONDS = {"numpy": 1.0, "pandas": 3.0, "matplotlib.pyplot": 4.0}

TIMEOUT_MESSAGE = "Maximum execution time of {seconds} seconds exceeded"
EXECUTION_FAILED = "Execution of {path} failed, ERROR: {reason}"
SETUP_FAILED = "setupCode {code} could not be executed"
TEARDOWN_FAILED = "teardownCode {code} could not be executed"
NO_ENTRY_POINT = "setUpCode"
KILLED_REASONS = {
    "memory": "memory limit of {memory_mb} MB exceeded",
    "output": "output limit of {output_bytes} bytes exceeded",
    "processes": "process limit of {processes} exceeded",
    "disk": "work directory limit of {workdir_mb} MB exceeded",
}
KILLED_BY_SIGNAL = "process was killed by signal {name}"
# What a program that could not start a process raises (os.fork, subprocess): when the sandbox
# reports that its process limit refused one, the run failed on that limit, whether the sandbox
# stopped it first or the program ended on the error first.
REFUSED_PROCESS = f"[Errno {errno.EAGAIN}] {os.strerror(errno.EAGAIN)}"
# A stage may print this many times max_output_bytes (16 MB by default) to stdout and stderr
# together, by any way (the runners' OutputMeter), before it is stopped: far more than the finite
# output of any assignment (which is compared only up to max_output_bytes, but kept running as
# the original engine does), while an endless print loop passes it within a second or two
# instead of holding a grading slot until its timeout.
OUTPUT_STOP_FACTOR = 16
PRINTED_WITHOUT_END = "the program printed more than {size} and was stopped, likely in an " \
                      "endless loop"
# A test's name or expression that printed past the stop: it fails alone, the run goes on.
LOOKUP_PRINTED_WITHOUT_END = "the program printed more than {size} while evaluating " \
                             "`{expression}` and was stopped, likely in an endless loop"
EXITED_UNEXPECTEDLY = "process ended unexpectedly with exit code {code}"
RESULT_TOO_LARGE = "the values to compare exceed the result size limit"
MALFORMED_RESULT = "the run handed back a malformed result: {problem}"
ENTRY_SECONDS_UNREAL = "entry_seconds must be a number of seconds no longer than the run took"
# The longest result line that is parsed. A legitimate result is one JSON document: the captured
# stdout (at most max_output_bytes characters, 1 MiB by default) plus the encoded values the tests
# look up (pipeline.sandbox.values caps each at a million parts and 256 MB, far more than a test
# compares). Parsing can take twenty times a line's size in memory (a line of `{},{},...`), so
# the cap keeps one parse within the ~300 MB a worker process may use (docs/scaling.md); the
# sandbox's result channel (DEFAULT_MAX_RESULT_BYTES) holds no more by default.
MAX_RESULT_LINE_BYTES = 8 * 1024 * 1024
# Figures are saved on the host, one file each, named by its number: a run hands back at most
# MAX_FIGURES of them (real PNGs fill the result size limit long before) with numbers of at most
# FIGURE_NUMBER_DIGITS digits, so that a result cannot flood the host with files, nor name one
# longer than a file name may be (pyplot takes any int as a figure's number).
MAX_FIGURES = 1000
FIGURE_NUMBER_DIGITS = 9
ERROR_STEPS = ("entry", "setup", "teardown")
# The steps that run the course's code (setUpCode, tearDownCode), not the student's program.
COURSE_STEPS = ("setup", "teardown")
ERROR_KINDS = ("timeout", "output", "exception")
# The last frame's function, file and line, the exception's text and the exception as Python's
# traceback ends with it (`NameError: name 'x' is not defined`).
TRACEBACK_TEXTS = ("name", "filename", "line", "errormsg", "raised")
# Where the timer stopped a test's lookup: the innermost frame of the solution's files, its
# function, file and line.
STOPPED_TEXTS = ("name", "filename", "line")
# With a last frame in a library's file, the innermost frame of the solution's files: its file,
# line number and line.
SOLUTION_FRAME = "solutionFrame"
SOLUTION_FRAME_TEXTS = ("filename", "line")
# The fields of a module of the solution's folder that Python passed over (checks.SHADOWED).
SHADOWED_FIELDS = {"module": str, "folder": bool, "standard": bool}
# How much of a run's stderr is logged when it ended without its result: a traceback's end.
RUNNER_ERROR_BYTES = 4000
# Where in the solution's files a test's expression raised, or its entry point ended with
# sys.exit(0) (exited_at): a file relative to the solution's folder, its line number and line.
RAISED_AT = ("file", "lineno", "line")


@dataclass(frozen=True)
class RunEnvironment:
    """Everything the runs of one grading share: directories, limits, interpreter, host user."""

    work: Path
    staged: StagedAssignment
    shown_dirs: dict[str, Path]
    limits: SandboxLimits
    python: str | None
    user: str
    capture_limit: int
    # Set when the grading is abandoned (the task's time limit struck): its sandboxes stop.
    stop: threading.Event = field(default_factory=threading.Event)


def sandbox_wall_seconds(timeouts: list[float], preload=(), lookups: int = 0) -> float:
    """Return how long a sandbox running stages of these timeouts may take before it is killed
    (0: no limit): each stage's timeout, the last stage's again for its tests' calls, the least
    time each of its lookups has (runner.LEAST_LOOKUP_SECONDS), and the time the interpreter and
    the preloaded modules take to start."""
    if any(t == 0 for t in timeouts):
        return 0.0
    grace = STARTUP_GRACE_SECONDS + sum(PRELOAD_GRACE_SECONDS.get(m, 0.0) for m in preload)
    return sum(timeouts) + timeouts[-1] + LEAST_LOOKUP_SECONDS * lookups + grace


class SandboxExecutor:
    """Execute run requests in the sandbox, one process per (collection, side)."""

    def __init__(self, environment: RunEnvironment) -> None:
        self.env = environment
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def execute(self, request: RunRequest) -> RunOutcome:
        """Run a request in a fresh sandbox and return its outcome."""
        tests_dir, withheld = self._tests_for(request)
        base = self.env.staged.reference_base if request.side == REFERENCE \
            else self.env.staged.student_base
        outcome = self._execute_in(request, base, tests_dir, withheld)
        if outcome.withheld_by_stages is not None or outcome.withheld_by_lookups:
            self._keep_withheld_the_reference_lacks(request, outcome, tests_dir, withheld)
        return outcome

    def _keep_withheld_the_reference_lacks(self, request: RunRequest, outcome: RunOutcome,
                                           tests_dir: Path | None,
                                           withheld: frozenset[str]) -> None:
        """Keep the testFiles withheld from a student's run that it failed to find only where
        the same request fails so with the reference solution (its folder lacking them too): a
        student's program may name one in an error of its own, which is the student's failure."""
        with self._lock:
            number = next(self._numbers)
        solution = self.env.work / f"reference-lacking-{number}"
        copy_tree_lacking(self.env.staged.reference_base, solution, withheld)
        reference = self._execute_in(request, solution, tests_dir, withheld)
        if reference.withheld_by_stages != outcome.withheld_by_stages:
            outcome.withheld_by_stages = None
        outcome.withheld_by_lookups = {
            name: test_file for name, test_file in outcome.withheld_by_lookups.items()
            if reference.withheld_by_lookups.get(name) == test_file}

    def _execute_in(self, request: RunRequest, base: Path, tests_dir: Path | None,
                    withheld: frozenset[str]) -> RunOutcome:
        """Run a request in a fresh sandbox whose solution is base, and return its outcome."""
        env = self.env
        with self._lock:
            number = next(self._numbers)
        control = env.work / "control" / f"{request.side}-{request.collection_index}-{number}"
        control.mkdir(parents=True)
        mounts = [Mount(control, CONTROL_DIR)]
        if tests_dir is not None:
            mounts.append(Mount(tests_dir, TESTS_DIR))
        font_cache = None
        if "matplotlib.pyplot" in request.preload:
            font_cache = font_cache_dir(env.python)
        if font_cache is not None:
            mounts.append(Mount(font_cache, MPL_DIR))
        document = self._document(request, tests_dir is not None, font_cache is not None)
        (control / "request.json").write_text(json.dumps(document), encoding="utf-8")
        limits = env.limits.with_overrides(timeout_seconds=self._wall_limit(request))
        result = run_sandboxed([PYTHON_PLACEHOLDER, "-s", RUNNER_PATH, REQUEST_PATH, RESULT_PATH],
                               workdir=base, mounts=mounts, limits=limits, python=env.python,
                               user=env.user, result_path=RESULT_PATH, stop=env.stop)
        outcome = interpret(result, request, self.stage_timeout(request.stage),
                            self._shown_entry(request), env.limits, withheld)
        _show_host_paths(outcome, env.shown_dirs[request.side])
        log.debug("run %s/%d: %s in %.3fs", request.side, request.collection_index,
                  outcome.status, result.duration_seconds)
        return outcome

    def stage_timeout(self, stage: Stage) -> float:
        """Return a stage's effective timeout: its own, capped by the assignment's limit."""
        cap = float(self.env.limits.timeout_seconds)
        if stage.timeout > 0 and cap > 0:
            return min(stage.timeout, cap)
        return stage.timeout or cap

    def _wall_limit(self, request: RunRequest) -> float:
        return sandbox_wall_seconds([self.stage_timeout(stage) for stage in request.stages],
                                    request.preload,
                                    len(request.values) + len(request.texts) + len(request.evals))

    def _tests_for(self, request: RunRequest) -> tuple[Path | None, frozenset[str]]:
        """Return the folder of the test files a run holds (None: none), and the testFiles
        withheld from it: the reference's run holds them all, a student's those its code names
        (and they name in turn), as a student's code could read and show any other."""
        staged = self.env.staged
        if not staged.test_files:
            return None, frozenset()
        if request.side == REFERENCE:
            return staged.tests_dir, frozenset()
        code = [*request.values, *request.texts]
        for stage in request.stages:
            code += [*stage.set_up_code, *stage.tear_down_code]
        named = test_files_named(staged, code_names("\n".join(code)))
        return select_test_files(staged, self.env.work, named), \
            frozenset(staged.test_files) - named

    def _document(self, request: RunRequest, with_tests: bool, with_mpl: bool) -> dict[str, Any]:
        def sandbox_path(entry: str | None) -> str | None:
            return None if entry is None else f"{SANDBOX_WORKDIR}/{entry}"

        stages = []
        for stage in request.stages:
            data = asdict(stage)
            data["entry_point"] = sandbox_path(stage.entry_point)
            data["timeout"] = self.stage_timeout(stage)
            stages.append(data)
        for replayed in stages[:-1]:
            replayed["graphics"], replayed["store_figures"] = None, False
        return {"solution_dir": SANDBOX_WORKDIR, "test_dir": TESTS_DIR if with_tests else None,
                "python_path": [SANDBOX_PYTHONPATH], "mpl_config": MPL_DIR if with_mpl else None,
                "namespace_file": sandbox_path(request.namespace_file),
                "capture_limit": self.env.capture_limit,
                "stop_limit": output_stop_limit(self.env.limits),
                "capture_stdout": request.capture_stdout, "preload": list(request.preload),
                "stages": stages,
                "evaluate": {"values": list(request.values), "texts": list(request.texts),
                             "evals": list(request.evals)}}

    def _shown_entry(self, request: RunRequest) -> str:
        entry = request.stage.entry_point
        if entry is None:
            return NO_ENTRY_POINT
        return str(self.env.shown_dirs[request.side] / entry)


def _show_host_paths(outcome: RunOutcome, shown_dir: Path) -> None:
    """Name the solution's files by their host paths, as the message names its entry point, in
    the message, the traceback and what the lookups raised."""
    shown = {SANDBOX_WORKDIR: f"{shown_dir}/"}
    outcome.message = shown_paths(outcome.message, shown)
    traceback = outcome.traceback
    for frame in (traceback, traceback.get(SOLUTION_FRAME) or {}):
        for key in ("filename", "errormsg", "raised"):
            if isinstance(frame.get(key), str):
                frame[key] = shown_paths(frame[key], shown)
    for entries in (outcome.values, outcome.texts, outcome.evals):
        for entry in entries.values():
            if "raised" in entry:
                entry["raised"]["error"] = shown_paths(entry["raised"]["error"], shown)


def shown_paths(text: str, shown: Mapping[str, str]) -> str:
    """Return a message of the sandbox with each path inside one of its folders (a key of shown)
    named from the start shown for that folder instead ("" names it inside the folder): Python
    names the file a name was not found in by its path in the sandbox, `cannot import name
    'shout' from 'stats' (/sandbox/work/stats.py)`."""
    folders = "|".join(re.escape(folder) for folder in shown)
    return re.sub(rf"(?<![\w./-])({folders})/", lambda match: shown[match.group(1)], text)


def timeout_message(seconds: float) -> str:
    """Return the TIMEDOUT message, the limit printed as a Python float."""
    return TIMEOUT_MESSAGE.format(seconds=float(seconds))


def output_stop_limit(limits: SandboxLimits) -> int:
    """Return how many characters a stage may print before it is stopped."""
    return OUTPUT_STOP_FACTOR * limits.max_output_bytes


def printed_without_end(limits: SandboxLimits, expression: str | None = None) -> str:
    """Return why a run, or a test's name or expression (expression), that printed past its stop
    limit was stopped."""
    size = shown_size(output_stop_limit(limits))
    if expression is None:
        return PRINTED_WITHOUT_END.format(size=size)
    return LOOKUP_PRINTED_WITHOUT_END.format(size=size, expression=expression)


def shown_size(size: int) -> str:
    """Return a number of bytes as people read it: 16 MB, 16 KB (not 0.015625 MB), 900 bytes."""
    for unit, unit_bytes in (("MB", MB), ("KB", KB)):
        if size >= unit_bytes:
            return f"{size / unit_bytes:g} {unit}"
    return f"{size} bytes"


class ResultTooLarge(Exception):
    """A line of the result channel is longer than MAX_RESULT_LINE_BYTES."""


class MalformedResult(Exception):
    """A result document's fields do not have the types the runner writes."""


@dataclass(frozen=True)
class RunError:
    """The error a result document reports: the step, timeout or exception, and its message.

    The traceback is a crash's last frame, with the exception as Python's traceback ends with
    it (`raised`), or the line of the solution's files (its file named relative to the
    solution's folder) that its timer stopped, which raised nothing of its own.
    """

    step: str
    kind: str
    message: str = ""
    traceback: dict[str, Any] = field(default_factory=dict)


def interpret(result: SandboxResult, request: RunRequest, timeout: float, shown_entry: str,
              limits: SandboxLimits, withheld: frozenset[str] = frozenset()) -> RunOutcome:
    """Turn the sandbox's result into the run's status, message and values, noting the
    testFiles withheld from the run (withheld) that the course's code failed to find.

    A result document that cannot be read (a line over MAX_RESULT_LINE_BYTES, a field of the
    wrong type) is a crash of the program: only the program can have written it.
    """
    try:
        data = None if result.result_truncated else _last_document(result.result_data)
    except ResultTooLarge:
        return replace(_crashed(shown_entry, RESULT_TOO_LARGE), ended_by_lookups=True)
    if data is None:
        lines = _channel_lines(result.result_data)
        exited = os_exit_of(_parsed(lines[-1]) if lines else None, result)
        if exited is not None:
            return replace(_crashed_by_os_exit(shown_entry, *exited),
                           ended_by_lookups=_lookups_began(lines[:-1]))
        return replace(_died(result, timeout, shown_entry, limits),
                       ended_by_lookups=_lookups_began(lines))
    try:
        outcome = _read_outcome(data, result.duration_seconds)
        error = _read_error(data["error"])
    except MalformedResult as exc:
        return _crashed(shown_entry, MALFORMED_RESULT.format(problem=exc))
    _word_stopped_lookups(outcome, timeout, limits)
    if error is not None:
        _apply_error(outcome, _limit_behind(error, result, limits), request.stage, timeout,
                     shown_entry, limits)
        outcome.ended_by_lookups = error.kind == "output" and error.step == LOOKUP_STEP
    if withheld:
        _note_withheld(outcome, error, withheld)
    return outcome


def _note_withheld(outcome: RunOutcome, error: RunError | None, withheld: frozenset[str]) -> None:
    """Note the testFiles withheld from a run that its setUpCode or tearDownCode, or the
    evaluation of a test's name, failed to find (the entry point is the student's program)."""
    if error is not None and error.step in COURSE_STEPS and error.kind == "exception":
        outcome.withheld_by_stages = withheld_file_named(error.message, withheld, TESTS_DIR)
    for entries in (outcome.values, outcome.texts):
        for name, entry in entries.items():
            if "raised" not in entry:
                continue
            test_file = withheld_file_named(entry["raised"]["error"], withheld, TESTS_DIR)
            if test_file is not None:
                outcome.withheld_by_lookups[name] = test_file


def _word_stopped_lookups(outcome: RunOutcome, timeout: float, limits: SandboxLimits) -> None:
    """Give each lookup its timer stopped the run's TIMEDOUT message with where it was, as the
    traceback of a stage its timer stopped is (stopped_traceback), and each one the output stop
    stopped the message of a stop that names it."""
    for entries in (outcome.values, outcome.texts, outcome.evals):
        for expression, entry in entries.items():
            if "stopped" in entry:
                entry["stopped"] = stopped_traceback(entry["stopped"], timeout_message(timeout))
            elif "flooded" in entry:
                entry["flooded"] = printed_without_end(limits, expression)


def stopped_traceback(frame: dict[str, Any], message: str) -> dict[str, Any]:
    """Return the traceback of code its timer stopped: where it was (if in the solution's
    files), with the timeout's message."""
    stopped_at = {key: value for key, value in frame.items()
                  if key not in ("raised", SOLUTION_FRAME, SHADOWED)}
    return {**stopped_at, "errormsg": message}


def _limit_behind(error: RunError, result: SandboxResult, limits: SandboxLimits) -> RunError:
    """Return the error, or the process limit's, as the sandbox's stop gives it (no frame), if
    that limit refused the process whose start the entry point failed on."""
    if error.step == "entry" and error.kind == "exception" and error.message == REFUSED_PROCESS \
            and result.killed_reason == KILLED_PROCESSES:
        return replace(error, message=stop_reason(result, limits, limits.effective_timeout),
                       traceback={})
    return error


def _crashed(shown_entry: str, reason: str) -> RunOutcome:
    return RunOutcome(CRASHED, EXECUTION_FAILED.format(path=shown_entry, reason=reason), ran=True)


def _read_outcome(data: dict[str, Any], run_seconds: float) -> RunOutcome:
    """Check the fields of a result document and build the outcome they describe.

    The entry point ran within the run's run_seconds: a longer time (summed with others, it
    could reach infinity, which no JSON and so no ledger holds) is a forgery.
    """
    seconds = data.get("entry_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not 0 <= seconds <= run_seconds:
        raise MalformedResult(ENTRY_SECONDS_UNREAL)
    stdout = data.get("stdout")
    if stdout is not None and not isinstance(stdout, str):
        raise MalformedResult("stdout must be text")
    stdout_truncated = data.get("stdout_truncated", False)
    if not isinstance(stdout_truncated, bool):
        raise MalformedResult("stdout_truncated must be true or false")
    exited_at = data.get("exited_at")
    if exited_at is not None:
        exited_at = checked_place(exited_at, MalformedResult(
            "exited_at must be null or a file, line number and line of the solution"))
    return RunOutcome(
        status=COMPLETED, entry_seconds=float(seconds), exited_at=exited_at, stdout=stdout,
        stdout_truncated=stdout_truncated,
        values=_entries(data, "values", _value_entry), texts=_entries(data, "texts", _text_entry),
        evals=_entries(data, "evals", _value_entry), figures=_figures(data.get("figures")),
        ran=True)


def _entries(data: dict[str, Any], key: str,
             read: Callable[[str, Any], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    entries = data.get(key)
    if not isinstance(entries, dict):
        raise MalformedResult(f"{key} must be an object")
    return {name: read(key, entry) for name, entry in entries.items()}


def _found(key: str, entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("found"), bool):
        raise MalformedResult(f"an entry of {key} must be an object with found true or false")
    return entry["found"]


def _not_found_entry(key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Return the entry of a name not found, with what its evaluation raised and where in the
    solution's files, if the runner says, where its timer stopped it (stopped), or that the
    output stop stopped it (flooded)."""
    if "stopped" in entry:
        return {"found": False, "stopped": _read_frame(entry["stopped"], STOPPED_TEXTS)}
    if "flooded" in entry:
        if entry["flooded"] is not True:
            raise MalformedResult(f"a flooded entry of {key} must have flooded true")
        return {"found": False, "flooded": True}
    raised = entry.get("raised")
    if raised is None:
        return {"found": False}
    malformed = MalformedResult(f"what an entry of {key} raised must be an error's text, with "
                                "a file, line number and line of the solution or none")
    if not isinstance(raised, dict) or not isinstance(raised.get("error"), str):
        raise malformed
    place = {name: value for name, value in raised.items() if name not in ("error", SHADOWED)}
    shadowed = raised.get(SHADOWED)
    return {"found": False, "raised": {
        "error": shorten(raised["error"]), **(checked_place(place, malformed) if place else {}),
        **({} if shadowed is None else {SHADOWED: checked_shadowed(shadowed, malformed)})}}


def checked_place(raw: Any, malformed: MalformedResult) -> dict[str, Any]:
    """Return a line of the solution's files (its file relative to the solution's folder, line
    number and line, as the runner's place_in_files gives it) with its texts cut; raise
    malformed when it is not one."""
    if not isinstance(raw, dict) or set(raw) != set(RAISED_AT):
        raise malformed
    file, lineno, line = (raw[name] for name in RAISED_AT)
    if not isinstance(file, str) or isinstance(lineno, bool) or not isinstance(lineno, int) \
            or lineno < 1 or not isinstance(line, (str, type(None))):
        raise malformed
    return {"file": shorten(file), "lineno": lineno,
            "line": None if line is None else shorten(line)}


def checked_shadowed(raw: Any, malformed: MalformedResult) -> dict[str, Any]:
    """Return a module of the solution's folder Python passed over, as the runner's
    shadowed_module gives it; raise malformed when it is not one."""
    if not isinstance(raw, dict) or set(raw) != set(SHADOWED_FIELDS) \
            or any(type(raw[name]) is not kind for name, kind in SHADOWED_FIELDS.items()) \
            or not raw["module"].isidentifier():
        raise malformed
    return dict(raw)


def _value_entry(key: str, entry: Any) -> dict[str, Any]:
    """Return a looked-up value's entry: not found, its encoded value, or why it stayed inside."""
    if not _found(key, entry):
        return _not_found_entry(key, entry)
    if "untransferable" in entry:
        kind, reason = entry["untransferable"], entry.get("reason")
        if not isinstance(kind, str) or not isinstance(reason, (str, type(None))):
            raise MalformedResult(f"an untransferable entry of {key} must name its type as text")
        return {"found": True, "untransferable": shorten(kind),
                "reason": None if reason is None else shorten(reason)}
    if "value" not in entry:
        raise MalformedResult(f"a found entry of {key} must hold a value")
    return {"found": True, "value": entry["value"]}


def _text_entry(key: str, entry: Any) -> dict[str, Any]:
    """Return a str() text's entry: not found, the text, or the error str() raised."""
    if not _found(key, entry):
        return _not_found_entry(key, entry)
    if isinstance(entry.get("text"), str):
        return {"found": True, "text": entry["text"]}
    if isinstance(entry.get("error"), str):
        return {"found": True, "error": shorten(entry["error"])}
    raise MalformedResult(f"a found entry of {key} must hold a text or an error")


def _figures(raw: Any) -> list[tuple[int, bytes]]:
    if not isinstance(raw, list) or len(raw) > MAX_FIGURES:
        raise MalformedResult(f"figures must be a list of at most {MAX_FIGURES}")
    figures = []
    malformed = MalformedResult(f"a figure must have a number of at most {FIGURE_NUMBER_DIGITS}"
                                " digits and a base64 PNG")
    for item in raw:
        number = item.get("number") if isinstance(item, dict) else None
        png = item.get("png") if isinstance(item, dict) else None
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(png, str) \
                or abs(number) >= 10 ** FIGURE_NUMBER_DIGITS:
            raise malformed
        try:
            figures.append((number, base64.b64decode(png, validate=True)))
        except binascii.Error:
            raise malformed from None
    return figures


def _read_error(raw: Any) -> RunError | None:
    """Check the error field of a result document; messages the program controls are cut."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("step") not in ERROR_STEPS \
            or raw.get("kind") not in ERROR_KINDS:
        raise MalformedResult("error must be null or name a step and a kind the runner uses")
    if raw["kind"] == "output":
        return RunError(raw["step"], raw["kind"])
    if raw["kind"] == "timeout":
        return RunError(raw["step"], raw["kind"], traceback=_read_traceback(raw))
    message = raw.get("message")
    if not isinstance(message, str):
        raise MalformedResult("the message of an error must be text")
    return RunError(raw["step"], raw["kind"], shorten(message), _read_traceback(raw))


def _read_traceback(error: dict[str, Any]) -> dict[str, Any]:
    raw = error.get("traceback")
    return {} if raw is None else _read_frame(raw, TRACEBACK_TEXTS, inner=SOLUTION_FRAME)


def _read_frame(raw: Any, texts: tuple[str, ...], inner: str | None = None) -> dict[str, Any]:
    """Check a frame's fields (texts, a whole lineno, and with the frame named `inner` in it,
    the module the error is about that Python passed over)."""
    extra = [inner, SHADOWED] if inner else []
    if not isinstance(raw, dict) or not set(raw) <= {*texts, "lineno", *extra}:
        raise MalformedResult("a traceback must be an object of the last frame's fields")
    lineno = raw.get("lineno")
    if isinstance(lineno, bool) or not isinstance(lineno, (int, type(None))):
        raise MalformedResult("the lineno of a traceback must be a whole number")
    frame: dict[str, Any] = {}
    for name, value in raw.items():
        if name == inner:
            value = _read_frame(value, SOLUTION_FRAME_TEXTS)
        elif name == SHADOWED:
            value = checked_shadowed(value, MalformedResult(
                "what a traceback's shadowed module is must be a module's name and two flags"))
        elif name in texts and value is not None:
            if not isinstance(value, str):
                raise MalformedResult(f"the {name} of a traceback must be text")
            value = shorten(value)
        frame[name] = value
    return frame


def _apply_error(outcome: RunOutcome, error: RunError, stage: Stage, timeout: float,
                 shown_entry: str, limits: SandboxLimits) -> None:
    if error.kind == "timeout":
        outcome.status, outcome.message = TIMEDOUT, timeout_message(timeout)
        if error.traceback:
            outcome.traceback = stopped_traceback(error.traceback, outcome.message)
    elif error.kind == "output":
        outcome.status = CRASHED
        outcome.message = EXECUTION_FAILED.format(path=shown_entry,
                                                  reason=printed_without_end(limits))
    elif error.step == "entry":
        outcome.status = CRASHED
        outcome.message = EXECUTION_FAILED.format(path=shown_entry, reason=error.message)
        outcome.traceback = dict(error.traceback)
    elif error.step == "setup":
        outcome.status = FAILED_STATUS
        outcome.message = SETUP_FAILED.format(code=list(stage.set_up_code))
    else:
        outcome.status = FAILED_STATUS
        outcome.message = TEARDOWN_FAILED.format(code=list(stage.tear_down_code))


def _died(result: SandboxResult, timeout: float, shown_entry: str,
          limits: SandboxLimits) -> RunOutcome:
    reason = stop_reason(result, limits, timeout or limits.effective_timeout)
    if timed_out(result):
        return RunOutcome(TIMEDOUT, reason, ran=True)
    log_runner_errors(result)
    return _crashed(shown_entry, reason or EXITED_UNEXPECTEDLY.format(code=result.exit_code))


def _channel_lines(raw: bytes | None) -> list[bytes]:
    """Return the lines of a result channel that hold something."""
    return [line for line in (raw or b"").splitlines() if line.strip()]


def _lookups_began(lines: list[bytes]) -> bool:
    """Tell whether a run that ended without its outcome had begun the lookups, its stages
    ended: the last line of its result channel says so."""
    try:
        return bool(lines) and strict_json(lines[-1]) == LOOKUPS_BEGAN
    except (ValueError, RecursionError):
        return False


def _parsed(line: bytes) -> Any:
    """Return a line of the result channel parsed, None when it is no JSON (or too long)."""
    if len(line) > MAX_RESULT_LINE_BYTES:
        return None
    try:
        return strict_json(line)
    except (ValueError, RecursionError):
        return None


def os_exit_of(event: Any, result: SandboxResult) -> tuple[int, dict[str, Any] | None] | None:
    """Return the code and place (None when it is not one) of the runner's note that the
    solution called os._exit() (runner.note_exits), if the event is one and the process then
    ended by itself with that code; else None."""
    if not isinstance(event, dict) or event.get("event") != OS_EXIT_EVENT \
            or result.timed_out or result.killed_reason or result.signal:
        return None
    code = event.get("code")
    if type(code) is not int or code % 256 != result.exit_code:
        return None
    try:
        return code, checked_place(event.get("place"), MalformedResult(OS_EXIT_EVENT))
    except MalformedResult:
        return code, None


def os_exited(code: int) -> str:
    """Return how a program that ended with os._exit(code) is told."""
    return shorten(OS_EXITED_WITH.format(code=code))


def _crashed_by_os_exit(shown_entry: str, code: int, place: dict[str, Any] | None) -> RunOutcome:
    """Return the crash of a program that ended with os._exit(), at the line that called it
    (without 'raised', as sys.exit's: it raised no error)."""
    message = os_exited(code)
    outcome = _crashed(shown_entry, message)
    if place is not None:
        outcome.traceback = {"filename": f"{SANDBOX_WORKDIR}/{place['file']}",
                             "lineno": place["lineno"], "line": place["line"],
                             "errormsg": message}
    return outcome


def log_runner_errors(result: SandboxResult) -> None:
    """Log the end of what a run that ended without its result wrote to the sandbox's stderr:
    the runners' own uncaught errors, there for the staff (the solution's output is metered on
    the descriptors 1 and 2 and kept nowhere). The solution's code can write there too (the
    runner's copy of the descriptor is open to it): the text is quoted, so that it adds no record
    of its own making nor a terminal's escapes to the log."""
    tail = result.stderr[-RUNNER_ERROR_BYTES:].decode("utf-8", "replace").strip()
    if tail:
        log.warning("a sandboxed run ended without its result (exit code %s); its stderr "
                    "ended:\n%s", result.exit_code, quoted_lines(tail))


def timed_out(result: SandboxResult) -> bool:
    """Tell whether the sandbox stopped a process at its time limit."""
    return result.timed_out or result.killed_reason == "timeout"


def stop_reason(result: SandboxResult, limits: SandboxLimits, seconds: float,
                time_limit_wording: str = TIMEOUT_MESSAGE) -> str | None:
    """Return which limit stopped a sandboxed process, in the words its report uses: its time
    limit of seconds (in time_limit_wording), the result's size or another limit of its sandbox,
    or the signal that killed it; None if it exited."""
    if timed_out(result):
        return time_limit_wording.format(seconds=float(seconds))
    if result.result_truncated:
        return RESULT_TOO_LARGE
    if result.killed_reason in KILLED_REASONS:
        return KILLED_REASONS[result.killed_reason].format(
            memory_mb=limits.memory_mb, output_bytes=limits.max_output_bytes,
            processes=limits.max_processes, workdir_mb=limits.workdir_size_mb)
    if result.signal:
        return KILLED_BY_SIGNAL.format(name=_signal_name(result.signal))
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def strict_json(line: bytes) -> Any:
    """Parse one line as standard JSON: NaN and Infinity, which JSON does not have, are refused."""
    return json.loads(line, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _last_document(raw: bytes | None) -> dict[str, Any] | None:
    """Return the last line of the result channel that is a runner result document.

    The student's program can write to the channel too: a line nested too deeply to read is
    skipped like any other that is not a document. A line longer than MAX_RESULT_LINE_BYTES
    raises ResultTooLarge without being parsed.
    """
    if not raw:
        return None
    for line in reversed(raw.splitlines()):
        if len(line) > MAX_RESULT_LINE_BYTES:
            raise ResultTooLarge()
        try:
            data = strict_json(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict) and "error" in data and "values" in data:
            return data
    return None
