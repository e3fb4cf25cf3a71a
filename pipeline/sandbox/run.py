"""Run one untrusted program in a bubblewrap sandbox under limits, and report how it ended."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import resource
import selectors
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.sandbox.capture import Budget, Collector
from pipeline.sandbox.cgroup import RunCgroup
from pipeline.sandbox.channel import ResultChannel
from pipeline.sandbox.cpu_wait import StretchedLimit
from pipeline.sandbox.exit_status import children, wait_status
from pipeline.sandbox.hostuser import DEFAULT_SANDBOX_USER, HostUser, sandbox_user
from pipeline.sandbox.interpreter import resolve_interpreter
from pipeline.sandbox.layout import PYTHON_PLACEHOLDER, SANDBOX_ROOT, SANDBOX_WORKDIR, \
    build_layout, check_unshown, sandbox_executable
from pipeline.sandbox.model import KILLED_DISK, KILLED_MEMORY, KILLED_OUTPUT, \
    KILLED_PROCESSES, KILLED_TIMEOUT, MB, Mount, SandboxError, SandboxLimits, SandboxResult, \
    SandboxStopped
from pipeline.sandbox.workdir import copy_tree

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
READY_DEADLINE_SECONDS = 10.0
READY_POLL_SECONDS = 0.0005
DRAIN_SECONDS = 0.5
NPROC_BACKSTOP_FACTOR = 2
BWRAP_MISSING = "bubblewrap (bwrap) is not installed or not on PATH"
UTIL_LINUX_MISSING = "{program} (util-linux) is not installed in {path}"
# Where util-linux is found: prlimit, which sets the program's resource limits inside the
# sandbox (these directories are shown there), and setpriv, which a root worker starts bwrap
# through as the sandbox user.
UTIL_LINUX_PATH = "/usr/local/bin:/usr/bin:/bin"
BWRAP_FAILED = "the sandbox could not be set up: {detail}"
# The program's first line of input, which the start guard waits for; this process writes it
# last when starting a sandbox. bwrap asks to die with its parent only after it has started,
# the sandbox's init only after its block ends, and a block ends at end of file too: a worker
# killed in between would leave the program running unsupervised. Killed before this word,
# the guard reads end of file and the program never starts. `read` takes the word's bytes one
# at a time: the program's own input follows untouched.
START_WORD = b"go\n"
START_GUARD = ("/bin/sh", "-c", 'read -r word && [ "$word" = go ] && exec "$@"', "start-guard")
LIMIT_ABOVE_HARD = ("the sandbox's {name} limit {wanted} is above this worker's hard limit "
                    "{hard}: lower [sandbox] {setting} or raise the worker's limit")
# prlimit's name of each limit the sandbox sets: the resource, and the setting it comes from.
RLIMITS = {"cpu": (resource.RLIMIT_CPU, "cpu_seconds"),
           "fsize": (resource.RLIMIT_FSIZE, "max_file_size_mb"),
           "nofile": (resource.RLIMIT_NOFILE, "max_open_files"),
           "core": (resource.RLIMIT_CORE, "(none: core files are off)"),
           "nproc": (resource.RLIMIT_NPROC, "max_processes"),
           "as": (resource.RLIMIT_AS, "memory_mb")}
BAD_ARGV = "argv: must be a non-empty sequence of strings without NUL, got {argv!r}"
BAD_WORKDIR = "workdir {path}: not an existing directory"
BAD_STDIN = "stdin: must be bytes"
STOPPED = "the sandbox was stopped before its program ended"


def run_sandboxed(argv: Sequence[str], *, workdir: Path, mounts: Sequence[Mount] = (),
                  stdin: bytes = b"", limits: SandboxLimits, python: str | None = None,
                  result_path: str | None = None, extra_env: Mapping[str, str] | None = None,
                  user: str = DEFAULT_SANDBOX_USER,
                  stop: threading.Event | None = None) -> SandboxResult:
    """Run argv in a fresh sandbox on a copy of workdir; see the package docstring.

    Once `stop` is set (by another thread), the program is killed and SandboxStopped raised.
    """
    if isinstance(argv, (str, bytes)) or not argv or \
            not all(isinstance(a, str) and "\0" not in a for a in argv):
        raise SandboxError(BAD_ARGV.format(argv=argv))
    if not isinstance(stdin, (bytes, bytearray)):
        raise SandboxError(BAD_STDIN)
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise SandboxError(BAD_WORKDIR.format(path=workdir))
    interpreter = resolve_interpreter(python)
    mounts = tuple(mounts)
    check_unshown(interpreter, workdir, mounts)
    host_user = sandbox_user(user)
    # By its file name, found first on PATH: the command line shows no host path.
    command = [os.path.basename(sandbox_executable(interpreter))
               if argv[0] == PYTHON_PLACEHOLDER else argv[0], *argv[1:]]
    with contextlib.ExitStack() as cleanup:
        layout = build_layout(interpreter, mounts, limits.workdir_size_mb, result_path,
                              extra_env or {}, host_user)
        cleanup.callback(layout.close)
        try:
            cgroup = RunCgroup.create(limits.memory_mb * MB, limits.max_processes)
        except OSError as exc:
            raise SandboxError(BWRAP_FAILED.format(detail=f"cgroup: {exc}")) from None
        if cgroup is not None:
            cleanup.callback(cgroup.remove)
        sandbox = _Sandbox(limits, cgroup, result_path is not None, host_user, stop)
        cleanup.callback(sandbox.close)
        sandbox.start(layout, command, workdir)
        return sandbox.supervise(bytes(stdin))


@functools.lru_cache(maxsize=1)
def _bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError(BWRAP_MISSING)
    return path


def _options_file(options: list[str]) -> int:
    """Return a descriptor of a memory file holding options NUL-separated, for bwrap --args."""
    fd = os.memfd_create("bwrap-options", os.MFD_CLOEXEC)
    os.write(fd, b"".join(os.fsencode(option) + b"\0" for option in options))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _as_user(user: HostUser | None) -> list[str]:
    """Return the command prefix that starts a program as user, with no supplementary groups.

    util-linux setpriv switches, not Popen's `user`/`group`: those make Python fork the whole
    worker instead of using vfork: about 12 ms of CPU more per sandbox start from a 150 MB process.
    """
    if user is None:
        return []
    return [_util_linux("setpriv"), f"--reuid={user.uid}", f"--regid={user.gid}",
            "--clear-groups", "--inh-caps=-all", "--"]


@functools.lru_cache(maxsize=None)
def _util_linux(program: str) -> str:
    """Return the path of a util-linux program in UTIL_LINUX_PATH, or raise SandboxError."""
    path = shutil.which(program, path=UTIL_LINUX_PATH)
    if path is None:
        raise SandboxError(UTIL_LINUX_MISSING.format(program=program, path=UTIL_LINUX_PATH))
    return path


def _limited(command: list[str], limits: SandboxLimits, with_cgroup: bool) -> list[str]:
    """Return command started through prlimit with the run's resource limits.

    The sandbox sets them itself: a root worker may not set them on a process of another user
    without CAP_SYS_RESOURCE, which containers often drop.
    """
    rlimits = {"cpu": (limits.cpu_seconds, limits.cpu_seconds + 1),
               "fsize": (limits.max_file_size_mb * MB,) * 2,
               "nofile": (limits.max_open_files,) * 2,
               "core": (0, 0)}
    if with_cgroup:
        rlimits["nproc"] = (limits.max_processes * NPROC_BACKSTOP_FACTOR,) * 2
    else:
        rlimits["as"] = (limits.memory_mb * MB,) * 2
        rlimits["nproc"] = (limits.max_processes,) * 2
    for name, (_, hard) in rlimits.items():
        _check_within_hard_limit(name, hard)
    return [_util_linux("prlimit"),
            *(f"--{name}={soft}:{hard}" for name, (soft, hard) in rlimits.items()),
            "--", *command]


def _check_within_hard_limit(name: str, wanted: int) -> None:
    """Refuse a limit above this process's hard limit: the sandbox inherits it and can only
    lower it, so its prlimit would fail and the program, never run, look like the student's
    crash."""
    kind, setting = RLIMITS[name]
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY and wanted > hard:
        raise SandboxError(LIMIT_ABOVE_HARD.format(name=name, wanted=wanted, hard=hard,
                                                   setting=setting))


class _Sandbox:
    """One bwrap process tree from start to reaped, with its descriptors."""

    def __init__(self, limits: SandboxLimits, cgroup: RunCgroup | None,
                 with_channel: bool, user: HostUser | None,
                 stop: threading.Event | None) -> None:
        self.limits = limits
        self.cgroup = cgroup
        self.with_channel = with_channel
        self.channel: ResultChannel | None = None
        self.user = user
        self.stop = stop
        self.process: subprocess.Popen | None = None
        self.pidfd = -1
        self.program_fd = -1
        self.tmpfs_fd = -1
        self.reason: str | None = None
        # When the program was let run: its own clock can count no more time than has passed
        # since (the duration reported, which a result's entry_seconds must not exceed).
        self.released_at = 0.0

    def start(self, layout, command: list[str], workdir: Path) -> None:
        """Start bwrap held at its block descriptor, prepare the sandbox, then let it run."""
        launcher = [*_as_user(self.user), _bwrap()]
        program = [*START_GUARD, *_limited(command, self.limits, self.cgroup is not None)]
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        # Options go through a descriptor, so the sandbox's /proc/1/cmdline shows no host path.
        options_fd = _options_file([*layout.options, "--info-fd", str(info_write),
                                    "--block-fd", str(block_read)])
        try:
            self.process = subprocess.Popen(
                [*launcher, "--args", str(options_fd), "--", *program],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(*layout.pass_fds, info_write, block_read, options_fd), env={},
                start_new_session=True)
        except OSError as exc:
            for fd in (info_read, info_write, block_read, block_write, options_fd):
                os.close(fd)
            raise SandboxError(BWRAP_FAILED.format(detail=exc)) from None
        for fd in (info_write, block_read, options_fd):
            os.close(fd)
        layout.close_descriptors()
        self.pidfd = os.pidfd_open(self.process.pid)
        try:
            init_pid = self._read_child_pid(info_read)
            self._prepare(init_pid, workdir)
        except BaseException:
            os.close(block_write)
            self.kill()
            raise
        finally:
            os.close(info_read)
        # The sandbox's init asks to die with bwrap once the block ends, and bwrap asked to die
        # with this process before it wrote the child's pid. Should this process die before the
        # start word, its end of file ends the block and the guard ends the program unstarted.
        os.write(block_write, b"go")
        os.close(block_write)
        self._watch_program(init_pid)
        self.released_at = time.monotonic()
        os.write(self.process.stdin.fileno(), START_WORD)

    def _read_child_pid(self, info_read: int) -> int:
        data = b""
        while chunk := os.read(info_read, 4096):
            data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            raise SandboxError(BWRAP_FAILED.format(detail=self._bwrap_error())) from None

    def _bwrap_error(self) -> str:
        self.kill()
        self.process.wait()
        return self.process.stderr.read(4096).decode(errors="replace").strip() or \
            f"bwrap exited with {self.process.returncode}"

    def _prepare(self, init_pid: int, workdir: Path) -> None:
        root = f"/proc/{init_pid}/root"
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as helper:
            # Moving a process into a v1 memory cgroup takes milliseconds: overlap it with
            # bwrap building the sandbox and with copying the work directory.
            attached = helper.submit(self.cgroup.attach, init_pid) if self.cgroup else None
            self._wait_until_ready(root + SANDBOX_WORKDIR)
            self.tmpfs_fd = os.open(root + SANDBOX_ROOT,
                                    os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if self.with_channel:
                try:
                    self.channel = ResultChannel(root, self.user)
                except OSError as exc:
                    raise SandboxError(BWRAP_FAILED.format(
                        detail=f"result channel: {exc}")) from None
            copy_tree(str(workdir), root + SANDBOX_WORKDIR, self.limits.workdir_size_mb,
                      self.user)
            if attached is not None:
                attached.result()

    def _watch_program(self, init_pid: int) -> None:
        """Open a pidfd on the program, the sandbox init's one child once the block ends, while
        the start guard holds it: the kernel then keeps its wait status (pipeline.sandbox
        .exit_status). Without a listing of children, the status is bwrap's alone."""
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while not (found := children(init_pid)):
            if found is None or self.process.poll() is not None or time.monotonic() > deadline:
                return
            time.sleep(READY_POLL_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            self.program_fd = os.pidfd_open(found[0])

    def _wait_until_ready(self, workdir_inside: str) -> None:
        """Wait until bwrap has built the sandbox's root and blocks before running the program."""
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while not os.path.isdir(workdir_inside):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SandboxError(BWRAP_FAILED.format(detail=self._bwrap_error()))
            time.sleep(READY_POLL_SECONDS)

    def supervise(self, stdin: bytes) -> SandboxResult:
        """Feed stdin, collect output and the result channel, and enforce the limits."""
        started = self.released_at
        deadline = started + self.limits.effective_timeout
        # Without cgroups the sandbox's tasks are not listed: its limit is not stretched.
        stretched = None if self.cgroup is None else \
            StretchedLimit(self.limits.effective_timeout, self.cgroup.tasks, started)
        output_budget = Budget(self.limits.max_output_bytes)
        stdout = Collector(self.process.stdout.fileno(), output_budget)
        stderr = Collector(self.process.stderr.fileno(), output_budget)
        result_budget = Budget(self.limits.max_result_bytes)
        result = Collector(self.channel.read_fd, result_budget) if self.channel else None
        readers = [c for c in (stdout, stderr, result) if c is not None]
        for collector in readers:
            os.set_blocking(collector.fd, False)
        selector = selectors.DefaultSelector()
        for collector in readers:
            selector.register(collector.fd, selectors.EVENT_READ, collector)
        selector.register(self.pidfd, selectors.EVENT_READ, None)
        pending_stdin = memoryview(stdin)
        stdin_fd = self.process.stdin.fileno()
        if pending_stdin:
            os.set_blocking(stdin_fd, False)
            selector.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
        else:
            self.process.stdin.close()
        exited = False
        while not exited:
            wait = min(deadline - time.monotonic(), POLL_SECONDS)
            for key, _ in selector.select(max(wait, 0)):
                if key.data is None:
                    exited = True
                elif key.data == "stdin":
                    pending_stdin = self._feed(selector, pending_stdin)
                else:
                    key.data.read_available()
                    if key.data.closed:
                        selector.unregister(key.fd)
            if self.stop is not None and self.stop.is_set():
                selector.close()
                raise SandboxStopped(STOPPED)  # run_sandboxed's cleanup kills the tree
            if output_budget.exceeded or result_budget.exceeded:
                self._stop(KILLED_OUTPUT)
            elif time.monotonic() >= deadline:
                if stretched is not None:
                    deadline = stretched.deadline()
                if time.monotonic() >= deadline:
                    self._stop(KILLED_TIMEOUT)
            else:
                self._check_usage()
        duration = time.monotonic() - started
        selector.close()
        self._drain(stdout, stderr)
        if result is not None:
            result.read_available()
        self._check_usage()
        return self._result(stdout, stderr, result, duration)

    def _feed(self, selector: selectors.BaseSelector, pending: memoryview) -> memoryview:
        stdin_fd = self.process.stdin.fileno()
        try:
            written = os.write(stdin_fd, pending)
        except BlockingIOError:
            return pending
        except BrokenPipeError:
            written = len(pending)
        pending = pending[written:]
        if not pending:
            selector.unregister(stdin_fd)
            self.process.stdin.close()
        return pending

    def _check_usage(self) -> None:
        if self.cgroup is not None:
            if self.cgroup.oom_kills():
                self._stop(KILLED_MEMORY)
            elif self.cgroup.refused_forks():
                self._stop(KILLED_PROCESSES)
        if self.tmpfs_fd >= 0:
            usage = os.fstatvfs(self.tmpfs_fd)
            if usage.f_bavail == 0 or usage.f_favail == 0:
                self._stop(KILLED_DISK)

    def _stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.kill()

    def kill(self) -> None:
        """Kill bwrap's whole session; its init and so the sandbox's pid namespace die with it."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def _drain(self, *collectors: Collector) -> None:
        """Read what is left once bwrap has ended, until end-of-file or a short deadline."""
        self.process.wait()
        deadline = time.monotonic() + DRAIN_SECONDS
        open_collectors = [c for c in collectors if not c.closed]
        with selectors.DefaultSelector() as selector:
            for collector in open_collectors:
                selector.register(collector.fd, selectors.EVENT_READ, collector)
            while open_collectors and time.monotonic() < deadline:
                for key, _ in selector.select(deadline - time.monotonic()):
                    key.data.read_available()
                    if key.data.closed or key.data.budget.exceeded:
                        selector.unregister(key.fd)
                        open_collectors.remove(key.data)
        if any(c.budget.exceeded for c in collectors) and self.reason is None:
            self.reason = KILLED_OUTPUT

    def _result(self, stdout: Collector, stderr: Collector, result: Collector | None,
                duration: float) -> SandboxResult:
        exit_code, signal_number = self._exit_status()
        if signal_number == signal.SIGXCPU and self.reason is None:
            self.reason = KILLED_TIMEOUT
        if result is not None and result.budget.exceeded and self.reason is None:
            self.reason = KILLED_OUTPUT
        return SandboxResult(
            exit_code=exit_code, signal=signal_number,
            timed_out=self.reason == KILLED_TIMEOUT, killed_reason=self.reason,
            stdout=stdout.data(), stderr=stderr.data(),
            output_truncated=stdout.budget.exceeded, duration_seconds=duration,
            result_data=result.data() if result is not None else None,
            result_truncated=result is not None and result.budget.exceeded)

    def _exit_status(self) -> tuple[int | None, int | None]:
        """Return the program's exit code, or the signal that killed it: the kernel's word when
        it kept the program's wait status, else bwrap's (which gives a signal N as 128+N)."""
        status = wait_status(self.program_fd) if self.program_fd >= 0 else None
        if status is not None:
            if os.WIFSIGNALED(status):
                return None, os.WTERMSIG(status)
            return os.WEXITSTATUS(status), None
        code = self.process.returncode
        if code < 0:
            return None, -code
        if 128 < code < 128 + signal.NSIG:
            return None, code - 128
        return code, None

    def close(self) -> None:
        """Make sure the process tree is gone and release every descriptor."""
        if self.process is not None:
            self.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
                with contextlib.suppress(OSError):
                    stream.close()
        for fd in (self.pidfd, self.program_fd, self.tmpfs_fd):
            if fd >= 0:
                os.close(fd)
        self.pidfd = self.program_fd = self.tmpfs_fd = -1
        if self.channel is not None:
            self.channel.close()
            self.channel = None
