"""Run one (collection, side) solution run in the sandbox and turn its result into a RunOutcome."""

from __future__ import annotations

import itertools
import json
import logging
import re
import signal
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.grading.fontcache import font_cache_dir
from pipeline.grading.plan import REFERENCE, RunOutcome, RunRequest, Stage
from pipeline.grading.report import COMPLETED, CRASHED, FAILED_STATUS, TIMEDOUT
from pipeline.grading.staging import StagedAssignment, select_test_files
from pipeline.sandbox import PYTHON_PLACEHOLDER, SANDBOX_PYTHONPATH, SANDBOX_WORKDIR, Mount, \
    SandboxLimits, SandboxResult, run_sandboxed

log = logging.getLogger(__name__)

RUNNER_PATH = f"{SANDBOX_PYTHONPATH}/pipeline/grading/runner.py"
CONTROL_DIR = "/opt/gradehook/run"
REQUEST_PATH = f"{CONTROL_DIR}/request.json"
RESULT_PATH = "/opt/gradehook/result"
TESTS_DIR = "/opt/gradehook/tests"
MPL_DIR = "/opt/gradehook/mpl"
# Time a run may take beyond its timeouts: interpreter start, preloads, lookups, result writing.
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
EXITED_UNEXPECTEDLY = "process ended unexpectedly with exit code {code}"
RESULT_TOO_LARGE = "the values to compare exceed the result size limit"


@dataclass(frozen=True)
class RunEnvironment:
    """Everything the runs of one grading share: directories, limits, interpreter."""

    work: Path
    staged: StagedAssignment
    shown_dirs: dict[str, Path]
    limits: SandboxLimits
    python: str | None
    capture_limit: int


class SandboxExecutor:
    """Execute run requests in the sandbox, one process per (collection, side)."""

    def __init__(self, environment: RunEnvironment) -> None:
        self.env = environment
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def execute(self, request: RunRequest) -> RunOutcome:
        """Run a request in a fresh sandbox and return its outcome."""
        env = self.env
        with self._lock:
            number = next(self._numbers)
        control = env.work / "control" / f"{request.side}-{request.collection_index}-{number}"
        control.mkdir(parents=True)
        mounts = [Mount(control, CONTROL_DIR)]
        tests_dir = self._tests_for(request)
        if tests_dir is not None:
            mounts.append(Mount(tests_dir, TESTS_DIR))
        font_cache = None
        if "matplotlib.pyplot" in request.preload:
            font_cache = font_cache_dir(env.python)
        if font_cache is not None:
            mounts.append(Mount(font_cache, MPL_DIR))
        document = self._document(request, tests_dir is not None, font_cache is not None)
        (control / "request.json").write_text(json.dumps(document), encoding="utf-8")
        base = env.staged.reference_base if request.side == REFERENCE else env.staged.student_base
        limits = env.limits.with_overrides(timeout_seconds=self._wall_limit(request))
        result = run_sandboxed([PYTHON_PLACEHOLDER, RUNNER_PATH, REQUEST_PATH, RESULT_PATH],
                               workdir=base, mounts=mounts, limits=limits, python=env.python,
                               result_path=RESULT_PATH)
        outcome = interpret(result, request, self.stage_timeout(request.stage),
                            self._shown_entry(request), env.limits)
        _show_host_paths(outcome.traceback, env.shown_dirs[request.side])
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
        timeouts = [self.stage_timeout(stage) for stage in request.stages]
        if any(t == 0 for t in timeouts):
            return 0.0
        grace = STARTUP_GRACE_SECONDS + sum(PRELOAD_GRACE_SECONDS.get(m, 0.0)
                                            for m in request.preload)
        return sum(timeouts) + grace

    def _tests_for(self, request: RunRequest) -> Path | None:
        staged = self.env.staged
        if not staged.test_files:
            return None
        if request.side == REFERENCE:
            return staged.tests_dir
        code = [*request.values, *request.texts]
        for stage in request.stages:
            code += [*stage.set_up_code, *stage.tear_down_code]
        names = frozenset(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", "\n".join(code)))
        names |= frozenset(part for name in names for part in name.split("."))
        return select_test_files(staged, self.env.work, names)

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
                "capture_stdout": request.capture_stdout, "preload": list(request.preload),
                "stages": stages,
                "evaluate": {"values": list(request.values), "texts": list(request.texts),
                             "evals": list(request.evals)}}

    def _shown_entry(self, request: RunRequest) -> str:
        entry = request.stage.entry_point
        if entry is None:
            return NO_ENTRY_POINT
        return str(self.env.shown_dirs[request.side] / entry)


def _show_host_paths(traceback: dict[str, Any], shown_dir: Path) -> None:
    """Name the solution's files in a traceback by their host paths, as the messages do."""
    filename = traceback.get("filename")
    prefix = SANDBOX_WORKDIR + "/"
    if isinstance(filename, str) and filename.startswith(prefix):
        traceback["filename"] = str(shown_dir / filename[len(prefix):])


def timeout_message(seconds: float) -> str:
    """Return the TIMEDOUT message, the limit printed as a Python float."""
    return TIMEOUT_MESSAGE.format(seconds=float(seconds))


def interpret(result: SandboxResult, request: RunRequest, timeout: float, shown_entry: str,
              limits: SandboxLimits) -> RunOutcome:
    """Turn the sandbox's result into the run's status, message and values."""
    data = _last_document(result.result_data) if not result.result_truncated else None
    if data is None:
        return _died(result, timeout, shown_entry, limits)
    outcome = RunOutcome(
        status=COMPLETED, entry_seconds=float(data.get("entry_seconds") or 0.0),
        stdout=data.get("stdout"), values=data.get("values") or {},
        texts=data.get("texts") or {}, evals=data.get("evals") or {},
        figures=_figures(data.get("figures") or []), ran=True)
    error = data.get("error")
    if error:
        _apply_error(outcome, error, request.stage, timeout, shown_entry)
    return outcome


def _apply_error(outcome: RunOutcome, error: dict[str, Any], stage: Stage, timeout: float,
                 shown_entry: str) -> None:
    step = error.get("step")
    if error.get("kind") == "timeout":
        outcome.status, outcome.message = TIMEDOUT, timeout_message(timeout)
    elif step == "entry":
        outcome.status = CRASHED
        outcome.message = EXECUTION_FAILED.format(path=shown_entry, reason=error.get("message"))
        outcome.traceback = error.get("traceback") or {}
    elif step == "setup":
        outcome.status = FAILED_STATUS
        outcome.message = SETUP_FAILED.format(code=list(stage.set_up_code))
    else:
        outcome.status = FAILED_STATUS
        outcome.message = TEARDOWN_FAILED.format(code=list(stage.tear_down_code))


def _died(result: SandboxResult, timeout: float, shown_entry: str,
          limits: SandboxLimits) -> RunOutcome:
    if result.timed_out or result.killed_reason == "timeout":
        return RunOutcome(TIMEDOUT, timeout_message(timeout or limits.effective_timeout), ran=True)
    if result.result_truncated:
        reason = RESULT_TOO_LARGE
    elif result.killed_reason in KILLED_REASONS:
        reason = KILLED_REASONS[result.killed_reason].format(
            memory_mb=limits.memory_mb, output_bytes=limits.max_output_bytes,
            processes=limits.max_processes, workdir_mb=limits.workdir_size_mb)
    elif result.signal:
        reason = KILLED_BY_SIGNAL.format(name=_signal_name(result.signal))
    else:
        reason = EXITED_UNEXPECTEDLY.format(code=result.exit_code)
    return RunOutcome(CRASHED, EXECUTION_FAILED.format(path=shown_entry, reason=reason), ran=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _last_document(raw: bytes | None) -> dict[str, Any] | None:
    """Return the last line of the result channel that is a runner result document.

    The student's program can write to the channel too: a line nested too deeply to read is
    skipped like any other that is not a document.
    """
    if not raw:
        return None
    for line in reversed(raw.splitlines()):
        try:
            data = json.loads(line)
            if isinstance(data, dict) and "error" in data and "values" in data:
                return data
        except (ValueError, RecursionError):
            continue
    return None


def _figures(raw: list[Any]) -> list[tuple[int, bytes]]:
    import base64

    figures = []
    for item in raw:
        try:
            figures.append((int(item["number"]), base64.b64decode(item["png"])))
        except (KeyError, TypeError, ValueError):
            continue
    return figures
