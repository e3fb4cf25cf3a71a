"""gradehook processes for tests: a config file, a real worker, waiting on conditions."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import tomli_w

T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll a condition until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def write_config(directory: Path, settings: dict[str, Any]) -> Path:
    """Write a config.toml for a test and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_bytes(tomli_w.dumps(settings).encode())
    return path


def gradehook_argv(config: Path, *args: str) -> list[str]:
    """Return the command line of a gradehook CLI call with a config file."""
    return [sys.executable, "-m", "gradehook", "--config", str(config), *args]


@contextlib.contextmanager
def worker_process(config: Path, *, log_path: Path, concurrency: int = 1,
                   env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run a real Celery worker of gradehook until the block ends."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            gradehook_argv(config, "worker", "start", "--concurrency", str(concurrency)),
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True)
    try:
        yield process
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop a process and its children: SIGTERM to it, then SIGKILL to the group if needed.

    Only the leader gets SIGTERM, so a Celery worker or gunicorn shuts down warmly, finishing
    what its children are doing, as it would under a process manager.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def web_process(config: Path, port: int, *, log_path: Path) -> Iterator[subprocess.Popen]:
    """Run gradehook's web process (gunicorn) on a port until the block ends."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(gradehook_argv(config, "web", "--port", str(port)),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _answers(port) or process.poll() is not None, timeout=60,
                 what=f"web process to answer on port {port}")
        if process.poll() is not None:
            raise AssertionError(f"web process exited with {process.returncode}")
        yield process
    finally:
        stop_process_group(process)


def _answers(port: int) -> bool:
    """Tell whether an HTTP server answers on a port (any status).

    gunicorn listens before its workers have loaded the app: a test's first request would wait
    for their start, on a busy host longer than that request's timeout.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def service_health(port: int) -> dict | None:
    """Return the health answer of a web process on a port (any status), None if none answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tests-celery/health",
                                    timeout=5) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        return json.load(error)
    except OSError:
        return None


def children(pid: int) -> set[int]:
    """Return the processes whose parent is a process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if _stat(int(entry.name))[1] == pid:
                    found.add(int(entry.name))
    return found


def descendants(pid: int) -> set[int]:
    """Return the processes below a process, however deep (pool processes, beat, sandboxes)."""
    found, todo = set(), [pid]
    while todo:
        for child in children(todo.pop()) - found:
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Tell whether a process exists and is no zombie."""
    try:
        return _stat(pid)[0] != "Z"
    except OSError:
        return False


def _stat(pid: int) -> tuple[str, int]:
    """Return a process's state letter and parent's pid from /proc/<pid>/stat."""
    state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)
