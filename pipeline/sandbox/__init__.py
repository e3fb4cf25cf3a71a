"""Bubblewrap sandbox for untrusted code: run a program under limits and collect what it returns.

Public interface (imported lazily, so that ``import pipeline.sandbox.values`` inside a sandbox stays
cheap): ``SandboxLimits``, ``Mount``, ``SandboxResult``, ``SandboxError``, ``SandboxStopped``,
``run_sandboxed`` and the in-sandbox paths ``SANDBOX_WORKDIR``, ``SANDBOX_PYTHONPATH`` and
``PYTHON_PLACEHOLDER``. ``run_sandboxed``'s ``stop``, an event another thread sets, kills the
program and raises ``SandboxStopped`` (a grading abandoned while its runs go on in threads).

What the program sees
    * ``/sandbox/work`` (``SANDBOX_WORKDIR``): its working directory and ``HOME``. It starts as a
      copy of the host ``workdir`` (files, directories, symlinks as links; nothing on the host is
      followed) on a tmpfs of ``workdir_size_mb`` that also holds ``/tmp`` and ``/dev/shm``
      (both are symlinks into ``/sandbox``). Changes stay in the sandbox and vanish with it: the
      host ``workdir`` is never written, so files the program makes never reach the host and
      cannot plant links or set-uid files there. Hand results back through the result channel.
      Filling the tmpfs (blocks or inodes) stops the run with ``killed_reason == "disk"``.
    * Read-only: ``/usr`` and the ``/bin``, ``/sbin``, ``/lib*`` links, a minimal ``/etc``
      (loader cache, time zone, fonts, and generated ``passwd``, ``group``, ``hosts``: no
      ``shadow``, no host users), the interpreter's installation at its host paths, the ``mounts``
      (copies made for the run when this process is root, see below), and the gradehook packages
      ``pipeline/sandbox`` and ``pipeline/grading`` under ``/opt/gradehook/lib``
      (``SANDBOX_PYTHONPATH``, which is ``PYTHONPATH``). Nothing else of the host: not the
      repository, the configuration, the database or any token.
    * ``/proc`` of its own pid namespace, with ``/proc/sys``, ``/proc/sysrq-trigger``,
      ``/proc/irq`` and ``/proc/bus`` read-only; ``/dev`` with null, zero, full, random and
      urandom.
    * Own user (uid/gid 65534, no capabilities, no new privileges, no further user namespaces),
      pid, network (loopback only, nothing reachable), ipc and uts namespaces; a new session.
      On the host it is never root (see "The host user").
    * ``/proc/1/cmdline`` (bwrap's) shows none of bwrap's options, only the rlimits and the
      program's command: bwrap reads its options from a descriptor.
    * ``/proc/self/mountinfo`` names, for each folder shown read-only, where it lies on the host
      (the interpreter's installation, the gradehook packages, the mounts or their copies), and
      the file systems they lie on (device, options), as the kernel shows any bind mount:
      copying them into each sandbox instead would cost every run their size, and its imports
      their cached bytecode. The result channel is no mount: no folder of it is named there.
    * The environment is exactly ``PATH`` (the interpreter's bin directory first), ``HOME``,
      ``LANG=C.UTF-8``, ``PYTHONPATH``, ``PYTHONHASHSEED=0``, ``PYTHONDONTWRITEBYTECODE=1``,
      ``MPLBACKEND=Agg``, ``MPLCONFIGDIR``, ``XDG_CACHE_HOME``, ``XDG_CONFIG_HOME`` and ``TMPDIR``
      (all under ``/tmp``), one thread for OpenBLAS/OpenMP/MKL (threads count as processes), plus
      ``extra_env``.

``argv[0] == "python"`` (``PYTHON_PLACEHOLDER``) stands for the interpreter: ``python`` if given
(an absolute path, e.g. a virtualenv's ``bin/python``), else this process's ``sys.executable``.
It is started by its file name from its bin directory, the first on ``PATH`` (an ``extra_env``
``PATH`` replaces that). Any other ``argv[0]`` is looked up on the sandbox's ``PATH``.

Limits and ``killed_reason``
    * Wall clock (``timeout_seconds``, 0 = ``HARD_TIMEOUT_SECONDS``, counted from the moment the
      program is released): the whole tree is killed; ``"timeout"``, ``timed_out``. With
      cgroups the limit runs on by the time the run's tasks waited, ready to run, for a CPU, by
      at most its own length (``pipeline.sandbox.cpu_wait``). Exceeding ``cpu_seconds``
      (SIGXCPU) is reported the same way.
    * stdout + stderr beyond ``max_output_bytes`` (shared cap; pipes are read incrementally):
      the tree is killed, ``"output"``, ``output_truncated``; ``stdout``/``stderr`` keep the bytes
      up to the cap.
    * With writable cgroup v1 memory and pids controllers (a root worker): memory is capped at
      ``memory_mb`` (tmpfs pages count too) and an OOM kill stops the run with ``"memory"``;
      processes and threads are capped at ``max_processes`` and the first refused fork stops the
      run with ``"processes"``. Without them (logged once): ``RLIMIT_AS`` and ``RLIMIT_NPROC``
      (per sandbox, since each has its own user namespace), which make allocations and forks
      fail inside the program instead (``MemoryError``, ``BlockingIOError``).
    * With a writable cgroup v1 cpu controller too: a cpu cgroup per run, so that a run weighs
      as one on the CPU whatever the number of its processes or of the sessions they start.
    * ``RLIMIT_FSIZE`` (``max_file_size_mb``: writes beyond fail with ``EFBIG``),
      ``RLIMIT_NOFILE`` (``max_open_files``: ``EMFILE``), ``RLIMIT_CORE`` 0.
    * The rlimits are set inside the sandbox by util-linux ``prlimit``, which then starts the
      program: a root worker without ``CAP_SYS_RESOURCE`` (as in most containers) may not set
      them on another user's process.
    * Killing is done by killing bwrap, whose init (pid 1 of the sandbox's pid namespace) dies
      with it (``--die-with-parent``), and the kernel kills every process in that namespace:
      background, ``setsid`` and double-forked processes included. The same happens when the
      program itself exits. With cgroups, leftovers are also killed through the cgroup.
    * A worker killed while it starts a sandbox, before bwrap and the sandbox's init have
      asked to die with it, leaves no program running: the program waits behind a start guard
      (``/bin/sh`` in the sandbox) for a word the worker writes once the sandbox is ready, and
      never starts on end of file.

Exit status: ``exit_code`` is the program's exit status; a program killed by a signal has
``exit_code None`` and ``signal`` set. bwrap reports a signal N as status 128+N, and so does
``--json-status-fd``; the kernel keeps the program's own wait status for a pidfd the worker opens
on it before it starts (Linux 6.15 and later), which tells ``os._exit(128 + N)`` from signal N.
On an older kernel such an exit is reported as killed by signal N (N = SIGXCPU: a timeout).

The result channel
    If ``result_path`` (an absolute path inside the sandbox outside the reserved directories, e.g.
    ``/run/gradehook/result``) is given, a link there leads to ``/sandbox/result``, a FIFO the host
    makes in the sandbox's tmpfs before the program starts (no mount: the mounts a program reads in
    ``/proc/self/mountinfo`` name no folder of the host for it). Everything any process in the
    sandbox writes into it, in any number of opens, is collected in order into ``result_data``
    (``b""`` if nothing was written; ``None`` without ``result_path``). It is read while the program
    runs, so what was written survives ``sys.exit``, ``os._exit``, crashes, signals and the kill at
    a limit; stdout and stderr never reach it. More than ``max_result_bytes`` stops the run with
    ``"output"`` and ``result_truncated``. What cannot be protected: code running in the same
    process as the writer (student code ``exec``-ed by the runner) can also open the path or use the
    runner's descriptor, so it can add to or spoil the channel; a runner should write one complete
    JSON document with ``os.write`` right before exiting and the engine should treat anything
    unparsable as a crash. Forged values only ever describe the student's own run: the reference
    runs in another sandbox and verdicts are computed outside.

Errors: a bad argument, a missing interpreter or one older than Python 3.9
(``pipeline.sandbox.interpreter.MINIMUM_VERSION``), bwrap, prlimit or (for a root worker) setpriv,
an interpreter or package the host user cannot reach, a work directory, mount or temporary folder
that lies in a folder every sandbox shows (``/usr``, the interpreter's installation: every program
could read it and what lies beside it, other runs included), or a sandbox that cannot be built
raises ``SandboxError``; it is never a verdict on the program.

A seccomp filter (x86_64) refuses ptrace, mount, unshare, setns, keyrings, BPF, perf, io_uring and
similar calls with EPERM; other architectures run without it (logged).

The host user
    bwrap runs as this process's user, unless that is root (as it must be for the cgroup v1 limits):
    then bwrap, and so the sandbox, runs as ``user`` (default ``nobody``, the ``[sandbox] user``
    setting) with its primary group and no other (util-linux ``setpriv`` switches to it before
    starting bwrap), and the root worker keeps the cgroups, the copy of the work directory and the
    result channel. The sandbox user is what the host sees: it cannot change kernel settings or
    device files, nor read root-only files. It must be able to read the interpreter's installation
    and the gradehook packages (every directory on their way searchable); if not, ``SandboxError``
    names the directory it is stopped at. It cannot reach the worker's own folders, so each mount is
    shown as a read-only copy made for the run (root's, readable by the sandbox user's group only);
    the result FIFO and the work directory's copy are created as the sandbox user. A user and group
    of its own that nothing else runs as are best: any other process of that user or group could
    read a run's mount copies while the run lasts. Prefer a dedicated unprivileged worker user in
    production. The copies lie in folders of the temporary folder that the process running the
    sandbox marks in use (``pipeline.sandbox.scratch``): should it be killed, the worker host's next
    housekeeping sweep removes them.
"""

import importlib

_EXPORTS = {
    "SandboxLimits": "pipeline.sandbox.model",
    "SandboxResult": "pipeline.sandbox.model",
    "SandboxError": "pipeline.sandbox.model",
    "SandboxStopped": "pipeline.sandbox.model",
    "Mount": "pipeline.sandbox.model",
    "HARD_TIMEOUT_SECONDS": "pipeline.sandbox.model",
    "run_sandboxed": "pipeline.sandbox.run",
    "SANDBOX_WORKDIR": "pipeline.sandbox.layout",
    "SANDBOX_PYTHONPATH": "pipeline.sandbox.layout",
    "PYTHON_PLACEHOLDER": "pipeline.sandbox.layout",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import a public name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
