"""The sandbox's data types: limits, read-only mounts, the outcome of a run, and its error."""

from __future__ import annotations

import dataclasses
import math
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import SandboxSettings

HARD_TIMEOUT_SECONDS = 600.0
# The limits' megabytes, and those gradehook's messages name: 1,048,576 bytes each.
KB = 1024
MB = 1024 * KB
# The grading engine parses no result line longer than 8 MiB (pipeline.grading.execution's
# MAX_RESULT_LINE_BYTES), so the channel holds no more: a run that writes more is stopped.
DEFAULT_MAX_RESULT_BYTES = 8 * 1024 * 1024

KILLED_TIMEOUT = "timeout"
KILLED_MEMORY = "memory"
KILLED_OUTPUT = "output"
KILLED_PROCESSES = "processes"
KILLED_DISK = "disk"


class SandboxError(Exception):
    """The sandbox could not be set up or used: ours or the caller's fault, never the program's."""


class SandboxStopped(SandboxError):
    """The caller stopped the sandbox before its program ended: no verdict on the program."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed program may use."""

    timeout_seconds: float
    cpu_seconds: int
    memory_mb: int
    max_processes: int
    max_file_size_mb: int
    max_open_files: int
    workdir_size_mb: int
    max_output_bytes: int
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    def __post_init__(self) -> None:
        timeout = self.timeout_seconds
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not math.isfinite(timeout) or timeout < 0:
            raise SandboxError(f"timeout_seconds: must be a finite number >= 0, got {timeout!r}")
        for name in ("cpu_seconds", "memory_mb", "max_processes", "max_file_size_mb",
                     "max_open_files", "workdir_size_mb", "max_output_bytes",
                     "max_result_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SandboxError(f"{name}: must be a whole number >= 1, got {value!r}")

    @property
    def effective_timeout(self) -> float:
        """Return the wall-clock limit in seconds: the timeout, capped by the engine-wide cap."""
        if self.timeout_seconds == 0:
            return HARD_TIMEOUT_SECONDS
        return min(float(self.timeout_seconds), HARD_TIMEOUT_SECONDS)

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> SandboxLimits:
        """Build limits from the [sandbox] section of the configuration."""
        return cls(timeout_seconds=settings.timeout_seconds, cpu_seconds=settings.cpu_seconds,
                   memory_mb=settings.memory_mb, max_processes=settings.max_processes,
                   max_file_size_mb=settings.max_file_size_mb,
                   max_open_files=settings.max_open_files,
                   workdir_size_mb=settings.workdir_size_mb,
                   max_output_bytes=settings.max_output_bytes)

    def with_overrides(self, *, timeout_seconds: float | None = None,
                       memory_mb: int | None = None) -> SandboxLimits:
        """Return a copy with the given limits replaced (None keeps the current value)."""
        changes: dict[str, float | int] = {}
        if timeout_seconds is not None:
            changes["timeout_seconds"] = timeout_seconds
        if memory_mb is not None:
            changes["memory_mb"] = memory_mb
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Mount:
    """A host path made visible read-only at an absolute path inside the sandbox."""

    host_path: Path
    sandbox_path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "host_path", Path(self.host_path))
        check_sandbox_path(self.sandbox_path, "Mount.sandbox_path")


def check_sandbox_path(path: str, what: str) -> None:
    """Raise SandboxError unless path is an absolute, normalised path below the sandbox root."""
    if not isinstance(path, str) or not path.startswith("/") or path == "/" \
            or posixpath.normpath(path) != path or "\0" in path:
        raise SandboxError(f"{what}: must be an absolute, normalised path other than /, "
                           f"got {path!r}")


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed program ended and what it produced."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    killed_reason: str | None
    stdout: bytes
    stderr: bytes
    output_truncated: bool
    duration_seconds: float
    result_data: bytes | None
    result_truncated: bool = False
