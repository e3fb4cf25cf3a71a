"""Fixtures for the sandbox tests: small limits and a helper that runs a program in a sandbox."""

from __future__ import annotations

import os
import platform
import re
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from pipeline.sandbox import Mount, SandboxLimits, SandboxResult, run_sandboxed

RESULT_PATH = "/run/gradehook/result"
CONTAINED = b"CONTAINED\n"

SMALL_LIMITS = SandboxLimits(timeout_seconds=10.0, cpu_seconds=10, memory_mb=256,
                             max_processes=32, max_file_size_mb=4, max_open_files=64,
                             workdir_size_mb=16, max_output_bytes=64 * 1024,
                             max_result_bytes=64 * 1024)

Runner = Callable[..., SandboxResult]

# A run's cgroups are named by a random token, never by anything of the host.
RUN_GROUP_NAME = re.compile(r"gradehook-sandbox-[0-9a-f]{16}")

# Linux 6.15 keeps a reaped process's wait status for its pidfds (pipeline.sandbox.exit_status):
# before, an exit code 128+N reads as a death by signal N.
KEEPS_EXIT_STATUS = pytest.mark.skipif(
    tuple(map(int, re.match(r"(\d+)\.(\d+)", platform.release()).groups())) < (6, 15),
    reason="the kernel keeps no wait status for pidfds before Linux 6.15")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty host work directory."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def run(workdir: Path) -> Runner:
    """Run Python source as prog.py in a sandbox on workdir with the small limits."""
    def run_program(source: str, *, limits: SandboxLimits = SMALL_LIMITS, stdin: bytes = b"",
                    mounts: tuple[Mount, ...] = (), args: tuple[str, ...] = (),
                    result_path: str | None = RESULT_PATH) -> SandboxResult:
        (workdir / "prog.py").write_text(textwrap.dedent(source))
        return run_sandboxed(["python", "prog.py", *args], workdir=workdir, mounts=mounts,
                             stdin=stdin, limits=limits, result_path=result_path)
    return run_program


def assert_contained(result: SandboxResult) -> None:
    """Assert that a hostile program ran to its end and found every attempt refused."""
    report = f"{result}\n{result.stderr.decode(errors='replace')}"
    assert result.killed_reason is None, report
    assert (result.exit_code, result.stderr) == (0, b""), report
    assert result.stdout.endswith(CONTAINED), report


def host_processes_with(marker: str) -> list[int]:
    """Return the host pids whose command line contains marker."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


def programs_with(marker: str) -> list[int]:
    """Return the pids of Python programs running with marker: not bwrap, the guard or prlimit."""
    return [pid for pid in host_processes_with(marker)
            if Path(f"/proc/{pid}/comm").read_text().startswith("python")]
