"""ReferenceCache: reference run outcomes on disk, shared safely by several worker processes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


class ReferenceCache:
    """A directory of JSON entries, written atomically, each computed once across processes.

    Keys are built from the reference version (commit or content hash), the assignment, the
    spec digest and the engine version by the caller; see ``key``.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(*parts: str) -> str:
        """Return the cache key of the given parts."""
        return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the entry stored under key, or None (an unreadable entry counts as missing)."""
        path = self._path(key)
        try:
            with path.open(encoding="utf-8") as handle:
                found = json.load(handle)
            os.utime(path)  # its last use, which housekeeping goes by
            return found
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("reference cache entry %s unreadable, recomputing: %s", key, exc)
            return None

    def put(self, key: str, data: dict[str, Any]) -> None:
        """Store an entry atomically: readers see the old entry or the whole new one."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    def get_or_compute(self, key: str, compute: Callable[[], dict[str, Any]], *,
                       lasting: Callable[[dict[str, Any]], bool] = lambda _data: True
                       ) -> dict[str, Any]:
        """Return the entry, computing and storing it first if missing, once across processes.

        A computed entry that is not `lasting` (one that may come out otherwise next time) is
        returned without being stored.
        """
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        lock_path = self._path(key).with_suffix(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                found = self.get(key)
                if found is not None:
                    self.hits += 1
                    return found
                self.misses += 1
                data = compute()
                if lasting(data):
                    self.put(key, data)
                return data
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def remove_unused(self, unused_since: float) -> int:
        """Remove entries not used since a moment (seconds since the epoch); count them.

        Their lock files go with them, and so do files a writer that died left half-written. An
        entry a grading still wanted is simply computed again.
        """
        removed = 0
        for path in self.directory.glob("*/*"):
            try:
                if path.stat().st_mtime >= unused_since:
                    continue
                if path.suffix == ".json" and not path.name.startswith(".tmp-"):
                    path.with_suffix(".lock").unlink(missing_ok=True)
                    removed += 1
                path.unlink()
            except FileNotFoundError:
                continue
        return removed

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"
