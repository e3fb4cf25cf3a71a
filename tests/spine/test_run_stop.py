"""Stopping `gradehook run`: one signal to each process, runs finish or are graded again, and
no process of web or worker outlives it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from gradehook import supervisor
from pipeline.celery_app import create_celery
from pipeline.config import load_settings
from pipeline.dispatch import send_runs
from pipeline.ledger.models import RunStatus, TestRun
from tests.api.world import staff_digest
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.ports import free_port
from tests.infra.processes import alive, children, descendants, gradehook_argv, service_health, \
    stop_process_group, wait_for, write_config
from tests.infra.services import SERVICE_VARIABLES

pytestmark = pytest.mark.slow
ASSIGNMENT = "week1/hello"


def sleeping(seconds: float) -> dict[str, str]:
    """Return a student's solution whose program sleeps in the sandbox, then prints."""
    return {f"{ASSIGNMENT}/hello.py": f"import time\ntime.sleep({seconds})\nprint(1)\n"}


@contextlib.contextmanager
def gradehook_run(config: Path, log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """Run `gradehook run` in a session of its own (as a terminal would) until it is healthy.

    Whatever the test leaves running is stopped at the end, down to the last process of the
    process groups of its children.
    """
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(gradehook_argv(config, "run", "--port", str(port), *args),
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: (h := service_health(port)) and h["workers"] >= 1, timeout=120,
                 what="gradehook run to be healthy")
        yield process
    finally:
        groups, family = children(process.pid), descendants(process.pid)
        stop_process_group(process)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) in groups:
                    os.kill(pid, signal.SIGKILL)


def worker_main(run_process: subprocess.Popen) -> int:
    """Return the pid of the Celery worker `gradehook run` started."""
    return next(pid for pid in children(run_process.pid)
                if b"worker\x00start" in Path(f"/proc/{pid}/cmdline").read_bytes())


def grade_slowly(resources, settings, git_server, seconds: float) -> str:
    """Queue a run of a student commit whose program sleeps; wait until it grades; its id."""
    sha = git_server.commit("students/alice", sleeping(seconds))
    run = queue_run(resources, commit_sha=sha)
    send_runs(create_celery(settings), resources.sessions, [(run.id, run.celery_task_id)])
    graded = wait_for(lambda: (r := ledger_run(resources, run.id)).stage in ("tests", "done")
                      and r, timeout=90, what="the run to reach its tests")
    assert graded.stage == "tests", graded.status_reason
    return run.id


def graded_again_at_next_start(config: Path, resources, run_id: str, log: Path) -> None:
    """Start gradehook again and check the run it left is graded, in its second attempt."""
    with gradehook_run(config, log):
        wait_for(lambda: ledger_run(resources, run_id).status.final, timeout=90,
                 what="the abandoned run to be graded again")
    run = ledger_run(resources, run_id)
    assert (run.status, run.attempts) == (RunStatus.PASSED, 2)


def ledger_run(resources, run_id: str) -> TestRun:
    with resources.sessions() as session:
        return session.get(TestRun, run_id)


def reference(git_server) -> None:
    """Commit the course's reference: its program prints what the student's must."""
    git_server.commit("staff/reference", {f"{ASSIGNMENT}/hello.py": "print(1)\n"})


@pytest.fixture
def embedded(tmp_path: Path, git_server, monkeypatch):
    """The embedded default's config, settings and migrated ledger, and a log file path."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    reference(git_server)
    config = write_config(tmp_path / "etc", {
        "data_dir": str(tmp_path / "data"), "gitlab": {"clone_base": git_server.base_url},
        "api": {"staff_token_hashes": staff_digest()},
        "courses": [{"name": "prog1", "student_projects": ["students/"],
                     "reference_project": "staff/reference"}]})
    settings = load_settings(config)
    return config, settings, migrated_resources(settings), tmp_path / "run.log"


def test_a_stop_lets_the_run_in_progress_finish_signalling_each_process_once(
        tmp_path, git_server, embedded):
    config, settings, resources, log = embedded
    with gradehook_run(config, log) as process:
        run_id = grade_slowly(resources, settings, git_server, 6)
        family = descendants(process.pid)
        os.killpg(process.pid, signal.SIGTERM)  # a process manager stopping the whole group
        assert process.wait(timeout=60) == 0, log.read_text()[-4000:]

    run = ledger_run(resources, run_id)
    assert (run.status, run.attempts) == (RunStatus.PASSED, 1)
    assert [pid for pid in family if alive(pid)] == []
    text = log.read_text()
    assert "gradehook: stopping: waiting up to 60 s for 1 run in progress; Ctrl-C again to " \
           "stop now\n" in text
    # gunicorn and Celery each got one SIGTERM, from `gradehook run`: none stopped at once.
    assert text.count("Handling signal:") == 1 and "Handling signal: term" in text
    assert text.count("Warm shutdown (MainProcess)") == 1
    for stopped_at_once in ("Cold shutdown", "SIGKILL", "exited with 'signal", "stopping now"):
        assert stopped_at_once not in text


def test_a_second_ctrl_c_stops_at_once_and_the_run_is_graded_at_the_next_start(
        tmp_path, git_server, embedded):
    config, settings, resources, log = embedded
    with gradehook_run(config, log) as process:
        run_id = grade_slowly(resources, settings, git_server, 12)
        family = descendants(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        wait_for(lambda: "Ctrl-C again to stop now" in log.read_text(), timeout=10,
                 what="the stop to be announced")
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 0, log.read_text()[-4000:]

    assert [pid for pid in family if alive(pid)] == []
    assert "gradehook: stopping now; runs still in progress are graded again when the worker " \
           "next starts\n" in log.read_text()
    # Stopped at once: the run (its program sleeps 12 s) did not end.
    assert ledger_run(resources, run_id).status is RunStatus.RUNNING
    graded_again_at_next_start(config, resources, run_id, tmp_path / "again.log")


def test_a_worker_that_does_not_stop_is_killed_with_its_processes_and_its_run_regraded(
        tmp_path, service_settings, git_server):
    """On Redis, whose message of a killed worker waits out the visibility timeout (half an
    hour), the run is queued again as the next worker starts."""
    reference(git_server)
    config, settings = service_settings({"api": {"staff_token_hashes": staff_digest()}})
    resources = migrated_resources(settings)
    log = tmp_path / "run.log"
    with gradehook_run(config, log, "--stop-grace", "1") as process:
        run_id = grade_slowly(resources, settings, git_server, 12)
        family = descendants(process.pid)
        os.kill(worker_main(process), signal.SIGSTOP)  # hung: it takes no signal but SIGKILL
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 1

    assert [pid for pid in family if alive(pid)] == []
    text = log.read_text()
    assert "gradehook: stopping: waiting up to 1 s for 1 run in progress" in text
    assert "gradehook: stopping now;" in text
    assert re.search(r"gradehook: the worker process did not stop within \d+ s and was "
                     r"killed\n", text)
    assert ledger_run(resources, run_id).status is RunStatus.RUNNING
    graded_again_at_next_start(config, resources, run_id, tmp_path / "again.log")
    assert f"run {run_id}: its worker stopped while grading it; queued again" in \
        (tmp_path / "again.log").read_text()


@pytest.mark.timeout(60)
def test_each_stop_after_its_announcement_moves_the_stop_on_however_soon_it_comes(
        monkeypatch):
    """Before, a Ctrl-C between a stop's announcement and its wait counted as answered: the
    wait went on for the whole grace. Here each announcement is followed by a stop at once;
    the child exits by itself first and the other ignores SIGTERM, as a busy worker would."""
    said = []

    def say_and_stop_again(text, err=False):
        said.append(text)
        if text.startswith("gradehook: stopping"):
            os.kill(os.getpid(), signal.SIGINT)

    handlers = {signum: signal.getsignal(signum)
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    monkeypatch.setattr(supervisor, "_say", say_and_stop_again)
    exiting = supervisor.Child("web", subprocess.Popen(["true"], start_new_session=True))
    stubborn = supervisor.Child("worker", _ignoring_sigterm())
    try:
        assert supervisor.supervise([exiting, stubborn], grace=3600) == 1
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        stubborn.kill_group()
    # No Ctrl-C had been pressed when the web process exited: none is asked "again".
    assert said[:3] == [supervisor.EXITED.format(name="web", code=0),
                        "gradehook: stopping (Ctrl-C stops at once)",
                        supervisor.STOPPING_NOW]
    assert len(said) == 4 and re.fullmatch(
        r"gradehook: the worker process did not stop within \d+ s and was killed", said[3])


def _ignoring_sigterm() -> subprocess.Popen:
    """Start a process that ignores SIGTERM, once it does: a SIGTERM sent before its shell set
    the trap (a busy host) would end it, and the stop would need no kill."""
    process = subprocess.Popen(["sh", "-c", "trap '' TERM; echo ready; exec sleep 3600"],
                               stdout=subprocess.PIPE, start_new_session=True)
    assert process.stdout.readline() == b"ready\n"
    process.stdout.close()
    return process
