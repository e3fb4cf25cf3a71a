"""Per-run cgroups (v1): exact memory and process caps, when they hit, and a fair CPU share."""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import secrets
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "pids")
# Optional: in a cpu group of its own a run weighs as much as any other run, however many
# processes it starts or sessions they make (the kernel's autogroups weigh each session alike, so
# a program whose processes each call setsid() would otherwise take the CPU from other runs and
# make their tests time out).
SHARE_CONTROLLER = "cpu"
REMOVE_DEADLINE_SECONDS = 2.0
# A run's cgroups are named by a random token: the sandboxed program reads the name in its
# /proc/self/cgroup, so it tells nothing of the host (earlier releases named them by the
# worker's pid and a number, gradehook-sandbox-<pid>-<number>).
GROUP_PREFIX = "gradehook-sandbox-"
TOKEN_BYTES = 8


@functools.lru_cache(maxsize=1)
def controller_dirs() -> dict[str, Path] | None:
    """Return this process's writable cgroup v1 directory per controller, or None if memory or
    pids lacks one (the cpu controller is used where it is writable)."""
    found: dict[str, Path] = {}
    mounts = _v1_mounts()
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(","):
            if name in mounts:
                mount_root, mount_point = mounts[name]
                relative = path[len(mount_root):] if path.startswith(mount_root) else path
                found[name] = Path(mount_point + "/" + relative.strip("/"))
    writable = {name: folder for name, folder in found.items() if os.access(folder, os.W_OK)}
    if not all(name in writable for name in CONTROLLERS):
        log.warning("no writable cgroup v1 memory and pids controllers: the sandbox falls back "
                    "to rlimits (memory as RLIMIT_AS, processes as RLIMIT_NPROC)")
        return None
    if SHARE_CONTROLLER not in writable:
        log.warning("no writable cgroup v1 cpu controller: a sandboxed program that starts many "
                    "processes takes a larger share of the CPU from other runs")
    return writable


def _v1_mounts() -> dict[str, tuple[str, str]]:
    mounts: dict[str, tuple[str, str]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3]
        if fstype != "cgroup":
            continue
        for option in options.split(","):
            if option in (*CONTROLLERS, SHARE_CONTROLLER):
                mounts[option] = (fields[3], fields[4])
    return mounts


class RunCgroup:
    """One cgroup per controller for one sandbox run: memory, pids and, where it can, cpu.

    The process that makes the groups holds a lock on each group's folder until it removes
    them: the kernel lets the lock go when the process ends, however it ends, so housekeeping
    knows the groups of a killed process by their lock, free (remove_left_groups).
    """

    def __init__(self, dirs: dict[str, Path], locks: list[int]) -> None:
        self.dirs = dirs
        self._locks = locks

    @classmethod
    def create(cls, memory_bytes: int, max_pids: int) -> RunCgroup | None:
        """Make the run's cgroups with their limits, or return None where cgroups are unusable."""
        parents = controller_dirs()
        if parents is None:
            return None
        group = cls._make(parents)
        try:
            group._write("memory", "memory.limit_in_bytes", memory_bytes)
            swap_limit = group.dirs["memory"] / "memory.memsw.limit_in_bytes"
            if swap_limit.exists():
                group._write("memory", swap_limit.name, memory_bytes)
            group._write("pids", "pids.max", max_pids)
        except OSError:
            group.remove()
            raise
        return group

    @classmethod
    def _make(cls, parents: dict[str, Path]) -> RunCgroup:
        """Make one group per controller under a new random name, each held locked."""
        name = GROUP_PREFIX + secrets.token_hex(TOKEN_BYTES)
        group = cls({}, [])
        try:
            for controller, parent in parents.items():
                (parent / name).mkdir()
                group.dirs[controller] = parent / name
                group._locks.append(_locked(parent / name))
        except OSError:
            group.remove()
            raise
        return group

    def _write(self, controller: str, name: str, value: int) -> None:
        (self.dirs[controller] / name).write_text(str(value))

    def attach(self, pid: int) -> None:
        """Move a process (and so all it starts later) into the run's cgroups."""
        for controller in self.dirs:
            self._write(controller, "cgroup.procs", pid)

    def oom_kills(self) -> int:
        """Return how many processes the memory limit has killed."""
        text = (self.dirs["memory"] / "memory.oom_control").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def refused_forks(self) -> int:
        """Return how many process creations the process limit has refused."""
        text = (self.dirs["pids"] / "pids.events").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "max":
                return int(value)
        return 0

    def pids(self) -> list[int]:
        """Return the processes still in the run's cgroups."""
        found: set[int] = set()
        for path in self.dirs.values():
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
        return sorted(found)

    def tasks(self) -> list[str]:
        """Return the ids of the tasks (each thread of each process) in the run's cgroups."""
        try:
            return (self.dirs["pids"] / "tasks").read_text().split()
        except FileNotFoundError:
            return []

    def kill_all(self) -> None:
        """Send SIGKILL to every process in the run's cgroups."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue

    def remove(self) -> None:
        """Kill what is left and remove the cgroups, waiting briefly for the processes to go;
        let their locks go."""
        deadline = time.monotonic() + REMOVE_DEADLINE_SECONDS
        for path in self.dirs.values():
            while path.exists():
                self.kill_all()
                try:
                    path.rmdir()
                except OSError as exc:
                    if time.monotonic() > deadline:
                        log.error("cannot remove sandbox cgroup %s: %s", path, exc)
                        break
                    time.sleep(0.005)
        for lock in self._locks:
            os.close(lock)
        self._locks.clear()


def _locked(folder: Path) -> int:
    """Open a cgroup's folder and lock it; return the open descriptor, which holds the lock."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def remove_left_groups(made_before: float) -> int:
    """Remove the empty cgroups, made before a time, of runs whose process is gone; return how
    many went.

    A process killed while its sandbox ran (a worker SIGKILLed or stopped at once, the OOM
    killer) cannot remove its run's groups, and each memory cgroup keeps kernel memory. Its
    groups are those whose lock no process holds (groups of an earlier release hold none).
    Groups that still hold a process are left. A run's groups are also empty before its
    processes join them and after they end, and free in the moment between their making and
    their locking: only groups older than any run are removed (a cgroup folder's time is when
    it was made).
    """
    parents = controller_dirs()
    if parents is None:
        return 0
    removed = 0
    for parent in parents.values():
        for entry in os.scandir(parent):
            if (entry.name.startswith(GROUP_PREFIX) and entry.is_dir(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < made_before
                    and _removed_if_left(entry.path)):
                log.warning("removed sandbox cgroup %s left by a killed process", entry.path)
                removed += 1
    return removed


def _removed_if_left(folder: str) -> bool:
    """Remove a run's cgroup that no process holds locked nor is in; tell whether it went."""
    try:
        lock = _locked(Path(folder))
    except OSError:  # its run's process holds it (BlockingIOError), or it went meanwhile
        return False
    try:
        os.rmdir(folder)  # the kernel refuses a cgroup that holds a process
    except OSError:
        return False
    finally:
        os.close(lock)
    return True
