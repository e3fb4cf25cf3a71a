"""Sandbox fairness benchmark: a student's run beside another run that floods the CPU.

Run `python -m bench.fairness` from the repository root, as root (the sandbox's cgroups need a
root worker). It times a small program (a fixed loop, about a third of a second of CPU) in the
sandbox, each as the median of a few repeats: alone; beside a "hog" sandbox whose processes each
start a session of their own (setsid) and spin; and beside the same hog with the runs' cpu
cgroups turned off, as before they existed. The kernel weighs each session alike (autogroups), so
without a cpu group per run the hog's sessions outweigh the student's one and its tests can time
out. The last line holds the headline: how many times longer the run takes beside the hog, with
and without cpu groups.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from bench.common import BenchError, busy_cpu_percent, format_table, machine, wait_until
from pipeline.sandbox import SandboxLimits, run_sandboxed
from pipeline.sandbox import cgroup
from tests.infra.sandbox_groups import groups_made

LIMITS = SandboxLimits(timeout_seconds=120, cpu_seconds=120, memory_mb=512, max_processes=64,
                       max_file_size_mb=8, max_open_files=64, workdir_size_mb=32,
                       max_output_bytes=1 << 20)
STUDENT = "total = 0\nfor number in range({loops}):\n    total += number\nprint(total)\n"
HOG = """
import multiprocessing, os

def spin():
    os.setsid()
    while True:
        pass

workers = [multiprocessing.Process(target=spin) for _ in range({processes})]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
"""


def timed_run(folder: Path) -> float:
    """Run the student's program once and return its wall time in seconds."""
    start = time.monotonic()
    result = run_sandboxed(["python", "student.py"], workdir=folder, limits=LIMITS)
    if result.exit_code != 0:
        raise BenchError(f"the student's program failed: {result.stderr.decode()[-500:]}")
    return time.monotonic() - start


@contextlib.contextmanager
def hog(folder: Path, processes: int) -> Iterator[None]:
    """Run the hog in a sandbox of its own until the block ends, its processes all spinning."""
    with groups_made() as made:
        thread = threading.Thread(target=run_sandboxed, args=(["python", "hog.py"],),
                                  kwargs=dict(workdir=folder, limits=LIMITS), daemon=True)
        thread.start()
        started = wait_until(lambda: next((group for group in made
                                           if len(group.pids()) > processes), None),
                             timeout=60, what="the hog's processes to start")
    try:
        yield
    finally:
        started.kill_all()
        thread.join(timeout=30)


@contextlib.contextmanager
def cpu_groups(enabled: bool) -> Iterator[None]:
    """Make the sandbox put each run in a cpu cgroup of its own, or not (as before)."""
    found = cgroup.controller_dirs
    without_cpu = {name: path for name, path in (found() or {}).items()
                   if name != cgroup.SHARE_CONTROLLER}
    if not enabled:
        cgroup.controller_dirs = lambda: without_cpu  # type: ignore[assignment]
    try:
        yield
    finally:
        cgroup.controller_dirs = found  # type: ignore[assignment]


def main() -> None:
    """Measure the three conditions and print the table and the headline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per condition")
    parser.add_argument("--loops", type=int, default=6_000_000, help="the program's loop length")
    parser.add_argument("--processes", type=int, default=16, help="the hog's processes")
    args = parser.parse_args()
    if cgroup.SHARE_CONTROLLER not in (cgroup.controller_dirs() or {}):
        raise BenchError("no writable cgroup v1 cpu controller: run as root on cgroup v1")
    print(f"Sandbox fairness benchmark on {machine().describe()}")
    print(f"CPU busy before the start: {busy_cpu_percent():.0f} %")
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as scratch:
        student, spinner = Path(scratch, "student"), Path(scratch, "hog")
        student.mkdir()
        spinner.mkdir()
        (student / "student.py").write_text(STUDENT.format(loops=args.loops))
        (spinner / "hog.py").write_text(HOG.format(processes=args.processes))
        timings: dict[str, list[float]] = {}
        timings["alone"] = [timed_run(student) for _ in range(args.repeats)]
        for label, enabled in (("beside the hog, a cpu group per run", True),
                               ("beside the hog, no cpu groups (before)", False)):
            with cpu_groups(enabled), hog(spinner, args.processes):
                timings[label] = [timed_run(student) for _ in range(args.repeats)]
    alone = statistics.median(timings["alone"])
    rows = [(label, f"{statistics.median(values):.2f}", f"{max(values):.2f}",
             f"{statistics.median(values) / alone:.1f}x") for label, values in timings.items()]
    print(format_table(("student's run", "median s", "max s", "vs alone"), rows))
    with_groups, without = (statistics.median(values) / alone for values in
                            list(timings.values())[1:])
    print(f"headline: beside a hog of {args.processes} sessions a run takes {with_groups:.1f}x "
          f"as long with a cpu group per run, {without:.1f}x without")


if __name__ == "__main__":
    main()
