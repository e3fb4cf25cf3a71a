"""`gradehook web|worker start|beat|flower|run`: start gradehook's processes."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from gradehook.settings import settings_from
from pipeline.celery_app import QUEUES, create_celery
from pipeline.config import CONFIG_ENV, PORT_ENV
from pipeline.housekeeping import grading_processes, run_workspaces
from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import upgrade

# How long `gradehook run` waits, after Ctrl-C, for the runs in progress to finish, then for
# processes told to stop at once; a process still there after both is killed.
STOP_GRACE_SECONDS = 60
STOP_NOW_SECONDS = 15
POLL_SECONDS = 0.1
HEALTH_PATH = "/api/tests-celery/health"
TCP_LISTEN = "0A"
APP_FACTORY = "webhooks.app:create_app()"
PORT = click.IntRange(1, 65535)
# Seconds between looks at whether the web process serves, and the longest a look waits.
READY_POLL_SECONDS, READY_TIMEOUT_SECONDS = 0.5, 3.0
RUNNING = "gradehook running on {url} (Ctrl-C stops it)"
NOT_SERVING = ("gradehook: the web process could not serve on {url} (exit code {code}; is the "
               "port in use?); stopping")
STOPPING = "gradehook: stopping (Ctrl-C again stops at once)"
STOPPING_RUNS = ("gradehook: stopping: waiting up to {grace:g} s for {count} {runs} in progress; "
                 "Ctrl-C again to stop now")
STOPPING_NOW = ("gradehook: stopping now; runs still in progress are graded again when the "
                "worker next starts")
EXITED = "gradehook: the {name} process exited with code {code}; stopping"
KILLED = "gradehook: the {name} process did not stop within {seconds:.0f} s and was killed"


@click.command("web")
@click.option("--port", type=PORT, help="Port to listen on (default: server.port).")
@click.pass_context
def web(ctx: click.Context, port: int | None) -> None:
    """Serve the web application with gunicorn."""
    settings = settings_from(ctx)
    os.execve(sys.executable, [sys.executable, *gunicorn_argv(settings, port)],
              _child_env(ctx, port))


@click.group("worker")
def worker() -> None:
    """Run and inspect Celery workers."""


@worker.command("start")
@click.option("--concurrency", type=int,
              help="Worker processes (default: worker.concurrency, else twice the grading "
                   "slots).")
@click.option("--beat", is_flag=True, help="Also run the scheduler (reconciler) in this worker.")
@click.option("--pool", default="prefork", show_default=True,
              type=click.Choice(["prefork", "solo", "threads"]))
@click.pass_context
def worker_start(ctx: click.Context, concurrency: int | None, beat: bool, pool: str) -> None:
    """Consume the notify, high_priority, default and low_priority queues."""
    settings = settings_from(ctx)
    app = create_celery(settings)
    argv = ["worker", "--queues", ",".join(QUEUES), "--loglevel", settings.log_level,
            "--concurrency", str(concurrency or settings.worker.processes),
            "--prefetch-multiplier", "1", "--pool", pool, "--hostname", "gradehook@%h",
            "--without-mingle", "--without-gossip"]
    if beat:
        argv += ["--beat", "--schedule", str(settings.data_dir / "beat-schedule")]
    app.worker_main(argv)


@click.command("beat")
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run the scheduler that sends the reconciler on its interval."""
    settings = settings_from(ctx)
    app = create_celery(settings)
    app.start(["beat", "--loglevel", settings.log_level,
               "--schedule", str(settings.data_dir / "beat-schedule")])


@click.command("flower")
@click.option("--port", type=PORT, default=5555, show_default=True)
@click.pass_context
def flower(ctx: click.Context, port: int) -> None:
    """Run Flower, the monitoring UI of the workers."""
    app = create_celery(settings_from(ctx))
    app.start(["flower", f"--port={port}"])


@click.command("run")
@click.option("--port", type=PORT, help="Port of the web process (default: server.port).")
@click.option("--stop-grace", type=click.FloatRange(min=0), default=STOP_GRACE_SECONDS,
              show_default=True,
              help="Seconds Ctrl-C waits for runs in progress before stopping them.")
@click.pass_context
def run(ctx: click.Context, port: int | None, stop_grace: float) -> None:
    """Apply migrations, then run web and worker together until Ctrl-C.

    Ctrl-C (or SIGTERM) lets the runs in progress finish, for --stop-grace seconds at most;
    a second Ctrl-C stops at once, and the runs it stopped are graded again when the worker
    next starts. Exit code 0 after a stop asked for, 1 when a process exited on its own or had
    to be killed.
    """
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    env = _child_env(ctx, port)
    port = settings.server.port if port is None else port
    web = Child("web", _start([sys.executable, *gunicorn_argv(settings, port)], env),
                serves=(settings.server.host, port))
    worker = Child("worker", _start([sys.executable, "-m", "gradehook", "worker", "start",
                                     "--beat"], env), workspace=settings.workspace)
    sys.exit(_supervise([web, worker], grace=stop_grace, workspace=settings.workspace))


def _child_env(ctx: click.Context, port: int | None = None) -> dict[str, str]:
    """Return the environment for child processes: the same config file, the port served."""
    env = dict(os.environ)
    config = ctx.find_root().obj.get("config_path")
    if config:
        env[CONFIG_ENV] = os.path.abspath(config)
    if port is not None:
        env[PORT_ENV] = str(port)
    return env


WORKER_CONNECTIONS_PER_THREAD = 2


def gunicorn_argv(settings, port: int | None, app: str = APP_FACTORY) -> list[str]:
    """Return the arguments that run gunicorn with gradehook's production settings."""
    s = settings.server
    # A worker holds at most twice as many connections as it has threads and closes surplus
    # keep-alive connections after their answer: a client's reconnect then goes to whichever
    # worker has room, so one worker cannot take every keep-alive connection of a proxy or
    # load generator while the others idle.
    return ["-m", "gunicorn", "--bind", f"{s.host}:{s.port if port is None else port}",
            "--workers", str(s.web_workers), "--threads", str(s.web_threads),
            "--worker-connections", str(WORKER_CONNECTIONS_PER_THREAD * s.web_threads),
            "--worker-class", "gthread", "--timeout", "30", "--graceful-timeout", "10",
            "--access-logfile", "-", app]


@dataclasses.dataclass
class Child:
    """A process `gradehook run` started, leading a process group of its own."""

    name: str
    process: subprocess.Popen
    workspace: Path | None = None  # a worker's: where the runs it grades have their folders
    serves: tuple[str, int] | None = None  # a web process's: the address it is to serve on
    ready: bool = False

    @property
    def url(self) -> str:
        """Return the address a web process serves."""
        host, port = self.serves
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def check_ready(self) -> bool:
        """Tell whether a web process serves: it holds the listening socket and answers.

        The health endpoint alone could be answered by whatever else holds the port.
        """
        host, port = self.serves
        if not _listens(self.process.pid, port):
            return False
        local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        probe = f"http://{f'[{local}]' if ':' in local else local}:{port}{HEALTH_PATH}"
        try:
            with urllib.request.urlopen(probe, timeout=READY_TIMEOUT_SECONDS):
                return True
        except urllib.error.HTTPError:  # 503 while no worker answers yet: it serves
            return True
        except OSError:
            return False

    def exit_code(self) -> int | None:
        """Return how the process ended (minus the signal that ended it), None while it runs.

        The process is left unreaped, so no other process can take its group's number.
        """
        info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def exited(self) -> bool:
        """Tell whether the process has exited."""
        return self.exit_code() is not None

    def signal(self, signum: int) -> None:
        """Send a signal to the process alone: it passes it on to its own children."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signum)

    def stop_now(self) -> None:
        """Stop without waiting for the runs in progress (gunicorn's own wait is short).

        Celery's cold shutdown would wait for each run's sandbox to end: the processes grading
        are killed first (their sandboxes die with them; the ledger learns nothing from them),
        then the worker hands the messages it holds back to the broker and exits. Their runs
        are graded again when a worker of this host starts.
        """
        if self.workspace is None:
            return
        for pid in grading_processes(self.workspace):
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) == self.process.pid:
                    os.kill(pid, signal.SIGKILL)
        self.signal(signal.SIGQUIT)

    def kill_group(self) -> None:
        """Kill every process left in its group: Celery's beat and pool processes too."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a child in a session of its own, told to stop should `gradehook run` die.

    Its own session keeps a terminal's Ctrl-C, or a SIGTERM to `gradehook run`'s group, from
    reaching it beside the signal `gradehook run` passes on: gunicorn and Celery would take the
    second one for an order to stop at once, and kill the runs in progress.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return subprocess.Popen(argv, env=env, start_new_session=True,
                            preexec_fn=lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM))


def _supervise(children: list[Child], *, grace: float, workspace: Path) -> int:
    """Run until a stop is asked (SIGINT, SIGTERM, SIGHUP) or a child exits; stop them all.

    The first stop passes SIGTERM on to each child once: gunicorn stops, Celery's worker stops
    taking work and lets the runs in progress finish. After `grace` seconds, or at a second
    stop, the worker stops its runs and hands the messages it holds back (Child.stop_now). A
    child still there STOP_NOW_SECONDS later, or at a third stop, is killed with its whole
    process group. Return 0 when a stop was asked and every child stopped by itself, else 1.
    """
    stops: list[int] = []

    def stop(signum, _frame):
        stops.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    next_look = time.monotonic()
    while not stops:
        exited = next((child for child in children if child.exited()), None)
        if exited is not None:
            failure = NOT_SERVING if exited.serves and not exited.ready else EXITED
            _say(failure.format(name=exited.name, code=exited.exit_code(),
                                url=exited.url if exited.serves else ""), err=True)
            break
        for child in children:
            if child.serves and not child.ready and time.monotonic() >= next_look:
                next_look = time.monotonic() + READY_POLL_SECONDS
                child.ready = child.check_ready()
                if child.ready:
                    _say(RUNNING.format(url=child.url))
        time.sleep(POLL_SECONDS)
    asked, stopping_since = bool(stops), time.monotonic()
    in_progress = sum(w.held for w in run_workspaces(workspace))
    _say(STOPPING_RUNS.format(grace=grace, count=in_progress,
                              runs="run" if in_progress == 1 else "runs")
         if in_progress else STOPPING)
    for child in children:
        if not child.exited():
            child.signal(signal.SIGTERM)
    if not _wait_for(children, stops, grace):
        _say(STOPPING_NOW)
        for child in children:
            if not child.exited():
                child.stop_now()
        _wait_for(children, stops, STOP_NOW_SECONDS)
    killed = [child for child in children if not child.exited()]
    for child in children:
        child.kill_group()
    for child in killed:
        _say(KILLED.format(name=child.name, seconds=time.monotonic() - stopping_since),
             err=True)
    for child in children:
        child.process.wait()
    return 0 if asked and not killed else 1


def _wait_for(children: list[Child], stops: list[int], seconds: float) -> bool:
    """Wait until every child has exited (True), or for the seconds or another stop (False)."""
    seen, deadline = len(stops), time.monotonic() + seconds
    while not all(child.exited() for child in children):
        if len(stops) > seen or time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _listens(pid: int, port: int) -> bool:
    """Tell whether a process holds a TCP socket listening on a port."""
    sockets = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    sockets.add(target[len("socket:["):-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            # "sl local_address rem_address st ... inode": 0A is LISTEN.
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port \
                        and fields[9] in sockets:
                    return True
    return False


def _say(text: str, err: bool = False) -> None:
    """Print a line for whoever started `gradehook run`; a terminal that went away is ignored."""
    with contextlib.suppress(OSError):
        click.echo(text, err=err)
