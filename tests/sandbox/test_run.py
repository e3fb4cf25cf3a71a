"""run_sandboxed as the grading engine uses it: inputs, outputs, channel, limits and bad calls."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import venv as venv_module
from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
from pipeline.sandbox import HARD_TIMEOUT_SECONDS, SANDBOX_PYTHONPATH, SANDBOX_WORKDIR, Mount, \
    SandboxError, SandboxLimits, SandboxStopped, run_sandboxed
from pipeline.sandbox import cgroup as cgroup_module
from pipeline.sandbox import layout as layout_module
from pipeline.sandbox import run as run_module
from pipeline.sandbox.interpreter import resolve_interpreter
from pipeline.sandbox.layout import sandbox_executable
from tests.conftest import STOP_LATENCY_SECONDS
from tests.infra.processes import wait_for
from tests.infra.sandbox_groups import groups_made
from tests.sandbox.conftest import KEEPS_EXIT_STATUS, RESULT_PATH, RUN_GROUP_NAME, SMALL_LIMITS, \
    Runner, host_processes_with, programs_with

AS_ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0,
                                  reason="only a root worker starts bwrap as another user")


def test_output_and_exit_code_are_reported(run: Runner) -> None:
    result = run("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(4)\n")
    assert (result.exit_code, result.signal, result.stdout, result.stderr) == \
        (4, None, b"out\n", b"err\n")
    assert (result.timed_out, result.killed_reason, result.output_truncated) == \
        (False, None, False)
    assert result.duration_seconds > 0  # measured


def test_the_duration_covers_all_the_program_ran_however_late_the_worker_looks(
        run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A result's entry_seconds may be no longer than the duration: a worker held up (a busy
    host) between letting the program run and timing it must not make the program look
    faster than its own clock, which would read as a forged result."""
    start = run_module._Sandbox.start

    def start_then_held_up(sandbox, *args) -> None:
        start(sandbox, *args)
        # The worker resumes only once the program has run to its end.
        assert select.select([sandbox.pidfd], [], [], 30)[0], "the program never ended"
    monkeypatch.setattr(run_module._Sandbox, "start", start_then_held_up)

    result = run("""
import time
started = time.perf_counter()
time.sleep(0.2)
print(time.perf_counter() - started)
""")

    assert result.exit_code == 0, result
    assert result.duration_seconds >= float(result.stdout)


def test_death_by_signal_is_reported_as_signal(run: Runner) -> None:
    result = run("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    assert (result.exit_code, result.signal, result.killed_reason) == \
        (None, signal.SIGTERM, None)


@KEEPS_EXIT_STATUS
@pytest.mark.parametrize("code", [129, 137, 152, 192, 255])
def test_an_exit_code_above_128_is_an_exit_code_not_a_signal(run: Runner, code: int) -> None:
    result = run(f"import os\nos._exit({code})\n")
    assert (result.exit_code, result.signal, result.timed_out, result.killed_reason) == \
        (code, None, False, None)


@KEEPS_EXIT_STATUS
def test_a_signal_the_program_sends_itself_is_a_signal(run: Runner) -> None:
    result = run("import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)\n")
    assert (result.exit_code, result.signal) == (None, signal.SIGXCPU)


@pytest.mark.parametrize("source, ended", [
    ("import sys\nsys.exit(4)\n", (4, None)),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", (None, signal.SIGTERM)),
    ("import os\nos._exit(152)\n", (None, signal.SIGXCPU)),
])
def test_without_the_kernels_wait_status_bwraps_exit_status_is_decoded(
        run: Runner, monkeypatch: pytest.MonkeyPatch, source: str, ended: tuple) -> None:
    monkeypatch.setattr(run_module, "children", lambda pid: None)  # no listing of children
    result = run(source)
    assert (result.exit_code, result.signal) == ended


def test_large_stdin_is_fed_completely(run: Runner) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    result = run("import hashlib, sys\nprint(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
                 stdin=data)
    assert result.stdout.decode().strip() == hashlib.sha256(data).hexdigest()


def test_no_stdin_means_end_of_file_at_once(run: Runner) -> None:
    result = run("try:\n    input()\nexcept EOFError:\n    print('eof')\n")
    assert result.stdout == b"eof\n"


def test_workdir_is_copied_in_and_the_host_copy_never_changes(run: Runner,
                                                              workdir: Path) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "input.txt").write_text("41")
    (workdir / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (workdir / "tool.sh").chmod(0o755)
    (workdir / "link").symlink_to("data/input.txt")
    result = run(f"""
import os, subprocess
assert os.getcwd() == {SANDBOX_WORKDIR!r} == os.environ["HOME"]
print(open("link").read(), subprocess.run(["./tool.sh"], capture_output=True).stdout)
os.remove("data/input.txt")
open("new.txt", "w").write("x")
""")
    assert (result.exit_code, result.stdout) == (0, b"41 b'tool\\n'\n"), result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["data", "link", "prog.py", "tool.sh"]
    assert (workdir / "data" / "input.txt").read_text() == "41"


def test_workdir_larger_than_its_cap_is_refused(run: Runner, workdir: Path) -> None:
    (workdir / "big.bin").write_bytes(b"x" * (SMALL_LIMITS.workdir_size_mb + 1) * 1024 * 1024)
    with pytest.raises(SandboxError, match="does not fit"):
        run("print(1)")


def test_mounts_are_visible_read_only(run: Runner, tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "helper.py").write_text("VALUE = 7\n")
    result = run("""
import errno, sys
sys.path.append("/mnt/tests")
import helper
try:
    open("/mnt/tests/evil.py", "w")
except OSError as exc:
    print(helper.VALUE, exc.errno == errno.EROFS)
""", mounts=(Mount(tests, "/mnt/tests"),))
    assert result.stdout == b"7 True\n", result.stderr


def test_environment_is_exactly_the_documented_one(run: Runner) -> None:
    result = run("import json, os\nprint(json.dumps(dict(os.environ)))\n")
    environ = json.loads(result.stdout)
    python_bin = os.path.dirname(sandbox_executable(resolve_interpreter(None)))
    assert environ == {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": SANDBOX_WORKDIR,
        "PWD": SANDBOX_WORKDIR, "LANG": "C.UTF-8", "PYTHONPATH": SANDBOX_PYTHONPATH,
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib", "XDG_CACHE_HOME": "/tmp/cache",
        "XDG_CONFIG_HOME": "/tmp/config", "TMPDIR": "/tmp", "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_extra_environment_is_added(workdir: Path) -> None:
    result = run_sandboxed(["python", "-c", "import os; print(os.environ['GRADER_SEED'])"],
                           workdir=workdir, limits=SMALL_LIMITS, extra_env={"GRADER_SEED": "1"})
    assert result.stdout == b"1\n"


def test_sandbox_packages_and_the_interpreters_packages_import(run: Runner) -> None:
    result = run("""
import sys
import numpy, pandas
from pipeline.sandbox.values import encode
print(encode(numpy.int64(3))["t"], sys.prefix == sys.base_prefix)
try:
    import pipeline.config
except ImportError:
    print("config hidden")
""")
    venv = sys.prefix != sys.base_prefix
    assert result.stdout == f"npscalar {not venv}\nconfig hidden\n".encode(), result.stderr


def test_commands_other_than_python_are_found_on_path(workdir: Path) -> None:
    result = run_sandboxed(["sh", "-c", "echo $0 in $PWD"], workdir=workdir, limits=SMALL_LIMITS)
    assert result.stdout == f"sh in {SANDBOX_WORKDIR}\n".encode()


def test_result_channel_collects_every_write_in_order(run: Runner) -> None:
    result = run(f"""
for part in ("one", "two"):
    with open({RESULT_PATH!r}, "w") as channel:
        channel.write(part)
import subprocess, sys
subprocess.run([sys.executable, "-c", "open({RESULT_PATH!r}, 'w').write('three')"])
""")
    assert result.result_data == b"onetwothree"


def test_result_data_is_empty_without_writes_and_none_without_channel(run: Runner) -> None:
    assert run("pass").result_data == b""
    assert run("pass", result_path=None).result_data is None


def test_the_result_channel_is_no_mount_naming_a_folder_of_the_host(run: Runner) -> None:
    """Before, the channel was a FIFO of the host's temporary folder bound into the sandbox:
    /proc/self/mountinfo, which any program reads, named its folder there
    (/tmp/gradehook-result-24hjw1wz/result). It lies in the sandbox's own tmpfs now."""
    result = run(f"""
import os
print(open("/proc/self/mountinfo").read(), end="")
descriptor = os.open({RESULT_PATH!r}, os.O_WRONLY)
os.write(descriptor, b"written")
""")
    lines = result.stdout.decode().splitlines()
    mounts = {fields[4]: fields[3] for fields in map(str.split, lines)}  # where: what of its fs
    assert result.result_data == b"written", result
    assert RESULT_PATH not in mounts, mounts[RESULT_PATH]


def test_result_beyond_its_cap_stops_the_run(run: Runner) -> None:
    result = run(f"""
with open({RESULT_PATH!r}, "wb") as channel:
    while True:
        channel.write(b"r" * 65536)
""")
    assert (result.killed_reason, result.result_truncated) == ("output", True)
    assert result.result_data == b"r" * SMALL_LIMITS.max_result_bytes
    assert result.output_truncated is False


def test_output_cap_is_shared_by_stdout_and_stderr(run: Runner) -> None:
    result = run("""
import sys
for _ in range(100):
    sys.stdout.write("o" * 1000)
    sys.stdout.flush()
    sys.stderr.write("e" * 1000)
    sys.stderr.flush()
""")
    assert (result.killed_reason, result.output_truncated) == ("output", True)
    assert len(result.stdout) + len(result.stderr) == SMALL_LIMITS.max_output_bytes
    assert set(result.stdout) == {ord("o")} and set(result.stderr) == {ord("e")}


def test_memory_limit_without_cgroups_is_an_allocation_failure(
        run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup_module, "controller_dirs", lambda: None)
    result = run("""
try:
    hoard = bytearray(512 * 1024 * 1024)
except MemoryError:
    print("refused")
""")
    assert (result.stdout, result.killed_reason) == (b"refused\n", None), result.stderr


def test_no_cgroups_result_fifos_or_mount_copies_are_left_behind(
        run: Runner, workdir: Path, own_temporary_folder: Path) -> None:
    # This process's own: other processes of the host make and remove theirs meanwhile.
    def leftovers() -> set[str]:
        return {p for p in os.listdir(own_temporary_folder)
                if p.startswith(("gradehook-result", "gradehook-mounts"))}
    before = leftovers()
    with groups_made() as made:
        run("import os\nos.fork()\n", mounts=(Mount(workdir, "/mnt/work"),))
        run("while True: pass", limits=SMALL_LIMITS.with_overrides(timeout_seconds=0.2))
    assert leftovers() == before
    assert [path for group in made for path in group.dirs.values() if path.exists()] == []


def test_the_cgroup_names_a_program_reads_tell_nothing_of_the_host(run: Runner) -> None:
    """Before, a sandboxed program read its run's cgroups in /proc/self/cgroup named
    gradehook-sandbox-<pid>-<number>, the worker's pid on the host. Each run's are named by a
    random token now."""
    if cgroup_module.controller_dirs() is None:
        pytest.skip("no writable cgroup v1 memory and pids controllers: no cgroups are made")
    program = "print(open('/proc/self/cgroup').read(), end='')"
    first, second = ({line.split(":", 2)[2].rsplit("/", 1)[-1]
                      for line in run(program).stdout.decode().splitlines()
                      if line.split(":")[1] in ("memory", "pids")} for _ in range(2))
    assert len(first) == len(second) == 1, (first, second)
    assert all(RUN_GROUP_NAME.fullmatch(name) for name in first | second), (first, second)
    assert first != second


def test_a_run_and_the_sessions_it_starts_share_one_cpu_group(run: Runner) -> None:
    """The kernel gives each session an equal share of the CPU (autogroups): a program whose 16
    processes each called setsid() made another student's run beside it take ten times as long,
    and its tests time out. In a cpu cgroup of its own the whole run weighs as one."""
    parents = cgroup_module.controller_dirs()
    if parents is None or cgroup_module.SHARE_CONTROLLER not in parents:
        pytest.skip("no writable cgroup v1 cpu controller: no cpu groups are made")
    result = run("""
import os, sys
def cpu_group():
    lines = open("/proc/self/cgroup").read().splitlines()
    return next(line.split(":", 2)[2] for line in lines if line.split(":")[1] == "cpu")
print(cpu_group(), flush=True)
if os.fork() == 0:
    os.setsid()
    print(cpu_group(), flush=True)
    os._exit(0)
os.wait()
""")
    assert result.exit_code == 0, result.stderr
    group, new_session_group = result.stdout.decode().split()
    assert RUN_GROUP_NAME.fullmatch(group.rsplit("/", 1)[-1]), group
    assert new_session_group == group


# Half a second of work, however long the program waits for a CPU.
HALF_A_SECOND_OF_WORK = """
import time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
print("done")
"""


def test_a_program_starved_of_cpu_has_its_time_limit_stretched_by_its_wait(
        run: Runner, starved_cpu: None) -> None:
    """A program of 0.5 s of work under a 1 s limit, given a third of a CPU (a host with three
    runs per core), took 1.5 s and was killed at 1 s: a correct solution timed out for the host's
    load. Its limit now runs on by the time it waited, ready to run, for a CPU."""
    result = run(HALF_A_SECOND_OF_WORK, limits=SMALL_LIMITS.with_overrides(timeout_seconds=1))
    assert (result.killed_reason, result.stdout) == (None, b"done\n"), result.stderr
    assert result.duration_seconds > 1


def test_an_endless_program_starved_of_cpu_still_stops_by_twice_its_limit(
        run: Runner, starved_cpu: None) -> None:
    result = run("while True: pass", limits=SMALL_LIMITS.with_overrides(timeout_seconds=1))
    assert result.killed_reason == "timeout"
    assert 1 < result.duration_seconds < 2 + STOP_LATENCY_SECONDS


def test_mount_copies_are_removed_when_setting_up_is_interrupted(
        run: Runner, workdir: Path, monkeypatch: pytest.MonkeyPatch,
        own_temporary_folder: Path) -> None:
    """A task's time limit can strike while the layout is built, after the mounts (hidden test
    files among them) were copied for the sandbox's user."""
    if os.geteuid() != 0:
        pytest.skip("mounts are copied only for a root worker's sandbox user")

    def interrupted() -> bytes:
        raise KeyboardInterrupt
    monkeypatch.setattr(layout_module, "seccomp_program", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run("print('never')", mounts=(Mount(workdir, "/mnt/work"),))
    assert not [p for p in os.listdir(own_temporary_folder) if p.startswith("gradehook-mounts")]


@pytest.mark.parametrize("call, message", [
    (dict(argv=[]), "argv"),
    (dict(argv="python"), "argv"),
    (dict(argv=["python", "a\0b"]), "argv"),
    (dict(stdin="text"), "stdin"),
    (dict(workdir=Path("/nonexistent/work")), "workdir"),
    (dict(python="python3"), "sandbox python"),
    (dict(python="/nonexistent/python"), "sandbox python"),
    (dict(mounts=[Mount(Path("/nonexistent"), "/mnt/x")]), "does not exist"),
    (dict(mounts=[Mount(Path("/etc"), "/usr/share/x")]), "overlaps"),
    (dict(mounts=[Mount(Path("/etc"), "/opt")]), "overlaps"),
    (dict(mounts=[Mount(Path("/etc"), "/mnt/a"), Mount(Path("/etc"), "/mnt/a/b")]), "overlaps"),
    (dict(result_path="/sandbox/work/result"), "overlaps"),
    (dict(result_path="relative"), "result_path"),
    (dict(extra_env={"A=B": "x"}), "extra_env"),
])
def test_bad_calls_raise_sandbox_error(workdir: Path, call: dict, message: str) -> None:
    arguments = dict(argv=["python", "-c", "pass"], workdir=workdir, limits=SMALL_LIMITS)
    arguments.update(call)
    with pytest.raises(SandboxError, match=message):
        run_sandboxed(**arguments)


@pytest.mark.parametrize("path", ["relative", "/", "/mnt/../etc", "/mnt/x/"])
def test_mount_paths_must_be_absolute_and_normalised(path: str) -> None:
    with pytest.raises(SandboxError, match="sandbox_path"):
        Mount(Path("/etc"), path)


def test_limits_come_from_settings_and_accept_overrides() -> None:
    settings = SandboxSettings(timeout_seconds=12.5, memory_mb=300, cpu_seconds=20,
                               max_processes=10, max_file_size_mb=5, max_open_files=99,
                               workdir_size_mb=50, max_output_bytes=4096)
    limits = SandboxLimits.from_settings(settings)
    assert dataclasses.astuple(limits)[:8] == (12.5, 20, 300, 10, 5, 99, 50, 4096)
    changed = limits.with_overrides(timeout_seconds=0.25, memory_mb=64)
    assert (changed.timeout_seconds, changed.memory_mb, changed.cpu_seconds) == (0.25, 64, 20)
    assert limits.with_overrides() == limits


def test_zero_timeout_means_the_hard_cap() -> None:
    assert SMALL_LIMITS.with_overrides(timeout_seconds=0).effective_timeout == \
        HARD_TIMEOUT_SECONDS
    assert SMALL_LIMITS.with_overrides(timeout_seconds=10 ** 6).effective_timeout == \
        HARD_TIMEOUT_SECONDS
    assert SMALL_LIMITS.with_overrides(timeout_seconds=0.3).effective_timeout == 0.3


@pytest.mark.parametrize("change", [dict(timeout_seconds=-1), dict(timeout_seconds=float("nan")),
                                    dict(memory_mb=0), dict(max_processes=True),
                                    dict(max_output_bytes=1.5)])
def test_invalid_limits_are_refused(change: dict) -> None:
    with pytest.raises(SandboxError):
        dataclasses.replace(SMALL_LIMITS, **change)


def test_bwrap_refusing_its_options_is_a_sandbox_error(workdir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_build = run_module.build_layout

    def broken_layout(*args, **kwargs):
        layout = real_build(*args, **kwargs)
        layout.add("--ro-bind", "/nonexistent/source", "/mnt/x")
        return layout
    monkeypatch.setattr(run_module, "build_layout", broken_layout)
    with pytest.raises(SandboxError, match="nonexistent/source"):
        run_sandboxed(["python", "-c", "pass"], workdir=workdir, limits=SMALL_LIMITS)
    monkeypatch.undo()
    assert run_sandboxed(["python", "-c", "pass"], workdir=workdir,
                         limits=SMALL_LIMITS).exit_code == 0


def test_a_virtualenv_under_tmp_is_shown_at_a_neutral_path(workdir: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)  # a root worker's sandbox user must reach the interpreter
        venv = Path(folder) / "venv"
        assert str(venv).startswith("/tmp/"), "the point is a virtualenv the sandbox's /tmp hides"
        venv_module.EnvBuilder(with_pip=False, symlinks=True).create(venv)
        (workdir / "prog.py").write_text(
            "import sys\nprint(sys.prefix, sys.prefix != sys.base_prefix)\n")
        result = run_sandboxed(["python", "prog.py"], workdir=workdir, limits=SMALL_LIMITS,
                               python=str(venv / "bin" / "python"))
    assert result.exit_code == 0, result.stderr
    prefix, in_venv = result.stdout.decode().split()
    assert prefix.startswith("/opt/gradehook/python/") and in_venv == "True"


@AS_ROOT_ONLY
@pytest.mark.parametrize("user, message", [("gradehook-no-such-user", "no such user"),
                                           ("root", "is root")])
def test_a_sandbox_user_that_is_missing_or_root_is_refused(workdir: Path, user: str,
                                                           message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        run_sandboxed(["python", "-c", "pass"], workdir=workdir, limits=SMALL_LIMITS, user=user)


@AS_ROOT_ONLY
def test_an_interpreter_the_sandbox_user_cannot_reach_is_named(tmp_path: Path,
                                                               workdir: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    python = private / "venv" / "bin" / "python"
    venv_module.EnvBuilder(with_pip=False, symlinks=True).create(python.parent.parent)
    with pytest.raises(SandboxError) as raised:
        run_sandboxed(["python", "-c", "pass"], workdir=workdir, limits=SMALL_LIMITS,
                      python=str(python))
    message = str(raised.value)
    blocked = re.search(r"that user cannot search (\S+);", message).group(1)
    assert message.startswith(f"sandbox python {python}: bwrap runs as the sandbox user nobody")
    assert f"chmod o+x {blocked}" in message
    assert any(Path(place).resolve().is_relative_to(blocked)
               for place in (private, sys.base_prefix))


def test_a_limit_above_the_workers_hard_limit_is_the_sandboxs_error_not_the_students(
        tmp_path: Path) -> None:
    """The sandbox can only lower what it inherits: a higher limit must not pass for a crash."""
    script = tmp_path / "lowered.py"
    script.write_text(textwrap.dedent(f"""
        import dataclasses, resource, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from pipeline.sandbox import SandboxError, run_sandboxed
        from tests.sandbox.conftest import SMALL_LIMITS
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
        work = Path({str(tmp_path)!r}) / "work"
        work.mkdir()
        (work / "prog.py").write_text("print('ran')\\n")
        try:
            run_sandboxed(["python", "prog.py"], workdir=work,
                          limits=dataclasses.replace(SMALL_LIMITS, max_open_files=64))
        except SandboxError as exc:
            print(exc)
        else:
            print("no error")
        """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == ("the sandbox's nofile limit 64 is above this worker's hard "
                                   "limit 32: lower [sandbox] max_open_files or raise the "
                                   "worker's limit"), done.stderr


@AS_ROOT_ONLY
def test_a_root_worker_without_setpriv_gets_our_error_naming_it(workdir: Path,
                                                                monkeypatch) -> None:
    monkeypatch.setattr(run_module, "UTIL_LINUX_PATH", str(workdir / "no-such-dir"))
    run_module._util_linux.cache_clear()
    try:
        with pytest.raises(SandboxError, match=r"setpriv \(util-linux\) is not installed"):
            run_sandboxed(["python", "-c", "pass"], workdir=workdir, limits=SMALL_LIMITS)
    finally:
        run_module._util_linux.cache_clear()


# Where a worker is killed: while the student's program sleeps, or while it prepares the
# sandbox (copying the student's files in), before the program may start.
WORKER_KILLED = {
    "while the program runs": "",
    "while the sandbox is prepared": """
        import threading
        import pipeline.sandbox.run
        def copy_and_stop(*args):
            print("preparing", flush=True)
            threading.Event().wait()
        pipeline.sandbox.run.copy_tree = copy_and_stop
        """,
}


@pytest.mark.parametrize("moment", WORKER_KILLED)
def test_a_sandbox_dies_with_the_worker_that_started_it(tmp_path: Path, moment: str) -> None:
    """A worker killed (SIGKILL: nothing of it runs again) must not leave its sandbox running
    past every limit: bwrap's --die-with-parent once the program runs, and before that the
    start guard, which never starts a program its worker did not release."""
    marker = f"sleeping-{os.getpid()}-{tmp_path.name}"
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from pipeline.sandbox import run_sandboxed
        from tests.sandbox.conftest import SMALL_LIMITS
        """) + textwrap.dedent(WORKER_KILLED[moment]) + textwrap.dedent(f"""
        work = Path({str(tmp_path)!r}) / "work"
        work.mkdir()
        print("starting", flush=True)
        run_sandboxed(["python", "-c", "import time; time.sleep(600)", {marker!r}],
                      workdir=work, limits=SMALL_LIMITS)
        """))
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert worker.stdout.readline() == b"starting\n"
        if moment == "while the program runs":
            wait_for(lambda: programs_with(marker), what="the sandboxed program to start")
        else:
            assert worker.stdout.readline() == b"preparing\n"
        worker.kill()
        worker.wait()
        wait_for(lambda: not host_processes_with(marker), timeout=30,
                 what="the sandbox to go with its worker")
    finally:
        worker.kill()
        worker.wait()
        for pid in host_processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_sandbox_whose_stop_is_set_kills_its_program_and_says_it_was_stopped(
        workdir: Path) -> None:
    """A grading abandoned (its task's time limit) stops the programs its threads still run:
    before, each ran on to its own time limit, which the grading waited for."""
    marker = f"stopped-{os.getpid()}-{workdir.parent.name}"
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(run_sandboxed, ["python", "-c", "import time; time.sleep(600)",
                                              marker],
                              workdir=workdir, limits=SMALL_LIMITS, stop=stop)
        try:
            wait_for(lambda: programs_with(marker), what="the sandboxed program to start")
            stop.set()
            with pytest.raises(SandboxStopped, match="^the sandbox was stopped before its "
                                                     "program ended$"):
                running.result(timeout=30)
        finally:
            stop.set()
    wait_for(lambda: not host_processes_with(marker), timeout=30,
             what="the sandbox to go with its program")
