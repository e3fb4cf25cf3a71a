"""Helpers shared by the bench scripts: services, scratch databases, processes, machine, tables."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import psycopg2
import redis

REPO_ROOT = Path(__file__).resolve().parent.parent
# The key a benchmark, or a test (tests/infra/services.py), sets in the Redis database index it
# works in, so that neither flushes or consumes what the other holds there.
REDIS_CLAIM_KEY = "gradehook-redis-claim"
STOP_SECONDS = 20
SERVICE_START_SECONDS = 60
SCRATCH_DATABASE_PREFIX = "gradehook_bench_"
REDIS_DB_COUNT = 16


class BenchError(Exception):
    """The benchmark cannot run or its result is not valid; the message says why."""


@dataclass(frozen=True)
class ServiceEnv:
    """Where the Redis and PostgreSQL servers of a benchmark are."""

    redis_host: str
    redis_port: int
    redis_password: str
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_db: str

    def environ(self, *, postgres_db: str | None = None, redis_db: int | None = None
                ) -> dict[str, str]:
        """Return the variables gradehook reads, optionally naming another database or index."""
        env = {"REDIS_HOST": self.redis_host, "REDIS_PORT": str(self.redis_port),
               "REDIS_PASSWORD": self.redis_password, "POSTGRES_HOST": self.postgres_host,
               "POSTGRES_PORT": str(self.postgres_port), "POSTGRES_USER": self.postgres_user,
               "POSTGRES_PASSWORD": self.postgres_password,
               "POSTGRES_DB": postgres_db or self.postgres_db}
        if redis_db is not None:
            env["REDIS_DB"] = str(redis_db)
        return env

    def redis(self, db: int = 0) -> redis.Redis:
        """Return a client of one Redis database index."""
        return redis.Redis(host=self.redis_host, port=self.redis_port,
                           password=self.redis_password or None, db=db, socket_timeout=10)

    def postgres(self, dbname: str | None = None):
        """Open an autocommit connection to a database (the maintenance one by default)."""
        connection = psycopg2.connect(host=self.postgres_host, port=self.postgres_port,
                                      user=self.postgres_user, password=self.postgres_password,
                                      dbname=dbname or self.postgres_db, connect_timeout=5)
        connection.autocommit = True
        return connection


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str) -> object:
    """Poll a predicate until it returns something true, or raise BenchError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BenchError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _answers(check: Callable[[], object]) -> bool:
    try:
        check()
    except Exception:  # any failure to connect means "not (yet) there"
        return False
    return True


def _env_services() -> ServiceEnv | None:
    env = os.environ
    if not env.get("REDIS_HOST") or not env.get("POSTGRES_HOST"):
        return None
    found = ServiceEnv(env["REDIS_HOST"], int(env.get("REDIS_PORT", 6379)),
                       env.get("REDIS_PASSWORD", ""), env["POSTGRES_HOST"],
                       int(env.get("POSTGRES_PORT", 5432)), env.get("POSTGRES_USER", "gradehook"),
                       env.get("POSTGRES_PASSWORD", ""), env.get("POSTGRES_DB", "gradehook"))
    if _answers(lambda: found.redis().ping()) and _answers(lambda: found.postgres().close()):
        return found
    return None


@contextlib.contextmanager
def services() -> Iterator[ServiceEnv]:
    """Yield the Redis and PostgreSQL named in the environment, else private ones started here.

    Private servers run on free ports in a temporary folder and are stopped afterwards;
    PostgreSQL keeps its default durability (fsync on), as in production.
    """
    found = _env_services()
    if found is not None:
        yield found
        return
    ensure_command("redis-server", "redis-server")
    ensure_command("pg_ctlcluster", "postgresql")
    with tempfile.TemporaryDirectory(prefix="gradehook-bench-services-") as folder:
        os.chmod(folder, 0o755)
        with _private_redis(Path(folder)) as redis_port, \
                _private_postgres(Path(folder) / "pg") as postgres_port:
            yield ServiceEnv("127.0.0.1", redis_port, "", "127.0.0.1", postgres_port,
                             "gradehook", "gradehook", "gradehook")


@contextlib.contextmanager
def _private_redis(folder: Path) -> Iterator[int]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(folder)]
    with background(argv, log_path=folder / "redis.log"):
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        wait_until(lambda: _answers(client.ping), timeout=SERVICE_START_SECONDS,
                   what="the private redis-server")
        yield port


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not versions:
        raise BenchError("PostgreSQL binaries not found under /usr/lib/postgresql")
    return versions[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def _private_postgres(data: Path) -> Iterator[int]:
    port, pg_bin = free_port(), _pg_bin()
    data.mkdir()
    password_file = data.parent / "pgpass"
    password_file.write_text("gradehook\n")
    password_file.chmod(0o644)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(_as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-U", "gradehook",
                                 f"--pwfile={password_file}", "-A", "scram-sha-256"]),
                   check=True, stdout=subprocess.DEVNULL)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-l",
                                 str(data / "log"), "-w", "-o", options, "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    try:
        _admin(ServiceEnv("", 0, "", "127.0.0.1", port, "gradehook", "gradehook", "postgres"),
               "CREATE DATABASE gradehook")
        yield port
    finally:
        subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast",
                                     "stop"]), stdout=subprocess.DEVNULL, check=False)


@contextlib.contextmanager
def scratch_database(env: ServiceEnv) -> Iterator[str]:
    """Create an empty PostgreSQL database with a fresh name; drop it afterwards."""
    name = SCRATCH_DATABASE_PREFIX + secrets.token_hex(6)
    _admin(env, f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        # An autovacuum worker PostgreSQL started on the database's new rows cannot be
        # terminated by its owner: the drop waits for it to finish.
        wait_until(lambda: _dropped(env, name), timeout=SERVICE_START_SECONDS,
                   what=f"autovacuum to leave database {name}")


def _dropped(env: ServiceEnv, name: str) -> bool:
    try:
        _admin(env, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg2.errors.InsufficientPrivilege:
        return False
    return True


def _admin(env: ServiceEnv, statement: str) -> None:
    """Run one statement on a connection of its own (a server restart meanwhile is harmless)."""
    connection = env.postgres()
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@contextlib.contextmanager
def scratch_redis_db(env: ServiceEnv) -> Iterator[int]:
    """Yield an empty Redis database index, the lowest one; empty it afterwards.

    The lowest first: the test suite's fixtures flush random indexes from 1 to 15, which
    would wipe a benchmark's messages while another session runs the tests. The index is
    claimed with a key set only if absent, so two benchmarks starting together (one's workers
    would consume the other's messages) never share one.
    """
    index = next((i for i in range(REDIS_DB_COUNT) if _claim_redis_db(env, i)), None)
    if index is None:
        raise BenchError(f"no empty Redis database index below {REDIS_DB_COUNT}")
    try:
        yield index
    finally:
        env.redis(index).flushdb()


def _claim_redis_db(env: ServiceEnv, index: int) -> bool:
    client = env.redis(index)
    if client.dbsize() or not client.set(REDIS_CLAIM_KEY, os.getpid(), nx=True):
        return False
    if client.dbsize() == 1:
        return True
    client.delete(REDIS_CLAIM_KEY)  # something else wrote there at the same moment
    return False


def ensure_command(command: str, package: str) -> str:
    """Return the path of a command, installing its Debian package first when root can."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError(f"{command} is missing; install it with: sudo apt-get install {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    found = shutil.which(command)
    if not found:
        raise BenchError(f"installing {package} did not provide {command}")
    return found


@contextlib.contextmanager
def background(argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run a process with its output in a log file; stop it (SIGTERM, then SIGKILL) afterwards."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_http(url: str, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Wait until a URL answers with any HTTP status; fail early if the server process died."""
    def answered() -> bool:
        if process is not None and process.poll() is not None:
            raise BenchError(f"the server exited with status {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True
    wait_until(answered, timeout=timeout, what=url)


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: the machine's busy and idle time, and every live process's."""

    busy: float
    idle: float
    # pid -> (parent pid, process name, own seconds, seconds of children it has waited for)
    processes: dict[int, tuple[int, str, float, float]]

    def descendants(self, root: int) -> set[int]:
        """Return a process and all its live descendants."""
        found, pending = set(), [root]
        while pending:
            pid = pending.pop()
            found.add(pid)
            pending.extend(child for child, (parent, *_rest) in self.processes.items()
                           if parent == pid and child not in found)
        return found


def cpu_snapshot() -> CpuSnapshot:
    """Read the machine's CPU time (/proc/stat) and each process's (/proc/<pid>/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        times = [int(value) for value in stat.readline().split()[1:]]
    idle = times[3] + times[4]  # idle and iowait
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        processes[int(entry.name)] = (
            int(fields[1]), text[text.index("(") + 1:text.rindex(")")],
            (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick)
    return CpuSnapshot((sum(times) - idle) / tick, idle / tick, processes)


def cpu_used(before: CpuSnapshot, after: CpuSnapshot, pids: set[int]) -> tuple[float, float]:
    """Return (own, waited-for children's) CPU seconds of some processes between two snapshots."""
    own = children = 0.0
    for pid in pids:
        if pid not in after.processes:
            continue
        _, _, own_after, children_after = after.processes[pid]
        _, _, own_before, children_before = before.processes.get(pid, (0, "", 0.0, 0.0))
        own += own_after - own_before
        children += children_after - children_before
    return own, children


def named_pids(snapshot: CpuSnapshot, prefixes: Sequence[str]) -> set[int]:
    """Return the pids of processes whose name starts with one of the prefixes."""
    return {pid for pid, (_, name, _, _) in snapshot.processes.items()
            if name.startswith(tuple(prefixes))}


def children_cpu_seconds() -> float:
    """Return the CPU seconds used by this process's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Machine:
    """The machine a benchmark ran on."""

    cores: int
    cpu_model: str
    memory_gib: float
    python: str

    def describe(self) -> str:
        """Return one line naming cores, CPU model, memory and Python version."""
        return (f"{self.cores} cores ({self.cpu_model}), {self.memory_gib:.0f} GiB memory, "
                f"Python {self.python}")


def machine() -> Machine:
    """Describe this machine from nproc, /proc/cpuinfo and /proc/meminfo."""
    cpu_model, memory_kib = platform.processor() or "unknown CPU", 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return Machine(len(os.sched_getaffinity(0)), cpu_model, memory_kib / 2 ** 20,
                   platform.python_version())


def busy_cpu_percent(seconds: float = 1.0) -> float:
    """Return how busy all cores were over a short interval, in percent (other load shows)."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values) - idle, sum(values)
    busy_before, total_before = sample()
    time.sleep(seconds)
    busy_after, total_after = sample()
    return 100 * (busy_after - busy_before) / max(1, total_after - total_before)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return rows as a Markdown table with right-aligned columns after the first."""
    cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]

    def line(row: Sequence[str]) -> str:
        padded = [row[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(row[1:], widths[1:])]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]])
    return "\n".join([line(cells[0]), rule + "|"] + [line(row) for row in cells[1:]])
