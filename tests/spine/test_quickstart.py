"""The embedded default: `gradehook run` serves and grades with no Redis or PostgreSQL."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipeline.celery_app import create_celery
from pipeline.config import load_settings
from pipeline.dispatch import send_runs
from pipeline.ledger.migrate import head_revision
from pipeline.ledger.models import TestRun
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.ports import free_port
from tests.infra.processes import alive, descendants, gradehook_argv, service_health, \
    stop_process_group, wait_for, worker_process, write_config
from tests.api.world import STAFF_TOKEN, staff_digest
from tests.infra.services import SERVICE_VARIABLES


@pytest.mark.slow
def test_run_serves_grades_and_stops_on_ctrl_c(tmp_path, git_server, monkeypatch):
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    runtime = tmp_path / "runtime"  # where gunicorn would put its per-user control socket
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    config = write_config(tmp_path, {
        "data_dir": str(tmp_path / "data"), "gitlab": {"clone_base": git_server.base_url},
        "api": {"staff_token_hashes": staff_digest()}})
    port = free_port()
    process = subprocess.Popen(gradehook_argv(config, "run", "--port", str(port)),
                               stdout=open(tmp_path / "run.log", "wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        health = wait_for(lambda: (h := service_health(port)) and h["workers"] >= 1 and h,
                          timeout=90, what="embedded service to be healthy")
        assert health["status"] == "healthy"
        assert health["broker"] == "filesystem" and health["broker_status"] == "up"
        assert list(runtime.iterdir()) == []

        settings = load_settings(config)
        assert settings.embedded and settings.database_url.startswith("sqlite")
        resources = migrated_resources(settings)
        sha = git_server.commit("students/alice", {"week1/hello/hello.py": "print(1)\n"})
        git_server.commit("staff/reference", {"week1/hello/hello.py": "print(1)\n"})
        run = queue_run(resources, commit_sha=sha)
        send_runs(create_celery(settings), resources.sessions, [(run.id, run.celery_task_id)])

        def finished():
            with resources.sessions() as session:
                return session.get(TestRun, run.id).finished_at
        wait_for(finished, timeout=60, what="embedded worker to finish the run")
        # Links name the port served (--port), not the configured default.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/runs/{run.id}",
                                         headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer)["result_url"] == \
                f"http://127.0.0.1:{port}/results/{run.id}"

        family = descendants(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert process.wait(timeout=45) == 0
        assert [pid for pid in family if alive(pid)] == []
    finally:
        stop_process_group(process)
    # Ctrl-C reached gunicorn and Celery once, through `gradehook run`: neither took a second
    # signal for an order to stop at once (gunicorn's SIGKILLed workers, Celery's cold shutdown).
    log = (tmp_path / "run.log").read_text()
    announced = f"gradehook running on http://127.0.0.1:{port} (Ctrl-C stops it)\n"
    assert log.count(announced) == 1
    assert log.index(f"Listening at: http://127.0.0.1:{port}") < log.index(announced)
    assert log.count("Handling signal:") == 1 and log.count("Warm shutdown (MainProcess)") == 1
    assert "gradehook: stopping (Ctrl-C again stops at once)\n" in log
    for stopped_at_once in ("Cold shutdown", "SIGKILL", "exited with 'signal"):
        assert stopped_at_once not in log


@pytest.mark.parametrize("command", ["run", "web", "flower"])
@pytest.mark.parametrize("port", ["0", "99999"])
def test_a_port_out_of_range_is_refused_naming_the_option(tmp_path, monkeypatch, command,
                                                          port):
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data")})

    # In a process of its own: `web` execs gunicorn when it accepts the port.
    done = subprocess.run(gradehook_argv(config, command, "--port", port), capture_output=True,
                          text=True, timeout=60)

    assert done.returncode == 2
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535." in \
        done.stderr


def test_a_negative_worker_concurrency_is_refused_naming_the_option(tmp_path, monkeypatch):
    """Before, Celery refused it in its own words, naming options gradehook does not have:
    "Usage: gradehook worker [OPTIONS] ... Invalid value for '-c' / '--concurrency': must be a
    non-negative integer or 'auto', got '-1'"."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data")})

    done = subprocess.run(gradehook_argv(config, "worker", "start", "--concurrency", "-1"),
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Usage: python -m gradehook worker start [OPTIONS]",
        "Try 'python -m gradehook worker start --help' for help.", "",
        "Error: Invalid value for '--concurrency': -1 is not in the range x>=0."]


@pytest.mark.slow
def test_run_on_a_port_in_use_says_so_instead_of_announcing_it(tmp_path, monkeypatch):
    """Another server on the port answers the health check too: it is not gradehook's."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data")})
    with _other_server() as port:
        done = subprocess.run(gradehook_argv(config, "run", "--port", str(port)),
                              capture_output=True, text=True, timeout=120)

    assert done.returncode == 1
    assert "gradehook running on" not in done.stdout
    assert re.search(rf"^gradehook: the web process could not serve on http://127.0.0.1:{port} "
                     r"\(exit code \d+; is the port in use\?\); stopping$", done.stderr, re.M)


@pytest.mark.parametrize("command", [["run", "--port", "1"], ["worker", "start"]])
@pytest.mark.parametrize("sandbox, complaint", [
    ({"python": "/opt/none/bin/python3"},
     "sandbox python '/opt/none/bin/python3': not an absolute path to an executable file"),
    pytest.param({"user": "no-such-sandbox-user"},
                 "sandbox user 'no-such-sandbox-user': no such user on this host",
                 marks=pytest.mark.skipif(os.geteuid() != 0, reason="only root switches users")),
])
def test_a_sandbox_no_run_could_use_stops_a_worker_at_start(tmp_path, monkeypatch, command,
                                                            sandbox, complaint):
    """Before, the worker started and every run ended as error after its five attempts."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data"), "sandbox": sandbox})

    done = subprocess.run(gradehook_argv(config, *command), capture_output=True, text=True,
                          timeout=60)

    assert (done.returncode, done.stderr) == (2, f"gradehook: configuration error: {complaint}\n")


def test_a_sandbox_setting_from_its_variable_is_said_to_come_from_it(tmp_path, monkeypatch):
    """Before, the complaint named no variable, and config.toml showed staff another value."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRADEHOOK_SANDBOX_PYTHON", "/opt/none/bin/python3")
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data")})

    done = subprocess.run(gradehook_argv(config, "worker", "start"), capture_output=True,
                          text=True, timeout=60)

    assert (done.returncode, done.stderr) == (2, (
        "gradehook: configuration error: sandbox python '/opt/none/bin/python3': not an absolute "
        "path to an executable file; it is set by GRADEHOOK_SANDBOX_PYTHON, which overrides "
        "config.toml\n"))


# The interpreter that runs gradehook, telling whoever asks that it is Python 3.8.
PYTHON_3_8 = """#!{python}
import sys
sys.version_info = (3, 8, 10, "final", 0)
exec(sys.argv[sys.argv.index("-c") + 1])
"""


@pytest.mark.parametrize("command", [["run", "--port", "1"], ["worker", "start"]])
def test_a_sandbox_python_older_than_the_runners_need_stops_a_worker_at_start(
        tmp_path, monkeypatch, command):
    """Before, the worker started and every pytest run ended with the watchdog's crash in the
    sandbox (os.pidfd_open is Python 3.9's): 'process ended before all tests ran'."""
    folder = Path(tempfile.mkdtemp(prefix="old-python-"))  # the sandbox user runs it
    folder.chmod(0o755)
    old_python = folder / "python3.8"
    old_python.write_text(PYTHON_3_8.format(python=os.path.realpath(sys.executable)))
    old_python.chmod(0o755)
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data"),
                                     "sandbox": {"python": str(old_python)}})

    try:
        done = subprocess.run(gradehook_argv(config, *command), capture_output=True, text=True,
                              timeout=60)
    finally:
        shutil.rmtree(folder)

    assert (done.returncode, done.stderr) == (2, (
        f"gradehook: configuration error: sandbox python '{old_python}': is Python 3.8.10, "
        "older than Python 3.9, the oldest that gradehook's programs in the sandbox run on\n"))


def test_a_host_that_refuses_bwrap_stops_a_worker_at_start(tmp_path, monkeypatch):
    """Before, the worker started and every run ended as error after its attempts: as on a
    host whose kernel or AppArmor refuses unprivileged user namespaces to bwrap."""
    refusing = Path(tempfile.mkdtemp(prefix="refusing-bwrap-"))  # the sandbox user runs it
    refusing.chmod(0o755)
    (refusing / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission "
                                    "denied' >&2\nexit 1\n")
    (refusing / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{refusing}:{os.environ['PATH']}")
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data")})

    try:
        done = _start_worker_without_services(config, monkeypatch)
    finally:
        shutil.rmtree(refusing)

    assert (done.returncode, done.stderr) == (2, (
        "gradehook: configuration error: sandbox: a program cannot run in it, so every run "
        "would end as error: the sandbox could not be set up: bwrap: setting up uid map: "
        "Permission denied; check that bubblewrap is installed and may create namespaces for "
        "the sandbox user 'nobody'\n"))


NO_FLAKE8 = ("gradehook: warning: the sandbox interpreter {python} has no flake8 module, which "
             "linting tests run: install flake8 into it (the `runtime` extra pins it) or set "
             "[sandbox] python to an interpreter that has it")


def test_a_sandbox_python_without_pytest_or_flake8_is_named_when_a_worker_starts(
        tmp_path, service_settings, bare_python):
    """Before, nothing said so until a run of an assignment without test.yaml, or with a
    linting test, ended as error after its attempts."""
    assert _start_warnings(tmp_path, service_settings, bare_python) == [
        f"gradehook: warning: the sandbox interpreter {bare_python} has no pytest module, which "
        "assignments without test.yaml run: install pytest into it (the `runtime` extra has it) "
        "or set [sandbox] python to an interpreter that has it",
        NO_FLAKE8.format(python=bare_python)]


def test_a_sandbox_python_with_a_pytest_older_than_8_is_named_when_a_worker_starts(
        tmp_path, service_settings, old_pytest_python):
    """Before, nothing said so until a run of an assignment without test.yaml ended as our
    error after its attempts."""
    assert _start_warnings(tmp_path, service_settings, old_pytest_python) == [
        NO_FLAKE8.format(python=old_pytest_python),
        f"gradehook: warning: the sandbox interpreter {old_pytest_python} has pytest 7.4.4, "
        "older than pytest 8, which assignments without test.yaml need: install pytest 8 or "
        "newer into it (the `runtime` extra has it) or set [sandbox] python to an interpreter "
        "that has it"]


def test_a_soft_time_limit_too_short_for_a_sandbox_stretched_on_a_busy_host_is_named(
        tmp_path, service_settings):
    """Before, nothing said so: on a busy host, where a program's time limit runs on by its
    wait for a CPU (up to twice the limit), a run whose program kept to its own limit ended as
    error at the soft limit."""
    config, settings = service_settings({
        "worker": {"student_testing_soft_time_limit": 300, "student_testing_time_limit": 330}})
    migrated_resources(settings)
    log = tmp_path / "worker.log"
    with worker_process(config, log_path=log) as worker:
        warning, = wait_for(lambda: _lines_with(log, "gradehook: warning: ", 1), timeout=60,
                            what="the warning in the worker's log")
        assert worker.poll() is None
    assert warning == (
        "gradehook: warning: worker.student_testing_soft_time_limit (300 s) is not above 724 s, "
        "the longest one sandbox of a run may take on a busy host with [sandbox] timeout_seconds "
        "180 s (a collection's program and its tests' calls, each up to that limit, stretched to "
        "twice by their wait for a CPU): such a run would end as error at the soft limit though "
        "its program kept to its own; raise the worker's time limits or lower timeout_seconds")


def _start_warnings(tmp_path: Path, service_settings, python: str) -> list[str]:
    """Start a worker whose sandbox runs python and return the two warnings it logs at start."""
    config, settings = service_settings({"sandbox": {"python": python}})
    migrated_resources(settings)
    log = tmp_path / "worker.log"
    with worker_process(config, log_path=log) as worker:
        warnings = wait_for(lambda: _lines_with(log, "gradehook: warning: ", 2), timeout=60,
                            what="both warnings in the worker's log")
        assert worker.poll() is None
    return warnings


def _lines_with(path: Path, prefix: str, count: int) -> list[str] | None:
    """Return the lines of a file starting with prefix once there are count of them."""
    lines = [line for line in path.read_text().splitlines() if line.startswith(prefix)]
    return lines if len(lines) >= count else None


@pytest.fixture
def shown_folder():
    """A folder inside the sandbox python's installation, which every sandbox shows."""
    folder = Path(tempfile.mkdtemp(prefix="gradehook-test-", dir=sys.prefix))
    yield folder
    shutil.rmtree(folder)


def _start_worker_without_services(config: Path, monkeypatch) -> subprocess.CompletedProcess:
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return subprocess.run(gradehook_argv(config, "worker", "start"), capture_output=True,
                          text=True, timeout=60)


def test_a_config_file_every_sandbox_could_read_stops_a_worker_at_start(
        tmp_path, monkeypatch, shown_folder):
    """Before, a config.toml inside the sandbox python's installation (or /usr/local/etc), as
    its owner left it readable, let every student's program read its GitLab token."""
    config = write_config(shown_folder, {"data_dir": str(tmp_path / "data")})
    config.chmod(0o644)

    done = _start_worker_without_services(config, monkeypatch)

    assert (done.returncode, done.stderr) == (2, (
        f"gradehook: configuration error: config file {config.resolve()}: lies in "
        f"{os.path.realpath(sys.prefix)}, which every sandbox shows, and the sandbox user may "
        "read it: any student's program could read the secrets it holds; move it elsewhere or "
        "make it unreadable to that user\n"))


def test_data_every_sandbox_could_read_stops_a_worker_at_start(
        tmp_path, monkeypatch, shown_folder):
    """Before, the worker started and refused every run, each after its attempts, one by one."""
    config = write_config(tmp_path, {"data_dir": str(shown_folder / "data")})

    done = _start_worker_without_services(config, monkeypatch)

    assert (done.returncode, done.stderr) == (2, (
        f"gradehook: configuration error: data_dir {shown_folder.resolve() / 'data'}: lies in "
        f"{os.path.realpath(sys.prefix)}, which every sandbox shows, so that any program could "
        "read it and all beside it (other runs, reference solutions, result channels); keep "
        "gradehook's data directory and the temporary folder out of the system folders and the "
        "sandbox python's installation\n"))


@contextlib.contextmanager
def _other_server():
    """Serve 200 with a JSON body to every GET on a free port, as another service would."""
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  the handler's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "healthy", "workers": 1}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_ledger_that_does_not_answer_stops_a_worker_at_start(tmp_path, monkeypatch):
    """Before, the worker started and its result store failed with a traceback every two
    seconds while it took runs it could not record."""
    closed_port = free_port()
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data"),
                                     "postgres": {"host": "127.0.0.1", "port": closed_port}})

    done = _start_worker_without_services(config, monkeypatch)

    assert (done.returncode, done.stderr) == (2, (
        "gradehook: the ledger database is unavailable: connection failed: connection to server "
        f"at \"127.0.0.1\", port {closed_port} failed: Connection refused\n"))


def test_a_ledger_without_its_tables_stops_a_worker_at_start_naming_the_upgrade(
        service_settings):
    """Before, the worker started on a database never upgraded (the wrong one, or a release
    deployed without `gradehook db upgrade`) and took runs it could not record."""
    config, _ = service_settings()  # a fresh PostgreSQL database: no tables

    done = subprocess.run(gradehook_argv(config, "worker", "start"), capture_output=True,
                          text=True, timeout=60)

    assert (done.returncode, done.stderr) == (2, (
        f"gradehook: the ledger's tables are at revision none (no tables), not {head_revision()}: "
        "run `gradehook db upgrade`\n"))


def test_dev_test_asks_for_the_browser_the_result_page_test_needs(tmp_path):
    """Before, `./dev test` on a fresh machine installed everything but chromium, and the result
    page's test then failed for want of it. Here no apt-get is on the PATH: it says what to
    install instead."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("dirname", "id", "git", "bwrap", "redis-server", "pg_ctlcluster"):
        (tools / tool).symlink_to(shutil.which(tool))
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "dev", checkout / "dev")

    done = subprocess.run(["/bin/bash", str(checkout / "dev"), "test"], capture_output=True,
                          text=True, env={"PATH": str(tools)}, timeout=120)

    assert (done.returncode, done.stderr) == (1, (
        "gradehook: missing system packages; install them with: sudo apt-get install -y "
        "chromium\n"))
