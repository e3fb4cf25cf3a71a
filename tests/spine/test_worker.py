"""A real worker on Redis and PostgreSQL consumes student_testing and records it in the ledger."""

from __future__ import annotations

import json
import shutil
import socket
import threading

import pytest
import sqlalchemy as sa

from pipeline import testing
from pipeline.broker_marker import waiting_messages
from pipeline.celery_app import create_celery
from pipeline.dispatch import send_runs
from pipeline.ledger.models import RunStatus, TestRun
from pipeline.tasks.reporting import report_run
from tests.infra.ledger import migrated_resources, queue_run
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture
from webhooks.api.task_state import task_progress
from tests.infra.processes import wait_for, worker_process
from tests.infra.assignments import ONE_TEST
from tests.infra.badges import badge_texts
from tests.infra.gitrepos import git
from webhooks.app import create_app

HELLO = "greeting = %r\n"
TEST_YAML = ONE_TEST


def _idle(celery) -> bool:
    """Tell whether the workers that answer have no task running (a finished task's result,
    if any, is stored before the task leaves the active list)."""
    active = celery.control.inspect(timeout=1).active()
    return bool(active) and not any(active.values())


def _final_run(resources, run_id):
    with resources.sessions() as session:
        run = session.get(TestRun, run_id)
        return run if run.status.final else None


@pytest.mark.slow
def test_worker_consumes_student_testing(tmp_path, service_settings, git_server):
    config, settings = service_settings()
    resources = migrated_resources(settings)
    student_sha = git_server.commit("students/alice", {"week1/hello/hello.py": HELLO % "hi"})
    reference_sha = git_server.commit("staff/reference", {
        "week1/hello/hello.py": HELLO % "hello", "week1/hello/test.yaml": TEST_YAML})
    run = queue_run(resources, commit_sha=student_sha)
    celery = create_celery(settings)
    with worker_process(config, log_path=tmp_path / "worker.log"):
        assert send_runs(celery, resources.sessions, [(run.id, run.celery_task_id)]) == [run.id]
        done = wait_for(lambda: _final_run(resources, run.id), timeout=60, what="run to end")
        task = task_progress(resources.sessions, celery, run.celery_task_id, staff=True)
        wait_for(lambda: _idle(celery), timeout=30, what="the worker to finish the task")
    with resources.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT count(*) FROM celery_taskmeta "
                                            "WHERE task_id = :id"),
                                    {"id": run.celery_task_id}).scalar()
    assert done.attempts == 1
    assert (done.status, done.score, done.tests_passed, done.tests_total) == \
        (RunStatus.FAILED, 0.0, 0, 1)
    failing = done.report["tests"][0]["tests"][0]
    assert failing["details"].startswith(
        "E   AssertionError: Variable `greeting` has incorrect len, expected: 5, obtained 2")
    assert done.reference_sha == reference_sha
    assert done.started_at and done.cloned_at and done.finished_at and done.sent_at
    assert done.progress == 100 and done.stage == "done"
    # The worker took the message: the broker no longer marks it as waiting.
    assert waiting_messages(settings.broker_url, [run.celery_task_id]) == set()
    # The task's state is the run's, read from the ledger: Celery stores nothing for it.
    assert stored == 0
    assert (task.state, task.ready, task.status, task.percentage) == \
        ("SUCCESS", True, RunStatus.FAILED, 100)
    assert task.reached == ("queued", "init", "clone", "environment", "tests", "results", "done")


class SilentServer:
    """A TCP server that accepts connections and never answers: a git host that hangs."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self):
        while True:
            try:
                self.connections.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self):
        self.socket.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.slow
def test_time_limit_stops_the_run_and_records_error(tmp_path, service_settings):
    hanging = SilentServer()
    try:
        config, settings = service_settings({
            "gitlab": {"clone_base": hanging.url},
            "worker": {"student_testing_soft_time_limit": 1.0, "student_testing_time_limit": 20.0},
        })
        resources = migrated_resources(settings)
        run = queue_run(resources, commit_sha="a" * 40)
        with worker_process(config, log_path=tmp_path / "worker.log"):
            send_runs(create_celery(settings), resources.sessions,
                      [(run.id, run.celery_task_id)])
            done = wait_for(lambda: _final_run(resources, run.id), timeout=60,
                            what="run stopped by its time limit")
        assert hanging.connections, "the fetch never reached the hanging server"
    finally:
        hanging.close()
    assert done.status == RunStatus.ERROR
    assert done.status_reason == "stopped by the time limit of 1 s"
    assert done.cloned_at is None


@pytest.mark.slow
def test_a_run_waiting_for_another_attempt_shows_retry_with_the_reason(tmp_path,
                                                                       service_settings):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: every fetch fails, a failure of ours worth a retry
    config, settings = service_settings({"gitlab": {"clone_base": f"http://127.0.0.1:{port}"}})
    resources = migrated_resources(settings)
    run = queue_run(resources, commit_sha="a" * 40)
    celery = create_celery(settings)

    def waiting_for_retry():
        with resources.sessions() as session:
            found = session.get(TestRun, run.id)
            return found if found.status_reason else None

    with worker_process(config, log_path=tmp_path / "worker.log"):
        send_runs(celery, resources.sessions, [(run.id, run.celery_task_id)])
        waiting = wait_for(waiting_for_retry, timeout=60, what="the first attempt to fail")
        task = task_progress(resources.sessions, celery, run.celery_task_id, staff=True)

    assert waiting.status == RunStatus.RUNNING and waiting.attempts == 1
    assert waiting.status_reason.startswith("attempt 1 failed (fetching students/alice failed")
    assert "trying again in" in waiting.status_reason
    assert (task.state, task.ready, task.reason) == ("RETRY", False, waiting.status_reason)


@pytest.mark.slow
def test_a_students_nul_and_lone_surrogate_are_graded_and_stored(
        tmp_path, service_settings, git_server):
    # PostgreSQL stores neither in text or JSON; a student's program can produce both.
    config, settings = service_settings()
    resources = migrated_resources(settings)
    student_sha = git_server.commit("students/alice", {
        "week1/hello/hello.py": 'raise ValueError("bad\\x00value\\udc80")\n'})
    git_server.commit("staff/reference", {
        "week1/hello/hello.py": HELLO % "hello", "week1/hello/test.yaml": TEST_YAML})
    run = queue_run(resources, commit_sha=student_sha)
    celery = create_celery(settings)
    with worker_process(config, log_path=tmp_path / "worker.log"):
        send_runs(celery, resources.sessions, [(run.id, run.celery_task_id)])
        done = wait_for(lambda: _final_run(resources, run.id), timeout=60, what="run to end")
    assert (done.status, done.attempts, done.tests_passed, done.tests_total) == \
        (RunStatus.FAILED, 1, 0, 1)
    # The student sees the error, with one visible character standing in for each, and the
    # file by its place in the repository, not on the worker's host.
    assert "Execution of /week1/hello/hello.py failed, ERROR: bad\u2400value\ufffd" in \
        json.dumps(done.report, ensure_ascii=False)


LINTED = ONE_TEST + """\
    - type: linting
      name: Style
      file: hello.py
      tests:
        - name: flake8
"""


def test_a_linting_failure_names_its_output_by_the_repository_not_the_workspace(
        service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {
        "week1/hello/hello.py": HELLO % "hello", "week1/hello/test.yaml": LINTED})
    run = queue_run(resources, commit_sha=git_server.commit("students/alice", {
        "week1/hello/hello.py": "import os\n" + HELLO % "hello"}))

    testing.run_student_testing(resources, run.id, run.celery_task_id)

    lint = _final_run(resources, run.id).report["tests"][1]["tests"][0]
    assert lint["details"] == ("E   SyntaxError: 1 Syntax Error in file `hello.py` "
                               "(see: /week1/hello/output/Style-flake8-linting.txt)")


def test_a_diffed_run_shows_gitlab_its_assignment_only_when_the_commit_changed_it(
        service_settings, git_server, gitlab_standin):  # noqa: F811
    """Before, a merge request's run of an assignment it left alone (one is made for each of
    the course's) posted pending as it was queued and running as it started, then 'canceled':
    'Grading was cancelled: this push did not change week1/hello', a job of the merge
    request's pipeline."""
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token}})
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {
        "week1/hello/hello.py": HELLO % "hello", "week1/hello/test.yaml": TEST_YAML})
    base = git_server.commit("students/alice", {"week1/hello/hello.py": HELLO % "hi"})
    notes = git_server.commit("students/alice", {"notes.txt": "draft\n"}, branch="work")
    solved = git_server.commit("students/alice", {"week1/hello/hello.py": HELLO % "hello"},
                               branch="work")
    project = gitlab_standin.add_project("students/alice", branches={"main": base,
                                                                     "work": solved})

    def states(sha: str) -> list[str]:
        return [r.json["state"] for r in gitlab_standin.requests_to(
            "POST", rf"/projects/{project['id']}/statuses/{sha}$") if r.status == 201]

    def graded(sha: str) -> TestRun:
        run = queue_run(resources, commit_sha=sha, ref="work", base_branch="main",
                        needs_diff=True, project_id=project["id"])
        report_run(resources, run.id)  # as the intake asks for a queued run
        testing.run_student_testing(resources, run.id, run.celery_task_id,
                                    lambda run_id: report_run(resources, run_id))
        return _final_run(resources, run.id)

    left_alone = graded(notes)
    assert (left_alone.status, left_alone.status_reason, states(notes)) == \
        (RunStatus.CANCELLED, "this push did not change week1/hello", [])
    assert (graded(solved).status, states(solved)) == \
        (RunStatus.PASSED, ["pending", "running", "success"])


def _graded(resources, sha: str, ref: str, assignment: str, **fields) -> TestRun:
    """Queue a run of a commit, grade it as the worker does, reporting to GitLab; return it."""
    run = queue_run(resources, commit_sha=sha, ref=ref, assignment=assignment, **fields)
    report_run(resources, run.id)
    testing.run_student_testing(resources, run.id, run.celery_task_id,
                                lambda run_id: report_run(resources, run_id))
    return _final_run(resources, run.id)


def _two_assignment_push(service_settings, git_server, gitlab_standin):  # noqa: F811
    """Return (settings, resources, assignments, base, solved): a reference of two assignments
    and alice's project, whose branch `work` solves week2/hello only."""
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token}})
    resources = migrated_resources(settings)
    assignments = ("week1/hello", "week2/hello")
    git_server.commit("staff/reference", {
        path: text for assignment in assignments for path, text in (
            (f"{assignment}/hello.py", HELLO % "hello"), (f"{assignment}/test.yaml", TEST_YAML))})
    base = git_server.commit("students/alice", {"notes.txt": "draft\n"})
    solved = git_server.commit("students/alice", {"week2/hello/hello.py": HELLO % "hello"},
                               branch="work")
    return settings, resources, assignments, base, solved


def test_a_diffed_run_ending_before_its_diff_shows_one_error_for_the_push(
        service_settings, git_server, gitlab_standin):  # noqa: F811
    """Before, each run of a push diffed by the worker that could not fetch the commit posted a
    `failed` status of its own assignment ('gradehook/week1/hello', 'gradehook/week2/hello',
    each with its result page), though it could not know whether the push changed that
    assignment, and took the place of the branch's earlier grade of it in the merge request's
    comment (and its badge)."""
    settings, resources, assignments, base, solved = _two_assignment_push(
        service_settings, git_server, gitlab_standin)
    gone = "ab" * 20  # a commit the student's project does not have (a forced push removed it)
    project = gitlab_standin.add_project("students/alice", branches={"main": base,
                                                                     "work": solved})
    merge_request = gitlab_standin.add_merge_request(project["id"], "work", "main")

    def graded(sha: str, assignment: str, **fields) -> TestRun:
        return _graded(resources, sha, "work", assignment, project_id=project["id"], **fields)

    assert graded(solved, "week2/hello").status == RunStatus.PASSED
    comment = gitlab_standin.notes(project["id"], merge_request["iid"])[0]["body"]
    ended = [graded(gone, assignment, base_branch="main", needs_diff=True)
             for assignment in assignments]

    missing = ("the commit to grade is not in the student's project: commit "
               f"{gone} is not in project students/alice")
    assert [(run.status, run.status_reason) for run in ended] == [(RunStatus.ERROR, missing)] * 2
    statuses = [r.json for r in gitlab_standin.requests_to(
        "POST", rf"/projects/{project['id']}/statuses/{gone}$")]
    assert statuses == [{"state": "failed", "name": "gradehook", "ref": "work",
                         "description": f"Not graded: gradehook ran into a problem: {missing}"}]
    assert [note["body"] for note in gitlab_standin.notes(project["id"], merge_request["iid"])] \
        == [comment]
    badge = create_app(settings).test_client().get(
        f"/badges/{project['id']}/week2/hello.svg?ref=work")
    assert badge_texts(badge.data) == {"grade", "100%"}


def test_a_push_error_is_replaced_once_its_commit_is_graded(
        service_settings, git_server, gitlab_standin):  # noqa: F811
    """Before, the push-level `gradehook` failed status of diffed runs that could not fetch
    their commit stayed once the commit was graded after all (delivered again, regraded):
    only the assignments' statuses were posted, and GitLab kept the commit's pipeline failed.
    It is now replaced once by a `success`, which a later such run leaves alone."""
    _, resources, assignments, base, solved = _two_assignment_push(
        service_settings, git_server, gitlab_standin)
    bare = git_server.bare("students/alice")
    git("update-ref", "-d", "refs/heads/work", cwd=bare)  # a forced push took it away
    project = gitlab_standin.add_project("students/alice", branches={"main": base})

    def pushed(assignment: str) -> TestRun:
        return _graded(resources, solved, "work", assignment, project_id=project["id"],
                       base_branch="main", needs_diff=True)

    assert {pushed(assignment).status for assignment in assignments} == {RunStatus.ERROR}
    git("update-ref", "refs/heads/work", solved, cwd=bare)  # pushed back
    assert [pushed(assignment).status for assignment in assignments] == [
        RunStatus.CANCELLED, RunStatus.PASSED]
    assert pushed("week2/hello").status == RunStatus.PASSED  # graded once more: nothing new
    git("update-ref", "-d", "refs/heads/work", cwd=bare)  # taken away again, and a worker
    shutil.rmtree(resources.repositories.root)  # that never fetched it delivered it again
    assert pushed("week1/hello").status == RunStatus.ERROR  # the commit stays graded

    statuses = [(r.json["name"], r.json["state"], r.json["description"])
                for r in gitlab_standin.requests_to(
                    "POST", rf"/projects/{project['id']}/statuses/{solved}$")]
    push_level = [(state, description) for name, state, description in statuses
                  if name == "gradehook"]
    assert [state for state, _ in push_level] == ["failed", "success"]
    assert push_level[1][1] == \
        "This commit has since been graded: see each assignment's own status."
    assert [state for name, state, _ in statuses if name == "gradehook/week2/hello"] == \
        ["pending", "running", "success"] * 2
    assert all(name != "gradehook/week1/hello" for name, _, _ in statuses)
