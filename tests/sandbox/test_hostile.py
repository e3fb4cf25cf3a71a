"""Hostile programs: each tries to break out or exhaust the host and asserts its own containment."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import resource
import signal
import socket
import tempfile
import threading
import time
import uuid
import venv as venv_module
from pathlib import Path

import pytest

import pipeline
from pipeline.sandbox import Mount, SandboxError, run_sandboxed
from tests.sandbox.conftest import RESULT_PATH, SMALL_LIMITS, Runner, assert_contained, \
    host_processes_with

PRELUDE = """\
import ctypes, errno, os, sys
LIBC = ctypes.CDLL(None, use_errno=True)

def refused(action, *codes):
    try:
        action()
    except OSError as exc:
        assert not codes or exc.errno in codes, f"{action}: unexpected {exc!r}"
        return
    raise AssertionError(f"not refused: {action}")

def libc_refused(result, *codes):
    code = ctypes.get_errno()
    assert result == -1, f"call succeeded: {result}"
    assert not codes or code in codes, f"unexpected errno {code}"

"""
REFUSED_WRITE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT)


def hostile(body: str) -> str:
    """Return a program: the prelude, the body, and the line printed when all was refused."""
    return PRELUDE + body.strip("\n") + "\nprint('CONTAINED')\n"


def assert_worker_healthy(run: Runner) -> None:
    """Assert that the test process can start another sandbox right away."""
    result = run("print(6 * 7)")
    assert (result.exit_code, result.stdout, result.killed_reason) == (0, b"42\n", None)


# --- network -------------------------------------------------------------------------------

def test_loopback_does_not_reach_the_hosts_services(run: Runner) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = run(hostile(f"""
import socket
refused(lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2),
        errno.ECONNREFUSED)
"""))
        assert_contained(result)
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_no_route_to_any_outside_address(run: Runner) -> None:
    # 192.0.2.1 and 2001:db8::1 are documentation addresses: nothing leaves even if this failed.
    result = run(hostile("""
import socket
routes = open("/proc/net/route").read().splitlines()[1:]
assert routes == [], routes
interfaces = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
assert interfaces == ["lo"], interfaces
refused(lambda: socket.create_connection(("192.0.2.1", 80), timeout=2), errno.ENETUNREACH)
refused(lambda: socket.create_connection(("2001:db8::1", 80), timeout=2),
        errno.ENETUNREACH, errno.EADDRNOTAVAIL)
"""))
    assert_contained(result)


def test_dns_fails(run: Runner) -> None:
    result = run(hostile("""
import socket
try:
    socket.getaddrinfo("gitlab.com", 443)
except socket.gaierror:
    pass
else:
    raise AssertionError("name resolved")
"""))
    assert_contained(result)


# --- secrets -------------------------------------------------------------------------------

def test_unmounted_reference_solution_cannot_be_read(run: Runner, tmp_path: Path) -> None:
    reference = tmp_path / "reference" / "week1"
    reference.mkdir(parents=True)
    (reference / "solution.py").write_text("ANSWER = 'reference-secret'\n")
    result = run(hostile(f"""
path = {str(reference / "solution.py")!r}
refused(lambda: open(path), errno.ENOENT)
refused(lambda: os.listdir({str(reference)!r}), errno.ENOENT)
refused(lambda: open("/proc/1/root" + path), errno.ENOENT, errno.EACCES)
"""))
    assert_contained(result)


def test_etc_has_no_shadow_and_no_host_users(run: Runner) -> None:
    result = run(hostile("""
refused(lambda: open("/etc/shadow"), errno.ENOENT)
refused(lambda: open("/etc/gshadow"), errno.ENOENT)
interpreter_parts = {path.split("/")[2] for path in (sys.prefix, sys.base_prefix)
                     if path.startswith("/root/")}
assert set(os.listdir("/root") if os.path.exists("/root") else []) <= interpreter_parts
users = [line.split(":")[0] for line in open("/etc/passwd")]
assert users == ["root", "sandbox"], users
assert sorted(os.listdir("/etc")) == sorted(
    set(os.listdir("/etc")) & {"passwd", "group", "hosts", "ld.so.cache", "ld.so.conf",
                               "ld.so.conf.d", "localtime", "nsswitch.conf", "alternatives",
                               "fonts"}), os.listdir("/etc")
"""))
    assert_contained(result)


def test_workers_token_is_invisible(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "glpat-" + uuid.uuid4().hex
    monkeypatch.setenv("GITLAB_TOKEN", token)
    result = run(hostile("""
needle = b"GITLAB_TOKEN"
assert "GITLAB_TOKEN" not in os.environ
assert not any(v.startswith("glpat-") for v in os.environ.values())
pids = [p for p in os.listdir("/proc") if p.isdigit()]
assert "1" in pids and str(os.getppid()) in pids
for pid in pids:
    environ = open(f"/proc/{pid}/environ", "rb").read()
    assert needle not in environ and b"glpat-" not in environ, pid
"""))
    assert_contained(result)
    assert token.encode() not in result.stdout + result.stderr


def test_symlinks_in_the_workdir_are_not_followed_on_the_host(run: Runner, workdir: Path,
                                                              tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host-secret")
    (workdir / "shadow").symlink_to("/etc/shadow")
    (workdir / "secret").symlink_to(secret)
    result = run(hostile("""
assert os.readlink("shadow") == "/etc/shadow"
refused(lambda: open("shadow"), errno.ENOENT)
refused(lambda: open("secret"), errno.ENOENT)
"""))
    assert_contained(result)


def test_runs_kept_inside_the_interpreters_installation_are_refused() -> None:
    # A data directory beside the config in a virtualenv's folder: the sandbox shows the whole
    # installation, so each program could read every other run's files there.
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)  # a root worker's sandbox user must reach the interpreter
        venv = Path(folder) / "venv"
        venv_module.EnvBuilder(with_pip=False, symlinks=True).create(venv)
        runs = venv / "var" / "work"
        (runs / "alice").mkdir(parents=True)
        (runs / "alice" / "secret.txt").write_text("other-student-secret")
        (runs / "bob").mkdir()
        (runs / "bob" / "prog.py").write_text(hostile("""
import glob
assert glob.glob("/opt/gradehook/python/*/var/work/alice/*") == []
"""))
        with pytest.raises(SandboxError, match=f"^work directory {runs / 'bob'}: lies in "
                                               f"{venv}, which every sandbox shows"):
            run_sandboxed(["python", "prog.py"], workdir=runs / "bob", limits=SMALL_LIMITS,
                          python=str(venv / "bin" / "python"))


# --- writing outside the work directory ----------------------------------------------------

def test_system_directories_are_read_only(run: Runner) -> None:
    result = run(hostile(f"""
for path in ("/usr/evil", "/usr/bin/evil", "/etc/evil", "/evil", "/dev/evil",
             "/opt/gradehook/lib/pipeline/sandbox/evil.py"):
    refused(lambda: open(path, "w"), *{REFUSED_WRITE})
refused(lambda: os.chmod("/usr/bin", 0o777), errno.EROFS, errno.EPERM)
"""))
    assert_contained(result)


def test_private_tmp_does_not_reach_the_hosts_tmp(run: Runner) -> None:
    name = f"gradehook-escape-{uuid.uuid4().hex}"
    result = run(hostile(f"""
assert os.path.realpath("/tmp") == "/sandbox/tmp"
open("/tmp/{name}", "w").write("x")
assert os.path.exists("/tmp/{name}")
"""))
    assert_contained(result)
    assert not Path("/tmp", name).exists()


def test_command_lines_show_no_host_path(run: Runner, tmp_path: Path) -> None:
    repository = Path(pipeline.__file__).resolve().parent.parent
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    host_paths = [str(repository), str(tmp_path), os.path.join(tempfile.gettempdir(), "gradehook-")]
    result = run(hostile(f"""
for pid in ("1", "self"):
    cmdline = open(f"/proc/{{pid}}/cmdline", "rb").read()
    for host_path in {host_paths!r}:
        assert host_path.encode() not in cmdline, (pid, host_path, cmdline)
"""), mounts=(Mount(mounted, "/mnt/mounted"),))
    assert_contained(result)


def test_repository_and_config_are_not_visible(run: Runner) -> None:
    repository = Path(pipeline.__file__).resolve().parent.parent
    result = run(hostile(f"""
repo = {str(repository)!r}
for name in ("config.toml", "setup.cfg", "pipeline/config.py", ".git"):
    assert not os.path.exists(os.path.join(repo, name)), name
refused(lambda: open(os.path.join(repo, "evil.py"), "w"), *{REFUSED_WRITE})
refused(lambda: open(os.path.join(repo, "pipeline", "config.py")), errno.ENOENT)
"""))
    assert_contained(result)


def test_interpreter_installation_is_read_only(run: Runner) -> None:
    result = run(hostile(f"""
import site, sysconfig
for directory in {{sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"],
                  os.path.dirname(os.__file__)}}:
    assert os.path.isdir(directory), directory
    refused(lambda: open(os.path.join(directory, "evil.py"), "w"), *{REFUSED_WRITE})
"""))
    assert_contained(result)


def test_other_sandboxes_work_directories_are_invisible(tmp_path: Path) -> None:
    marker = f"sandbox-a-{uuid.uuid4().hex}"
    a_dir = tmp_path / "a"
    a_dir.mkdir()
    (a_dir / "secret.txt").write_text("other-student-secret")
    (a_dir / "prog.py").write_text("import time\ntime.sleep(60)\n")
    holder = threading.Thread(target=run_sandboxed, kwargs={
        "argv": ["python", "prog.py", marker], "workdir": a_dir,
        "limits": SMALL_LIMITS.with_overrides(timeout_seconds=2.0)})
    holder.start()
    try:
        deadline = time.monotonic() + 5
        while not host_processes_with(marker):
            assert time.monotonic() < deadline, "sandbox A did not start"
            time.sleep(0.01)
        b_dir = tmp_path / "b"
        b_dir.mkdir()
        (b_dir / "prog.py").write_text(hostile(f"""
refused(lambda: open({str(a_dir / "secret.txt")!r}), errno.ENOENT)
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    cmdline = open(f"/proc/{{pid}}/cmdline", "rb").read()
    assert b"{marker}" not in cmdline, cmdline
    root = f"/proc/{{pid}}/root/sandbox/work"
    assert "secret.txt" not in os.listdir(root) if os.access(root, os.R_OK) else True
for folder, _, files in os.walk("/sandbox"):
    assert "secret.txt" not in files, folder
"""))
        result = run_sandboxed(["python", "prog.py"], workdir=b_dir, limits=SMALL_LIMITS)
        assert_contained(result)
        assert host_processes_with(marker), "sandbox A ended before B had looked"
    finally:
        holder.join()


# --- the host's kernel and devices ---------------------------------------------------------

def test_kernel_settings_cannot_be_written(run: Runner) -> None:
    # Each write puts back the value just read: nothing would change even if one went through.
    result = run(hostile(f"""
def write_back(path):
    value = open(path).read()
    with open(path, "w") as setting:
        setting.write(value)
refused(lambda: write_back("/proc/sys/kernel/printk_ratelimit_burst"), *{REFUSED_WRITE})
mounts = {{fields[4]: fields[5].split(",")
          for fields in map(str.split, open("/proc/self/mountinfo"))}}
for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"):
    if os.path.exists(path):
        assert "ro" in mounts.get(path, []), (path, mounts.get(path))
"""))
    assert_contained(result)


def test_host_device_files_cannot_be_changed(run: Runner) -> None:
    # chmod to the mode the file already has: nothing would change even if it went through.
    result = run(hostile("""
import stat
for path in ("/dev/null", "/dev/full"):
    mode = stat.S_IMODE(os.stat(path).st_mode)
    try:
        os.chmod(path, mode)
    except PermissionError as exc:
        assert exc.errno == errno.EPERM, exc
    else:
        raise AssertionError(f"chmod {path}: not refused")
"""))
    assert_contained(result)


def test_root_only_kernel_files_cannot_be_read(run: Runner) -> None:
    result = run(hostile("""
for path in ("/proc/timer_list", "/proc/slabinfo"):
    refused(lambda: open(path, "rb").read(1), errno.EACCES, errno.EPERM)
"""))
    assert_contained(result)


def test_the_sandbox_runs_as_no_host_root(run: Runner) -> None:
    marker = f"host-ids-{uuid.uuid4().hex}"
    holder = threading.Thread(target=run, args=("import time\ntime.sleep(2)\n",),
                              kwargs={"args": (marker,)})
    holder.start()
    try:
        deadline = time.monotonic() + 5
        # bwrap, its init inside the sandbox, and the program
        while len(pids := host_processes_with(marker)) < 3:
            assert time.monotonic() < deadline, f"the sandbox did not start: {pids}"
            time.sleep(0.01)
        for pid in pids:
            status = dict(line.split(":", 1)
                          for line in Path(f"/proc/{pid}/status").read_text().splitlines())
            assert "0" not in status["Uid"].split() + status["Gid"].split(), (pid, status)
            assert status["Groups"].split() == [], (pid, status)  # no supplementary group
            assert {int(status[name], 16) for name in ("CapPrm", "CapEff", "CapAmb")} == {0}, \
                (pid, status)
    finally:
        holder.join()


# --- exhaustion ----------------------------------------------------------------------------

def test_fork_bomb_is_stopped(run: Runner) -> None:
    result = run("""
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""")
    assert result.killed_reason == "processes", result
    assert result.signal is not None and result.exit_code is None
    assert_worker_healthy(run)


def test_memory_bomb_is_stopped(run: Runner) -> None:
    result = run("""
hoard = []
while True:
    hoard.append(bytearray(8 * 1024 * 1024))
""")
    assert result.killed_reason == "memory", result
    assert_worker_healthy(run)


def test_disk_filler_stops_at_the_cap(run: Runner, workdir: Path) -> None:
    result = run("""
import itertools
for number in itertools.count():
    try:
        with open(f"fill-{number}", "wb") as handle:
            handle.write(b"x" * (2 * 1024 * 1024))
    except OSError:
        pass
""")
    assert result.killed_reason == "disk", result
    assert sorted(p.name for p in workdir.iterdir()) == ["prog.py"]
    assert_worker_healthy(run)


def test_gigabyte_print_is_cut_without_growing_the_worker(run: Runner) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run("""
import sys
chunk = "x" * (1024 * 1024)
for _ in range(1024):
    sys.stdout.write(chunk)
""")
    assert result.killed_reason == "output" and result.output_truncated, result
    assert len(result.stdout) + len(result.stderr) == SMALL_LIMITS.max_output_bytes
    assert result.stdout == b"x" * len(result.stdout)
    peak_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert peak_growth_kb < 32 * 1024
    assert_worker_healthy(run)


def test_infinite_loop_is_ended_by_its_timeout(run: Runner) -> None:
    result = run("while True:\n    pass\n",
                 limits=SMALL_LIMITS.with_overrides(timeout_seconds=0.5))
    assert result.killed_reason == "timeout" and result.timed_out, result
    assert result.duration_seconds >= 0.5, result  # not before its time
    assert_worker_healthy(run)


def test_cpu_limit_ends_a_busy_program(run: Runner) -> None:
    result = run("while True:\n    pass\n", limits=dataclasses.replace(SMALL_LIMITS, cpu_seconds=1))
    assert (result.killed_reason, result.timed_out) == ("timeout", True)
    assert result.signal == signal.SIGXCPU


def test_too_many_open_files_fail_cleanly(run: Runner) -> None:
    result = run(hostile(f"""
handles = []
try:
    while True:
        handles.append(open("/dev/null"))
except OSError as exc:
    assert exc.errno == errno.EMFILE, exc
assert len(handles) < {SMALL_LIMITS.max_open_files}, len(handles)
"""))
    assert_contained(result)


def test_file_beyond_the_size_limit_fails(run: Runner, workdir: Path) -> None:
    limit = SMALL_LIMITS.max_file_size_mb * 1024 * 1024
    result = run(hostile(f"""
def write_too_much():
    with open("huge", "wb") as handle:
        handle.write(b"x" * ({limit} + 1))
refused(write_too_much, errno.EFBIG)
assert os.path.getsize("huge") == {limit}
"""))
    assert_contained(result)
    assert not (workdir / "huge").exists()


# --- processes left behind -----------------------------------------------------------------

SURVIVOR = ("import time; open('/tmp/up-{n}', 'w').close(); time.sleep(60)")
WAIT_FOR_SURVIVOR = """
import time
deadline = time.monotonic() + 5
while not os.path.exists("/tmp/up-{n}"):
    assert time.monotonic() < deadline, "survivor did not start"
    time.sleep(0.01)
"""

BACKGROUND_STARTS = {
    "background child": "subprocess.Popen([sys.executable, '-c', SURVIVOR, MARKER])",
    "nohup": "subprocess.Popen(['nohup', sys.executable, '-c', SURVIVOR, MARKER],"
             " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)",
    "setsid daemon": "subprocess.Popen([sys.executable, '-c', SURVIVOR, MARKER],"
                     " start_new_session=True, stdin=subprocess.DEVNULL)",
    "double fork": """
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', SURVIVOR, MARKER])
    os._exit(0)
os.wait()""",
}


@pytest.mark.parametrize("how", sorted(BACKGROUND_STARTS))
def test_processes_left_behind_are_killed(run: Runner, how: str) -> None:
    marker = f"survivor-{uuid.uuid4().hex}"
    result = run(hostile(f"""
import subprocess
SURVIVOR = {SURVIVOR.format(n=0)!r}
MARKER = {marker!r}
{BACKGROUND_STARTS[how].strip()}
{WAIT_FOR_SURVIVOR.format(n=0)}
"""))
    assert_contained(result)
    assert host_processes_with(marker) == []


# --- the result channel --------------------------------------------------------------------

def written_then(ending: str) -> str:
    """Return a program that writes a result to the channel, then ends as told."""
    return f"""
import os, signal, sys
channel = open({RESULT_PATH!r}, "w")
channel.write('{{"status": "done"}}')
channel.flush()
{ending}
"""


def test_result_survives_sys_exit(run: Runner) -> None:
    result = run(written_then("sys.exit(3)"))
    assert (result.exit_code, result.result_data) == (3, b'{"status": "done"}')


def test_result_survives_os_exit(run: Runner) -> None:
    result = run(written_then("os._exit(0)"))
    assert (result.exit_code, result.result_data) == (0, b'{"status": "done"}')


def test_killing_the_parent_neither_works_nor_loses_the_result(run: Runner) -> None:
    result = run(written_then("""
for number in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
    os.kill(os.getppid(), number)
print("still here")
"""))
    assert (result.exit_code, result.stdout) == (0, b"still here\n")
    assert result.result_data == b'{"status": "done"}'


def test_killing_everything_loses_no_result_and_spares_the_worker(run: Runner) -> None:
    result = run(written_then("""
import subprocess
subprocess.Popen(["sleep", "60"])
os.kill(-1, signal.SIGKILL)
os.kill(os.getpid(), signal.SIGKILL)
"""))
    assert (result.exit_code, result.signal) == (None, signal.SIGKILL)
    assert result.result_data == b'{"status": "done"}'
    assert_worker_healthy(run)


def test_fake_result_on_stdout_is_not_the_result(run: Runner) -> None:
    fake = json.dumps({"status": "passed", "score": 100})
    result = run(f"""
import sys
print({fake!r})
print({fake!r}, file=sys.stderr)
with open({RESULT_PATH!r}, "w") as channel:
    channel.write("real")
""")
    assert result.result_data == b"real"
    assert result.stdout == fake.encode() + b"\n" and result.stderr == fake.encode() + b"\n"


# --- privileges ----------------------------------------------------------------------------

def test_ptrace_fails(run: Runner) -> None:
    result = run(hostile("""
PTRACE_ATTACH = 16
libc_refused(LIBC.ptrace(PTRACE_ATTACH, 1, None, None), errno.EPERM)
libc_refused(LIBC.ptrace(PTRACE_ATTACH, os.getppid(), None, None), errno.EPERM)
refused(lambda: open("/proc/1/mem", "rb").read(1), errno.EACCES, errno.EPERM, errno.EIO)
"""))
    assert_contained(result)


def test_mount_fails(run: Runner) -> None:
    result = run(hostile("""
libc_refused(LIBC.mount(b"none", b"/tmp", b"tmpfs", 0, None), errno.EPERM)
libc_refused(LIBC.mount(b"/usr", b"/usr", None, 0x20 | 0x1000, None), errno.EPERM)
libc_refused(LIBC.umount2(b"/proc", 2), errno.EPERM)
"""))
    assert_contained(result)


def test_unshare_fails(run: Runner) -> None:
    result = run(hostile("""
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
libc_refused(LIBC.unshare(CLONE_NEWUSER), errno.EPERM, errno.ENOSPC, errno.EUSERS)
libc_refused(LIBC.unshare(CLONE_NEWNS), errno.EPERM)
libc_refused(LIBC.unshare(CLONE_NEWNET), errno.EPERM)
"""))
    assert_contained(result)


def test_chroot_fails(run: Runner) -> None:
    result = run(hostile("""
refused(lambda: os.chroot("/tmp"), errno.EPERM)
"""))
    assert_contained(result)


def test_setuid_fails_and_no_capabilities_are_held(run: Runner) -> None:
    result = run(hostile("""
assert (os.getuid(), os.getgid()) == (65534, 65534)
refused(lambda: os.setuid(0), errno.EPERM, errno.EINVAL)
refused(lambda: os.setgid(0), errno.EPERM, errno.EINVAL)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
assert status["NoNewPrivs"].strip() == "1"
refused(lambda: os.mknod("/sandbox/tmp/null", 0o666 | 0o020000, os.makedev(1, 3)),
        errno.EPERM)
"""))
    assert_contained(result)
