"""`gradehook worker status` and `worker test-job --wait` against a real worker."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

from click.testing import Result
import pytest

from pipeline.ledger.models import RunStatus, TestRun, utcnow
from tests.cli.commands import ASSIGNMENT, COURSE, commit_reference, gradehook, hello
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.ports import free_port
from tests.infra.processes import wait_for, worker_process
from tests.support.gitlab_standin import GitLabStandIn


def test_status_without_workers_says_so_and_fails(service_settings):
    config, settings = service_settings({"api": {"inspect_timeout_seconds": 0.2}})
    migrated_resources(settings)

    result = gradehook(config, "worker", "status")

    assert result.exit_code == 1
    assert result.output == "runs: 0 queued; 0 running\nno worker answered within 0.2 s\n"


def test_status_says_first_how_many_runs_wait_and_run_and_how_long_the_oldest_waited(
        service_settings):
    """Before, `worker status` showed the workers alone: whether grading kept up at a deadline
    took a query of the ledger by hand."""
    config, settings = service_settings({"api": {"inspect_timeout_seconds": 0.2}})
    resources = migrated_resources(settings)
    now = utcnow()
    queue_run(resources, commit_sha="a" * 40, queued_at=now - dt.timedelta(minutes=7, seconds=3))
    queue_run(resources, commit_sha="b" * 40, queued_at=now)
    queue_run(resources, commit_sha="c" * 40, status=RunStatus.RUNNING)
    queue_run(resources, commit_sha="d" * 40, status=RunStatus.PASSED)

    result = gradehook(config, "worker", "status")

    first, second = result.output.splitlines()
    assert re.fullmatch(r"runs: 2 queued, the oldest waiting 7 min 0[3-9] s; 1 running", first)
    assert second == "no worker answered within 0.2 s"


def test_status_with_the_ledger_out_of_reach_still_shows_the_workers(
        service_settings, monkeypatch):
    monkeypatch.setenv("POSTGRES_PORT", str(free_port()))
    config, _ = service_settings({"api": {"inspect_timeout_seconds": 0.2}})

    result = gradehook(config, "worker", "status")

    assert result.exit_code == 1
    assert result.output == ("runs: unknown, database unavailable: OperationalError\n"
                             "no worker answered within 0.2 s\n")


def test_the_installed_command_exits_with_the_commands_code(service_settings):
    """The `gradehook` entry point (not click's test runner) hands the code to the shell."""
    config, settings = service_settings({"api": {"inspect_timeout_seconds": 0.2}})
    migrated_resources(settings)

    done = subprocess.run([sys.executable, "-m", "gradehook", "--config", str(config), "worker",
                           "status"], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout, done.stderr) == (
        1, "runs: 0 queued; 0 running\n", "no worker answered within 0.2 s\n")


@pytest.mark.slow
def test_status_shows_the_worker_and_test_jobs_exit_with_their_outcome(
        tmp_path, service_settings, git_server):
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    commit_reference(git_server)
    right = git_server.commit("students/alice", hello("hello"))
    wrong = git_server.commit("students/alice", hello("bye"))
    send = ("worker", "test-job", "--task=student_testing", "--project", "students/alice",
            "--directory", ASSIGNMENT)
    job = (*send, "--wait", "--timeout", "120", "--sha")
    with worker_process(config, log_path=tmp_path / "worker.log"):
        status = wait_for(lambda: _idle_status(config), timeout=60,
                          what="the worker to answer, its start-up sweep over")
        passed = gradehook(config, *job, right)
        failed = gradehook(config, *job, wrong)
        missing = gradehook(config, *job, "d" * 40)
        slow_sha = git_server.commit("students/alice", {
            f"{ASSIGNMENT}/hello.py": "import time\ntime.sleep(3)\ngreeting = 'hello'\n"})
        slow = gradehook(config, *send, "--sha", slow_sha)
        slow_run = slow.output.split()[1]
        # The ledger is read before the worker is asked: the run is claimed a moment after
        # its task is active.
        busy = wait_for(lambda: slow_run in (r := gradehook(config, "worker", "status")).output
                        and r.output.startswith("runs: 0 queued; 1 running\n") and r,
                        timeout=30, what="the worker to list the running job")
        wait_for(lambda: _run(resources, slow_run).status.final, timeout=60,
                 what="the slow job to end")

    backlog, _, header, row = status.output.splitlines()
    assert backlog == "runs: 0 queued; 0 running"
    assert header.split() == ["WORKER", "QUEUES", "ACTIVE", "RESERVED"]
    name, queues, active, reserved = row.split()
    assert name.startswith("gradehook@")
    assert queues == "default,high_priority,low_priority,notify"
    assert (active, reserved) == ("0", "0")
    lines = busy.output.splitlines()
    assert lines[3].split()[2:] == ["1", "0"]
    assert lines[5].split() == ["WORKER", "STATE", "TASK", "TASK", "ID", "RUN"]
    assert lines[6].split() == [name, "active", "student_testing",
                                _run(resources, slow_run).celery_task_id, slow_run]
    outcomes = {}
    for result, exit_code in ((passed, 0), (failed, 1), (missing, 2)):
        first, *_, last = result.output.splitlines()
        run_id = first.split()[1]
        run = _run(resources, run_id)
        outcomes[run.commit_sha] = run.status
        assert result.exit_code == exit_code, result.output
        assert first == f"run {run_id} queued as task {run.celery_task_id}"
        reason = f" ({run.status_reason})" if run.status_reason else ""
        assert last == f"run {run_id}: {run.status.value}{reason}"
        assert run.kind == "cli"
    assert outcomes == {right: RunStatus.PASSED, wrong: RunStatus.FAILED,
                        "d" * 40: RunStatus.ERROR}


def test_test_job_refuses_bad_input_before_queueing(service_settings):
    config, _ = service_settings({"courses": [COURSE]})

    job = ("worker", "test-job", "--project")
    bad_sha = gradehook(config, *job, "students/alice", "--sha", "abc", "--directory", ASSIGNMENT)
    bad_path = gradehook(config, *job, "students/al ice", "--sha", "a" * 40,
                         "--directory", ASSIGNMENT)
    bad_directory = gradehook(config, *job, "students/alice", "--sha", "a" * 40,
                              "--directory", "../etc")
    stranger = gradehook(config, *job, "other/alice", "--sha", "a" * 40,
                         "--directory", ASSIGNMENT)

    assert bad_sha.exit_code == bad_path.exit_code == bad_directory.exit_code == \
        stranger.exit_code == 2
    # Each refusal names the option it refuses, as the API names the field.
    assert "Error: Invalid value for '--sha': not a full commit SHA: 'abc'\n" in bad_sha.output
    assert ("Error: Invalid value for '--project': not a GitLab project path: 'students/al ice'\n"
            in bad_path.output)
    assert ("Error: Invalid value for '--directory': not an assignment directory: '../etc'\n"
            in bad_directory.output)
    assert "other/alice is not a student project of any configured course" in stranger.output


def test_test_job_refuses_what_the_api_refuses_before_queueing(service_settings, git_server):
    """An unknown assignment or a project GitLab lacks is refused naming the option, as the API
    refuses them, instead of a run that posts a failed status or retries its fetch for good."""
    with GitLabStandIn() as gitlab:
        gitlab.add_project("students/alice")
        discovering = {**COURSE, "name": "prog2", "student_projects": ["prog2/"],
                       "discover_assignments": True}
        config, settings = service_settings({
            "gitlab": {"url": gitlab.url, "token": gitlab.bot.token},
            "courses": [COURSE, discovering]})
        resources = migrated_resources(settings)
        job = ("worker", "test-job", "--sha", "a" * 40, "--project")

        typo = gradehook(config, *job, "students/alice", "--directory", "week1/nope")
        misspelt = gradehook(config, *job, "students/alice", "--directory", "week1/helo")
        not_found = gradehook(config, *job, "prog2/bob", "--directory", "week1/later")
        missing = gradehook(config, *job, "students/zed", "--directory", ASSIGNMENT)

    assert typo.exit_code == misspelt.exit_code == not_found.exit_code == missing.exit_code == 2
    assert ("Invalid value for '--directory': week1/nope is not an assignment of course "
            "prog1\n") in typo.output
    assert ("Invalid value for '--directory': week1/helo is not an assignment of course "
            "prog1; did you mean week1/hello?\n") in " ".join(misspelt.output.split("\n  "))
    assert ("Invalid value for '--directory': week1/later is not an assignment of course prog2 "
            "(assignments found in the reference are those of the last reconciler sweep: "
            "`gradehook reconcile` looks again)\n") in " ".join(not_found.output.split("\n  "))
    assert "Invalid value for '--project': GitLab has no project students/zed\n" in \
        missing.output
    with resources.sessions() as session:
        assert session.query(TestRun).count() == 0


def test_test_job_records_the_run_on_the_branch_it_names(service_settings):
    """As the API's `branch`: the run is the branch's, so its badge follows; a run of the
    commit on another branch does not answer for it; a malformed name is refused."""
    with GitLabStandIn() as gitlab:
        gitlab.add_project("students/alice")
        config, settings = service_settings({
            "gitlab": {"url": gitlab.url, "token": gitlab.bot.token}, "courses": [COURSE]})
        resources = migrated_resources(settings)
        job = ("worker", "test-job", "--sha", "a" * 40, "--project", "students/alice",
               "--directory", ASSIGNMENT)

        on_main = gradehook(config, *job, "--branch", "main")
        on_feature = gradehook(config, *job, "--branch", "feature/x")
        again = gradehook(config, *job, "--branch", "feature/x")
        bad = gradehook(config, *job, "--branch", "-rf")

    runs = [_run(resources, result.output.split()[1]) for result in (on_main, on_feature, again)]
    assert [run.ref for run in runs] == ["main", "feature/x", "feature/x"]
    assert runs[0].id != runs[1].id == runs[2].id
    assert again.output.startswith(f"run {runs[1].id} already grades this commit")
    assert bad.exit_code == 2
    assert ("Error: Invalid value for '--branch': not a valid branch name: '-rf': it or a part of "
            "it between slashes starts with '-', which would read as an option\n"
            in " ".join(bad.output.split("\n  ")))


def _idle_status(config) -> Result | None:
    """Return `worker status` once a worker answers holding no task.

    A worker sends the reconciler's sweep as it gets ready: on a busy host the sweep may still
    run (a task listed below the worker's row) when the worker first answers.
    """
    result = gradehook(config, "worker", "status")
    return result if result.exit_code == 0 and len(result.output.splitlines()) == 4 else None


def _run(resources, run_id: str) -> TestRun:
    with resources.sessions() as session:
        return session.get(TestRun, run_id)
