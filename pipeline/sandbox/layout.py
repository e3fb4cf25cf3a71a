"""What the sandboxed program sees: file system, environment and namespaces, as bwrap options."""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.sandbox.hostuser import SEARCH, HostUser, denied_on_the_way
from pipeline.sandbox.interpreter import Interpreter, is_within
from pipeline.sandbox.model import Mount, SandboxError, check_sandbox_path
from pipeline.sandbox.scratch import ScratchFolder
from pipeline.sandbox.seccomp import seccomp_program
from pipeline.sandbox.workdir import copy_for_group

SANDBOX_UID = 65534
SANDBOX_GID = 65534
SANDBOX_HOSTNAME = "sandbox"
SANDBOX_ROOT = "/sandbox"
SANDBOX_WORKDIR = "/sandbox/work"
SANDBOX_TMPDIR = "/sandbox/tmp"
SANDBOX_SHMDIR = "/sandbox/shm"
# The result channel's FIFO, beside the work directory; the result path is a link to it. Made
# there by the host (pipeline.sandbox.channel), not bound from it, it is no mount:
# /proc/self/mountinfo names no folder of the host for it.
SANDBOX_RESULT_FIFO = "/sandbox/result"
SANDBOX_PYTHONPATH = "/opt/gradehook/lib"
# Where an interpreter directory is shown when its own path is one the sandbox hides.
RELOCATED_ROOT = "/opt/gradehook/python"
SHARED_SUBPACKAGES = ("sandbox", "grading")
PYTHON_PLACEHOLDER = "python"

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
HOST_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
                  "alternatives", "fonts")
DEVICES = ("null", "zero", "full", "random", "urandom")
# Kernel settings and controls in /proc, shown read-only where the kernel has them.
PROC_COVERS = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")
# The per-run folder of mount copies: the sandbox user's group may reach the copies in it.
COPIES_DIR_MODE = 0o710
MOUNT_COPIES_PREFIX = "gradehook-mounts-"
RESERVED_PATHS = (*SYSTEM_DIRS, "/etc", "/proc", "/dev", "/tmp", SANDBOX_ROOT,
                  SANDBOX_PYTHONPATH)
GENERATED_ETC = {
    "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:{SANDBOX_UID}:"
              f"{SANDBOX_GID}:sandbox:{SANDBOX_WORKDIR}:/usr/sbin/nologin\n",
    "group": f"root:x:0:\nsandbox:x:{SANDBOX_GID}:\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
}
BASE_ENVIRONMENT = {
    "HOME": SANDBOX_WORKDIR,
    "LANG": "C.UTF-8",
    "PYTHONPATH": SANDBOX_PYTHONPATH,
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "XDG_CACHE_HOME": "/tmp/cache",
    "XDG_CONFIG_HOME": "/tmp/config",
    "TMPDIR": "/tmp",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
OVERLAP = "{what} {path!r} overlaps {other!r}"
MISSING_MOUNT = "Mount.host_path {path}: does not exist"
BAD_ENV = "extra_env: names and values must be strings without NUL or '=' in names, got {name!r}"
UNREACHABLE = ("{what} {path}: bwrap runs as the sandbox user {user} (uid {uid}) because this "
               "process is root, and that user cannot {need} {blocked}; allow it (chmod o+{bits} "
               "{blocked}) or {instead}")
INTERPRETER_INSTEAD = "set sandbox.python to an interpreter installed where that user can read"
PACKAGES_INSTEAD = "install gradehook where that user can read"
UNCOPIED_MOUNT = "Mount.host_path {path}: cannot be copied for the sandbox user: {reason}"
SHOWN_PLACE = ("{what} {path}: lies in {shown}, which every sandbox shows, so that any program "
               "could read it and all beside it (other runs, reference solutions, result "
               "channels); keep gradehook's data directory and the temporary folder out of the "
               "system folders and the sandbox python's installation")


@dataclass
class Layout:
    """bwrap options plus the descriptors and mount copies they name, for one run."""

    options: list[str] = field(default_factory=list)
    pass_fds: list[int] = field(default_factory=list)
    copies: ScratchFolder | None = None

    def add(self, *options: str) -> None:
        """Append bwrap options."""
        self.options.extend(options)

    def add_data(self, option: str, data: bytes, *arguments: str) -> None:
        """Append an option that reads a small blob of data from a descriptor."""
        read_end, write_end = os.pipe()
        os.write(write_end, data)
        os.close(write_end)
        self.pass_fds.append(read_end)
        self.add(option, str(read_end), *arguments)

    def copy_mounts(self, mounts: Sequence[Mount], group: int) -> list[str]:
        """Copy the mounts' host paths where only group (and this process) may read them.

        Return the copies' paths, in order; close() removes them.
        """
        if not mounts:
            return []
        self.copies = ScratchFolder(MOUNT_COPIES_PREFIX)
        os.chown(self.copies.path, -1, group)
        os.chmod(self.copies.path, COPIES_DIR_MODE)
        copies = []
        for number, mount in enumerate(mounts):
            copy = str(self.copies.path / str(number))
            try:
                copy_for_group(str(mount.host_path.resolve()), copy, group)
            except OSError as exc:
                self.close()
                raise SandboxError(UNCOPIED_MOUNT.format(path=mount.host_path,
                                                         reason=exc)) from None
            copies.append(copy)
        return copies

    def close_descriptors(self) -> None:
        """Close the descriptors that were handed to bwrap."""
        for fd in self.pass_fds:
            os.close(fd)
        self.pass_fds.clear()

    def close(self) -> None:
        """Close the descriptors and remove the mount copies."""
        self.close_descriptors()
        if self.copies is not None:
            self.copies.close()
            self.copies = None


def check_unshown(interpreter: Interpreter, workdir: Path, mounts: Sequence[Mount]) -> None:
    """Raise SandboxError if a host place of the run lies in a folder every sandbox shows.

    The work directory and the mounts are those of a run in gradehook's data directory, beside
    the other runs' and the reference solutions; the temporary folder holds every run's mount
    copies and result channels.
    """
    problem = shown_place([("work directory", str(workdir)),
                           ("temporary folder", tempfile.gettempdir()),
                           *(("Mount.host_path", str(mount.host_path)) for mount in mounts)],
                          interpreter)
    if problem is not None:
        raise SandboxError(problem)


def shown_place(places: Sequence[tuple[str, str | os.PathLike]],
                interpreter: Interpreter) -> str | None:
    """Word the first of (what, path) places that lies in a folder every sandbox shows."""
    for what, path in places:
        shown = shown_folder_of(path, interpreter)
        if shown is not None:
            return SHOWN_PLACE.format(what=what, path=path, shown=shown)
    return None


def shown_folder_of(path: str | os.PathLike, interpreter: Interpreter) -> str | None:
    """Return the folder every sandbox shows (read-only) that a host path lies in, if any."""
    real = os.path.realpath(path)
    return next((shown for shown in _shown_folders(interpreter) if is_within(real, shown)),
                None)


@functools.lru_cache(maxsize=8)
def _shown_folders(interpreter: Interpreter) -> tuple[str, ...]:
    """Return the real paths of the host folders and files every sandbox shows."""
    folders = [*SYSTEM_DIRS, *(f"/etc/{name}" for name in HOST_ETC_FILES),
               *(host for host, _ in interpreter_binds(interpreter)),
               *(host for host, _ in shared_packages())]
    return tuple(dict.fromkeys(os.path.realpath(folder) for folder in folders))


def build_layout(interpreter: Interpreter, mounts: Sequence[Mount], workdir_size_mb: int,
                 result_path: str | None, extra_env: Mapping[str, str],
                 user: HostUser | None) -> Layout:
    """Return the bwrap options for a run; result_path is where the result channel is shown.

    user is the host user bwrap runs as when not this process's user: it must reach the
    interpreter and the packages, and it is shown read-only copies of the mounts, since it
    cannot reach the worker's folders.
    """
    mounts = tuple(mounts)
    _check_paths(interpreter, mounts, result_path)
    if user is not None:
        _check_reachable(interpreter, user)
    env = environment(interpreter, extra_env)
    layout = Layout()
    try:
        _fill(layout, interpreter, mounts, workdir_size_mb, result_path, env, user)
    except BaseException:
        layout.close()  # the mount copies too: an interruption must not leave test files about
        raise
    return layout


def _fill(layout: Layout, interpreter: Interpreter, mounts: tuple[Mount, ...],
          workdir_size_mb: int, result_path: str | None, env: Mapping[str, str],
          user: HostUser | None) -> None:
    """Add a run's options to the layout, copying the mounts first when user needs copies."""
    sources = [str(mount.host_path) for mount in mounts] if user is None else \
        layout.copy_mounts(mounts, user.gid)
    layout.add("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
               "--unshare-uts", "--unshare-cgroup-try", "--disable-userns",
               "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
               "--hostname", SANDBOX_HOSTNAME, "--die-with-parent", "--new-session",
               "--cap-drop", "ALL", "--clearenv")
    for name, value in env.items():
        layout.add("--setenv", name, value)
    layout.add(*_system_options())
    for name, content in GENERATED_ETC.items():
        layout.add_data("--ro-bind-data", content.encode(), f"/etc/{name}")
    for host_dir, sandbox_dir in interpreter_binds(interpreter):
        layout.add("--ro-bind", host_dir, sandbox_dir)
    for host_dir, sandbox_dir in shared_packages():
        layout.add("--ro-bind", host_dir, sandbox_dir)
    for mount, source in zip(mounts, sources):
        layout.add("--ro-bind", source, mount.sandbox_path)
    layout.add("--proc", "/proc")
    for path in PROC_COVERS:
        layout.add("--ro-bind-try", path, path)
    layout.add("--dir", "/dev")
    for device in DEVICES:
        layout.add("--dev-bind", f"/dev/{device}", f"/dev/{device}")
    layout.add("--symlink", "/proc/self/fd", "/dev/fd",
               "--size", str(workdir_size_mb * 1024 * 1024), "--tmpfs", SANDBOX_ROOT,
               "--dir", SANDBOX_WORKDIR, "--dir", SANDBOX_TMPDIR, "--dir", SANDBOX_SHMDIR,
               "--symlink", SANDBOX_TMPDIR, "/tmp", "--symlink", SANDBOX_SHMDIR, "/dev/shm")
    for number, stream in enumerate(("stdin", "stdout", "stderr")):
        layout.add("--symlink", f"/proc/self/fd/{number}", f"/dev/{stream}")
    if result_path is not None:
        layout.add("--symlink", SANDBOX_RESULT_FIFO, result_path)
    layout.add("--remount-ro", "/", "--chdir", SANDBOX_WORKDIR)
    program = seccomp_program()
    if program is not None:
        layout.add_data("--seccomp", program)


def environment(interpreter: Interpreter, extra_env: Mapping[str, str]) -> dict[str, str]:
    """Return the program's whole environment."""
    bin_dir = os.path.dirname(sandbox_executable(interpreter))
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
           **BASE_ENVIRONMENT}
    for name, value in extra_env.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name \
                or "=" in name or "\0" in name or "\0" in value:
            raise SandboxError(BAD_ENV.format(name=name))
        env[name] = value
    return env


def interpreter_binds(interpreter: Interpreter) -> tuple[tuple[str, str], ...]:
    """Return (host dir, sandbox dir) of the interpreter's directories not already shown.

    A directory the sandbox's own layout would hide (a virtualenv under /tmp, say) is shown at
    a neutral path instead; Python finds a virtualenv from where its executable is started.
    """
    binds = []
    for directory in interpreter.directories:
        if any(is_within(directory, system) for system in SYSTEM_DIRS):
            continue
        hidden = any(is_within(directory, reserved) or is_within(reserved, directory)
                     for reserved in RESERVED_PATHS)
        binds.append((directory, f"{RELOCATED_ROOT}/{len(binds)}" if hidden else directory))
    return tuple(binds)


def sandbox_executable(interpreter: Interpreter) -> str:
    """Return the path of the interpreter's executable inside the sandbox."""
    for host_dir, sandbox_dir in interpreter_binds(interpreter):
        if is_within(interpreter.executable, host_dir):
            return sandbox_dir + interpreter.executable[len(host_dir):]
    return interpreter.executable


@functools.lru_cache(maxsize=1)
def _system_options() -> tuple[str, ...]:
    options: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            options += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            options += ["--ro-bind", path, path]
    for name in HOST_ETC_FILES:
        options += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return tuple(options)


@functools.lru_cache(maxsize=1)
def shared_packages() -> tuple[tuple[str, str], ...]:
    """Return (host dir, sandbox dir) of each gradehook package the sandbox may import."""
    pipeline_dir = Path(__file__).resolve().parent.parent
    return tuple((str(pipeline_dir / name), f"{SANDBOX_PYTHONPATH}/pipeline/{name}")
                 for name in SHARED_SUBPACKAGES if (pipeline_dir / name).is_dir())


def _check_paths(interpreter: Interpreter, mounts: tuple[Mount, ...],
                 result_path: str | None) -> None:
    taken = [("reserved path", p) for p in RESERVED_PATHS]
    for _, sandbox_dir in interpreter_binds(interpreter):
        _claim(taken, "python installation", sandbox_dir)
    for mount in mounts:
        if not mount.host_path.exists():
            raise SandboxError(MISSING_MOUNT.format(path=mount.host_path))
        _claim(taken, "Mount.sandbox_path", mount.sandbox_path)
    if result_path is not None:
        check_sandbox_path(result_path, "result_path")
        _claim(taken, "result_path", result_path)


def _check_reachable(interpreter: Interpreter, user: HostUser) -> None:
    """Raise SandboxError naming the first place user is stopped on the way to a bound folder."""
    checks = [("sandbox python", interpreter.executable, host_dir, INTERPRETER_INSTEAD)
              for host_dir, _ in interpreter_binds(interpreter)]
    checks += [("gradehook package", host_dir, host_dir, PACKAGES_INSTEAD)
               for host_dir, _ in shared_packages()]
    for what, path, host_dir, instead in checks:
        denied = denied_on_the_way(host_dir, user)
        if denied is not None:
            blocked, need = denied
            raise SandboxError(UNREACHABLE.format(
                what=what, path=path, user=user.name, uid=user.uid, need=need, blocked=blocked,
                bits="x" if need == SEARCH else "rx", instead=instead))


def _claim(taken: list[tuple[str, str]], what: str, path: str) -> None:
    for _, other in taken:
        if is_within(path, other) or is_within(other, path):
            raise SandboxError(OVERLAP.format(what=what, path=path, other=other))
    taken.append((what, path))
