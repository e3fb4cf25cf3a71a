"""Housekeeping of a worker host: unused trees and results, old workspaces, scratch and cgroups,
mirrors."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from pipeline.celery_app import visibility_timeout_seconds
from pipeline.config import Settings
from pipeline.grading.cache import ReferenceCache
from pipeline.grading.fontcache import FONT_CACHE_BUILD_PREFIX
from pipeline.grading.grader import GRADING_PREFIX
from pipeline.repos import RepositoryCache
from pipeline.sandbox.cgroup import remove_left_groups
from pipeline.sandbox.layout import MOUNT_COPIES_PREFIX
from pipeline.sandbox.scratch import IN_USE, ScratchFolder, read_mark, remove_abandoned, \
    scratch_entries

log = logging.getLogger(__name__)

WORKSPACE_PREFIX = "run-"
# The folders of the result channels that sandboxes made in the temporary folder before their
# channel lay in the sandbox itself: a process killed then left them.
OLD_RESULT_CHANNEL_PREFIX = "gradehook-result-"
# What sandboxes, gradings and font cache builds make in the temporary folder: a killed process
# leaves it there.
TEMPORARY_SCRATCH_PREFIXES = (MOUNT_COPIES_PREFIX, OLD_RESULT_CHANNEL_PREFIX, GRADING_PREFIX,
                              FONT_CACHE_BUILD_PREFIX)
LOCK_NAME = ".housekeeping.lock"
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class SweepReport:
    """What one sweep removed and checked; `skipped` when another sweep held the host."""

    trees_removed: int = 0
    reference_results_removed: int = 0
    workspaces_removed: int = 0
    scratch_folders_removed: int = 0  # in the temporary folder (TEMPORARY_SCRATCH_PREFIXES)
    sandbox_cgroups_removed: int = 0  # one per controller (memory, pids)
    mirrors_checked: int = 0
    skipped: bool = False

    def as_dict(self) -> dict:
        """Return the report as a plain dict (for the log line)."""
        return asdict(self)


@contextlib.contextmanager
def run_workspace(folder: Path, run_id: str, attempt: int) -> Iterator[Path]:
    """Make a run's work folder, mark it in use while the block runs, then remove it.

    Its mark (a ScratchFolder's) names the run's attempt: housekeeping tells a live run's
    folder from one a killed worker left behind, and a worker starting tells which attempt died.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with ScratchFolder(f"{WORKSPACE_PREFIX}{run_id}-", folder, note=str(attempt)) as root:
        yield root


@dataclass(frozen=True)
class RunWorkspace:
    """A run's work folder on this host, and whether the process of its run still lives."""

    run_id: str
    held: bool  # a live process holds its mark; False: the process that made it died
    attempt: int | None  # the run's attempt that made it (None: a mark of an older gradehook)


def run_workspaces(folder: Path) -> list[RunWorkspace]:
    """Return the marked run workspaces of a host's workspace folder.

    A folder without a mark (a run's very first moment, or a crash before it) is left out.
    """
    found = []
    for entry in scratch_entries(folder, (WORKSPACE_PREFIX,)):
        # mkdtemp's suffix holds no '-'; a run id may.
        run_id = entry.name[len(WORKSPACE_PREFIX):].rsplit("-", 1)[0]
        mark = read_mark(Path(entry.path))
        if mark is not None:
            found.append(RunWorkspace(run_id, mark.held,
                                      int(mark.note) if mark.note.isdigit() else None))
    return found


def grading_processes(folder: Path, locks: Path = Path("/proc/locks")) -> set[int]:
    """Return the processes that hold a run workspace's mark: those grading a run now."""
    marks = set()
    for entry in scratch_entries(folder, (WORKSPACE_PREFIX,)):
        with contextlib.suppress(OSError):
            marks.add(os.stat(Path(entry.path) / IN_USE).st_ino)
    holders = set()
    with contextlib.suppress(OSError):
        # "1: FLOCK  ADVISORY  READ 1234 08:01:5678 0 EOF"; waiters' lines hold "->" too.
        for line in locks.read_text().splitlines():
            fields = line.replace("->", "").split()
            if len(fields) >= 6 and fields[1] == "FLOCK" \
                    and int(fields[5].rsplit(":", 1)[1]) in marks:
                holders.add(int(fields[4]))
    return holders


def sweep(settings: Settings, repositories: RepositoryCache, *,
          now: float | None = None) -> SweepReport:
    """Clean a host's caches once; a sweep already running on the same data folder wins."""
    now = time.time() if now is None else now
    with _host_lock(settings.data_dir) as held:
        if not held:
            return SweepReport(skipped=True)
        unused_since = now - settings.worker.tree_max_idle_days * DAY_SECONDS
        live_runs_since = now - visibility_timeout_seconds(settings.worker)
        return SweepReport(
            trees_removed=repositories.remove_unused_trees(unused_since),
            reference_results_removed=ReferenceCache(settings.reference_cache).remove_unused(
                unused_since),
            # No run of a Celery worker holds its message, its workspace or its cgroups longer.
            workspaces_removed=remove_abandoned(settings.workspace, (WORKSPACE_PREFIX,),
                                                live_runs_since),
            scratch_folders_removed=remove_abandoned(Path(tempfile.gettempdir()),
                                                     TEMPORARY_SCRATCH_PREFIXES, live_runs_since),
            sandbox_cgroups_removed=remove_left_groups(live_runs_since),
            mirrors_checked=repositories.pack_mirrors())


@contextlib.contextmanager
def _host_lock(data_dir: Path) -> Iterator[bool]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_NAME, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


class HousekeepingTimer:
    """Sweep a worker host at start and then every interval, each sweep in a process of its own.

    The worker's main process forks pool processes whenever one ends; a lock a sweep held in it
    at that moment would live on in the new pool process. A separate process keeps them apart.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)

    def start(self) -> None:
        """Start sweeping."""
        self._thread.start()

    def stop(self) -> None:
        """Sweep no more once the sweep in progress, if any, is done."""
        self._stop.set()

    def _loop(self) -> None:
        interval = self._settings.worker.housekeeping_interval_seconds
        while not self._stop.is_set():
            self._sweep_in_a_process(timeout=interval)
            self._stop.wait(interval)

    def _sweep_in_a_process(self, timeout: float) -> None:
        try:
            done = subprocess.run([sys.executable, "-m", __name__],
                                  input=pickle.dumps(self._settings), capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("housekeeping sweep stopped after %g s", timeout)
            return
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        if done.returncode != 0:
            log.error("housekeeping sweep failed: %s", lines[-1] if lines else done.returncode)
            return
        for line in lines:  # what the sweep warned about (a tree or mirror it could not clean)
            log.warning("housekeeping: %s", line)
        log.info("housekeeping: %s", done.stdout.decode().strip())


def main() -> None:
    """Sweep once for the settings pickled on stdin (by HousekeepingTimer) and print the report."""
    settings = pickle.load(sys.stdin.buffer)
    repositories = RepositoryCache(settings.repository_cache, settings.gitlab.git_base)
    print(json.dumps(sweep(settings, repositories).as_dict()))


if __name__ == "__main__":
    main()
