"""`gradehook run`'s supervision of its web and worker processes: start, watch, stop them."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from pipeline.housekeeping import grading_processes, run_workspaces

# How long `gradehook run` waits, after Ctrl-C, for the runs in progress to finish, then for
# processes told to stop at once; a process still there after both is killed.
STOP_GRACE_SECONDS = 60
STOP_NOW_SECONDS = 15
POLL_SECONDS = 0.1
HEALTH_PATH = "/api/tests-celery/health"
TCP_LISTEN = "0A"
# Seconds between looks at whether the web process serves, and the longest a look waits.
READY_POLL_SECONDS, READY_TIMEOUT_SECONDS = 0.5, 3.0
RUNNING = "gradehook running on {url} (Ctrl-C stops it)"
NOT_SERVING = ("gradehook: the web process could not serve on {url} (exit code {code}; is the "
               "port in use?); stopping")
# "again" only after a Ctrl-C: a stop because a process exited asks nothing of the user yet.
STOPPING = "gradehook: stopping (Ctrl-C {again}stops at once)"
STOPPING_RUNS = ("gradehook: stopping: waiting up to {grace:g} s for {count} {runs} in progress; "
                 "Ctrl-C {again}to stop now")
AGAIN = "again "
STOPPING_NOW = ("gradehook: stopping now; runs still in progress are graded again when the "
                "worker next starts")
EXITED = "gradehook: the {name} process exited with code {code}; stopping"
KILLED = "gradehook: the {name} process did not stop within {seconds:.0f} s and was killed"


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
        return _http_url(*self.serves)

    def check_ready(self) -> bool:
        """Tell whether a web process serves: it holds the listening socket and answers.

        The health endpoint alone could be answered by whatever else holds the port.
        """
        host, port = self.serves
        if not _listens(self.process.pid, port):
            return False
        local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        probe = _http_url(local, port) + HEALTH_PATH
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


def start_child(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a child in a session of its own, told to stop should `gradehook run` die.

    Its own session keeps a terminal's Ctrl-C, or a SIGTERM to `gradehook run`'s group, from
    reaching it beside the signal `gradehook run` passes on: gunicorn and Celery would take the
    second one for an order to stop at once, and kill the runs in progress.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return subprocess.Popen(argv, env=env, start_new_session=True,
                            preexec_fn=lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM))


def supervise(children: list[Child], *, grace: float) -> int:
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
    # The stops each wait answers to are counted before its announcement: a Ctrl-C landing
    # between the announcement and the wait is a further stop, not one already answered.
    answered = min(len(stops), 1)
    in_progress = sum(w.held for child in children if child.workspace
                      for w in run_workspaces(child.workspace))
    again = AGAIN if asked else ""
    _say(STOPPING_RUNS.format(grace=grace, count=in_progress, again=again,
                              runs="run" if in_progress == 1 else "runs")
         if in_progress else STOPPING.format(again=again))
    for child in children:
        if not child.exited():
            child.signal(signal.SIGTERM)
    if not _wait_for(children, stops, grace, answered):
        answered = min(len(stops), answered + 1)
        _say(STOPPING_NOW)
        for child in children:
            if not child.exited():
                child.stop_now()
        _wait_for(children, stops, STOP_NOW_SECONDS, answered)
    killed = [child for child in children if not child.exited()]
    for child in children:
        child.kill_group()
    for child in killed:
        _say(KILLED.format(name=child.name, seconds=time.monotonic() - stopping_since),
             err=True)
    for child in children:
        child.process.wait()
    return 0 if asked and not killed else 1


def _wait_for(children: list[Child], stops: list[int], seconds: float, answered: int) -> bool:
    """Wait until every child has exited (True), or for the seconds or a stop beyond the first
    `answered` (False)."""
    deadline = time.monotonic() + seconds
    while not all(child.exited() for child in children):
        if len(stops) > answered or time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _http_url(host: str, port: int) -> str:
    """Return the base URL of a host and port, an IPv6 address in brackets."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


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
