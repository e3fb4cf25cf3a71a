"""Scratch folders marked in use while their process lives, and the sweep of those it left."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

IN_USE = ".in-use"
MAKING_MARK = ".in-use.making"
MARK_MODE = 0o600


class ScratchFolder:
    """A new folder, marked in use by this process until closed, then removed.

    The mark is a shared lock on a file inside, holding a note (a run's attempt, say): the
    kernel drops the lock when the process dies, however it dies (SIGKILL, the OOM killer), so
    a sweep tells a live process's folder from one a killed process left behind. The mark is
    locked and written under another name first: under its own name it is never seen unlocked
    while its process lives.
    """

    def __init__(self, prefix: str, parent: Path | None = None, note: str = "") -> None:
        """Make the folder in parent (None: the temporary folder), named from prefix."""
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        try:
            self._mark = _make_mark(self.path, note)
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the folder, then drop its mark."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._mark.close()


@dataclass(frozen=True)
class Mark:
    """A scratch folder's mark: whether a live process holds it, and its note."""

    held: bool  # False: the process that made the folder died
    note: str


def read_mark(folder: Path) -> Mark | None:
    """Return a scratch folder's mark; None if it has none (its first moment, or no mark)."""
    try:
        with open(folder / IN_USE) as mark:
            return Mark(_held(mark), mark.read().strip())
    except FileNotFoundError:
        return None


def scratch_entries(parent: Path, prefixes: tuple[str, ...]) -> list[os.DirEntry]:
    """Return the folders in parent named with one of prefixes (none if parent is gone)."""
    try:
        return [entry for entry in os.scandir(parent) if entry.name.startswith(prefixes)
                and entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def remove_abandoned(parent: Path, prefixes: tuple[str, ...], older_than: float) -> int:
    """Remove the scratch folders in parent, named with one of prefixes, that no live process
    holds; return how many went.

    A folder without a mark (its process died making it, or an older gradehook made it) goes
    once it is older than a time no process keeps its scratch. A folder of another user is
    left: a shared temporary folder holds other users' processes' folders, which they judge.
    """
    removed = 0
    for entry in scratch_entries(parent, prefixes):
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid() \
                    or not _abandoned(Path(entry.path), older_than):
                continue
        except FileNotFoundError:
            continue  # its process has just removed it
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def _make_mark(folder: Path, note: str) -> IO[str]:
    """Return the open mark of a new folder, locked; closing it drops the lock."""
    making = folder / MAKING_MARK
    mark = open(making, "w", opener=lambda name, flags: os.open(name, flags, MARK_MODE))
    try:
        fcntl.flock(mark, fcntl.LOCK_SH)
        mark.write(note)
        mark.flush()
        os.rename(making, folder / IN_USE)
    except BaseException:
        mark.close()
        raise
    return mark


def _abandoned(folder: Path, older_than: float) -> bool:
    """Tell whether no process holds a folder's mark; without a mark, go by its age."""
    mark = read_mark(folder)
    if mark is None:
        return folder.stat().st_mtime < older_than
    return not mark.held


def _held(mark: IO[str]) -> bool:
    """Tell whether a live process holds a folder's mark (a lock taken here is dropped)."""
    try:
        fcntl.flock(mark, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(mark, fcntl.LOCK_UN)
    return False
