"""What the sandboxed program sees: file system, environment and namespaces, as bwrap options."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.sandbox.interpreter import Interpreter, is_within
from pipeline.sandbox.model import Mount, SandboxError, check_sandbox_path
from pipeline.sandbox.seccomp import seccomp_program

SANDBOX_UID = 65534
SANDBOX_GID = 65534
SANDBOX_HOSTNAME = "sandbox"
SANDBOX_ROOT = "/sandbox"
SANDBOX_WORKDIR = "/sandbox/work"
SANDBOX_TMPDIR = "/sandbox/tmp"
SANDBOX_SHMDIR = "/sandbox/shm"
SANDBOX_PYTHONPATH = "/opt/gradehook/lib"
# Where an interpreter directory is shown when its own path is one the sandbox hides.
RELOCATED_ROOT = "/opt/gradehook/python"
SHARED_SUBPACKAGES = ("sandbox", "grading")
PYTHON_PLACEHOLDER = "python"

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
HOST_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
                  "alternatives", "fonts")
DEVICES = ("null", "zero", "full", "random", "urandom")
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


@dataclass
class Layout:
    """bwrap options plus the descriptors they name, for one run."""

    options: list[str] = field(default_factory=list)
    pass_fds: list[int] = field(default_factory=list)

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

    def close(self) -> None:
        """Close the descriptors that were handed to bwrap."""
        for fd in self.pass_fds:
            os.close(fd)
        self.pass_fds.clear()


def build_layout(interpreter: Interpreter, mounts: Sequence[Mount], workdir_size_mb: int,
                 result: tuple[str, str] | None, extra_env: Mapping[str, str]) -> Layout:
    """Return the bwrap options for a run; result is (host FIFO, sandbox path) or None."""
    mounts = tuple(mounts)
    _check_paths(interpreter, mounts, result)
    layout = Layout()
    layout.add("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
               "--unshare-uts", "--unshare-cgroup-try", "--disable-userns",
               "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
               "--hostname", SANDBOX_HOSTNAME, "--die-with-parent", "--new-session",
               "--cap-drop", "ALL", "--clearenv")
    for name, value in environment(interpreter, extra_env).items():
        layout.add("--setenv", name, value)
    layout.add(*_system_options())
    for name, content in GENERATED_ETC.items():
        layout.add_data("--ro-bind-data", content.encode(), f"/etc/{name}")
    for host_dir, sandbox_dir in interpreter_binds(interpreter):
        layout.add("--ro-bind", host_dir, sandbox_dir)
    for host_dir, sandbox_dir in shared_packages():
        layout.add("--ro-bind", host_dir, sandbox_dir)
    for mount in mounts:
        layout.add("--ro-bind", str(mount.host_path), mount.sandbox_path)
    layout.add("--proc", "/proc", "--dir", "/dev")
    for device in DEVICES:
        layout.add("--dev-bind", f"/dev/{device}", f"/dev/{device}")
    layout.add("--symlink", "/proc/self/fd", "/dev/fd",
               "--size", str(workdir_size_mb * 1024 * 1024), "--tmpfs", SANDBOX_ROOT,
               "--dir", SANDBOX_WORKDIR, "--dir", SANDBOX_TMPDIR, "--dir", SANDBOX_SHMDIR,
               "--symlink", SANDBOX_TMPDIR, "/tmp", "--symlink", SANDBOX_SHMDIR, "/dev/shm")
    for number, stream in enumerate(("stdin", "stdout", "stderr")):
        layout.add("--symlink", f"/proc/self/fd/{number}", f"/dev/{stream}")
    if result is not None:
        layout.add("--bind", *result)
    layout.add("--remount-ro", "/", "--chdir", SANDBOX_WORKDIR)
    program = seccomp_program()
    if program is not None:
        layout.add_data("--seccomp", program)
    return layout


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
                 result: tuple[str, str] | None) -> None:
    taken = [("reserved path", p) for p in RESERVED_PATHS]
    for _, sandbox_dir in interpreter_binds(interpreter):
        _claim(taken, "python installation", sandbox_dir)
    for mount in mounts:
        if not mount.host_path.exists():
            raise SandboxError(MISSING_MOUNT.format(path=mount.host_path))
        _claim(taken, "Mount.sandbox_path", mount.sandbox_path)
    if result is not None:
        check_sandbox_path(result[1], "result_path")
        _claim(taken, "result_path", result[1])


def _claim(taken: list[tuple[str, str]], what: str, path: str) -> None:
    for _, other in taken:
        if is_within(path, other) or is_within(other, path):
            raise SandboxError(OVERLAP.format(what=what, path=path, other=other))
    taken.append((what, path))
