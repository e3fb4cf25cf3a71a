"""Find the host directories a Python interpreter needs, so the sandbox can show them read-only."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from pipeline.sandbox.model import SandboxError

PROBE = ("import json, os, sys; print(json.dumps([list(sys.version_info[:3]), sys.prefix,"
         " sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,"
         " os.path.realpath(sys.executable)]))")
PROBE_TIMEOUT_SECONDS = 30
# The oldest Python that gradehook's programs in the sandbox run on: pytest mode's watchdog uses
# os.pidfd_open and os.waitstatus_to_exitcode, both new in Python 3.9 (pidfd needs Linux 5.3,
# which the worker's own sandbox supervision needs too).
MINIMUM_VERSION = (3, 9)
NOT_AN_INTERPRETER = "sandbox python {path!r}: not an absolute path to an executable file"
PROBE_FAILED = "sandbox python {path!r}: cannot be started to find its installation: {reason}"
TOO_OLD = ("sandbox python {path!r}: is Python {found}, older than Python {minimum}, the oldest "
           "that gradehook's programs in the sandbox run on")


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter: the path to run and the host directories it reads."""

    executable: str
    directories: tuple[str, ...]


def resolve_interpreter(python: str | None) -> Interpreter:
    """Return the interpreter to run (None or "" means this process's own interpreter)."""
    return _probe(python or sys.executable)


@functools.lru_cache(maxsize=8)
def _probe(python: str) -> Interpreter:
    if not os.path.isabs(python) or not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise SandboxError(NOT_AN_INTERPRETER.format(path=python))
    try:
        done = subprocess.run([python, "-I", "-c", PROBE], capture_output=True,
                              timeout=PROBE_TIMEOUT_SECONDS, env={}, check=True)
        version, *prefixes = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise SandboxError(PROBE_FAILED.format(path=python, reason=exc)) from None
    if tuple(version) < MINIMUM_VERSION:
        raise SandboxError(TOO_OLD.format(path=python, found=".".join(map(str, version)),
                                          minimum=".".join(map(str, MINIMUM_VERSION))))
    real_executable = prefixes.pop()
    candidates = [*prefixes, os.path.dirname(real_executable),
                  os.path.dirname(os.path.abspath(python))]
    return Interpreter(executable=os.path.abspath(python),
                       directories=outermost([*candidates,
                                              *(os.path.realpath(p) for p in candidates)]))


def outermost(paths) -> tuple[str, ...]:
    """Return the distinct paths that are not inside another of them, sorted."""
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(is_within(path, outer) for outer in kept):
            kept.append(path)
    return tuple(kept)


def is_within(path: str, outer: str) -> bool:
    """Tell whether path is outer itself or lies below it."""
    return path == outer or path.startswith(outer.rstrip("/") + "/")
