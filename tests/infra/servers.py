"""Private Redis and PostgreSQL servers of one test, on free ports, to stop and start at will."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2
import redis

from tests.infra.ports import free_port
from tests.infra.processes import wait_for

POSTGRES_SUPERUSER = "postgres"


class PrivateRedis:
    """A redis-server of the test's own, without persistence: a restart loses its data."""

    def __init__(self, directory: Path, password: str | None = None):
        self.port = free_port()
        self.directory = directory
        self.password = password
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """Return the variables that point gradehook at this server."""
        return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port), "REDIS_DB": "0",
                "REDIS_PASSWORD": self.password or ""}

    def client(self) -> redis.Redis:
        """Return a client of this server."""
        return redis.Redis(port=self.port, password=self.password, socket_timeout=2)

    def start(self) -> None:
        """Start the server and wait until it answers."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory)]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for(self._answers, timeout=20, what="redis-server to answer")

    def stop(self) -> None:
        """Stop the server if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def _answers(self) -> bool:
        try:
            return self.client().ping()
        except redis.RedisError:
            return False


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb as `postgres` when run as root).

    It lives in a folder of its own under the system's temporary folder, which the `postgres`
    account can reach (a test's tmp_path is private to root); `remove` deletes it.
    """

    def __init__(self, password: str = "private-postgres"):
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="gradehook-pg-"))
        self.data = self.directory / "data"
        self.password = password
        self.user = POSTGRES_SUPERUSER

    def env(self) -> dict[str, str]:
        """Return the variables that point gradehook at this cluster's `gradehook` database."""
        return {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(self.port),
                "POSTGRES_USER": self.user, "POSTGRES_PASSWORD": self.password,
                "POSTGRES_DB": "gradehook"}

    def create(self) -> None:
        """Make the cluster, start it and create the `gradehook` database."""
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        self._chown(self.directory)
        self._pg("initdb", "-D", str(self.data), "-U", self.user, "-A", "scram-sha-256",
                 f"--pwfile={password_file}")
        self.start()
        with contextlib.closing(self.connect("postgres")) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE gradehook")

    def start(self) -> None:
        """Start the cluster and wait until it takes connections."""
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-l",
                 str(self.directory / "server.log"), "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
                 "-c fsync=off", "start")

    def stop(self) -> None:
        """Stop the cluster now, ending every session (a crash as clients see it)."""
        if (self.data / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", "immediate",
                     "stop")

    def remove(self) -> None:
        """Stop the cluster and delete its folder."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def connect(self, dbname: str = "gradehook"):
        """Return a new connection to a database of the cluster."""
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user,
                                password=self.password, dbname=dbname, connect_timeout=5)

    def _pg(self, program: str, *args: str) -> None:
        argv = [str(_pg_bin() / program), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", POSTGRES_SUPERUSER, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    @staticmethod
    def _chown(path: Path) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam(POSTGRES_SUPERUSER)
            shutil.chown(path, account.pw_uid, account.pw_gid)


def _pg_bin() -> Path:
    """Return the folder of PostgreSQL's server programs (Debian keeps them off the PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        raise AssertionError("PostgreSQL's pg_ctl is not installed")
    return versions[-1].parent
