"""Housekeeping of a worker host's disk: unused reference trees, abandoned workspaces, mirrors."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from pipeline.config import Settings
from pipeline.repos import RepositoryCache
from pipeline.tasks.retry import longest_backoff_seconds

log = logging.getLogger(__name__)

WORKSPACE_PREFIX = "run-"
LOCK_NAME = ".housekeeping.lock"
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class SweepReport:
    """What one sweep removed and checked; `skipped` when another sweep held the host."""

    trees_removed: int = 0
    workspaces_removed: int = 0
    mirrors_checked: int = 0
    skipped: bool = False

    def as_dict(self) -> dict:
        """Return the report as a plain dict (for logs and the CLI)."""
        return asdict(self)


def sweep(settings: Settings, repositories: RepositoryCache, *,
          now: float | None = None) -> SweepReport:
    """Clean a host's caches once; a sweep already running on the same data folder wins."""
    now = time.time() if now is None else now
    with _host_lock(settings.data_dir) as held:
        if not held:
            return SweepReport(skipped=True)
        report = SweepReport(
            trees_removed=repositories.remove_unused_trees(
                now - settings.worker.tree_max_idle_days * DAY_SECONDS),
            workspaces_removed=_remove_abandoned_workspaces(
                settings.workspace, now - _longest_run_seconds(settings)),
            mirrors_checked=repositories.pack_mirrors())
    log.info("housekeeping: %s", report.as_dict())
    return report


def _longest_run_seconds(settings: Settings) -> float:
    """Return the longest a live run can hold its workspace: no attempt outlives it."""
    worker = settings.worker
    return worker.student_testing_time_limit + longest_backoff_seconds(worker.max_attempts)


def _remove_abandoned_workspaces(workspace: Path, older_than: float) -> int:
    """Remove run workspaces left behind by a worker that died mid-run."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(workspace):
            if (entry.name.startswith(WORKSPACE_PREFIX) and entry.is_dir(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < older_than):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    return removed


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
    """Sweep a worker host at start and then every interval, in a daemon thread."""

    def __init__(self, settings: Settings, repositories: RepositoryCache) -> None:
        self._settings = settings
        self._repositories = repositories
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)

    def start(self) -> None:
        """Start sweeping."""
        self._thread.start()

    def stop(self) -> None:
        """Sweep no more once the sweep in progress, if any, is done."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sweep(self._settings, self._repositories)
            except Exception:  # a failed sweep must not end the next ones
                log.exception("housekeeping sweep failed")
            self._stop.wait(self._settings.worker.housekeeping_interval_seconds)
