"""A gradehook under test for fault injection: stand-in, web process, workers started at will."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pipeline.config import Settings
from pipeline.ledger.models import RunStatus, TestRun
from tests.e2e.scenario import ASSIGNMENT, REFERENCE, SECRET, STUDENT, TEST_YAML, Scenario, \
    solution
from tests.infra.servers import PrivatePostgres, PrivateRedis
from tests.infra.ledger import migrated_resources
from tests.infra.ports import free_port
from tests.infra.processes import gradehook_argv, stop_process_group, wait_for, web_process, \
    worker_process
from tests.support.gitlab_standin import DEVELOPER, FaultPlan, GitLabStandIn
from tests.webhooks.deliveries import payload_of

FINAL_STATES = {"success", "failed"}
# Commit states in the order GitLab shows a pipeline: a later post never ranks lower.
STATE_RANK = {"pending": 0, "running": 1, "success": 2, "failed": 2}
# Short task limits make the broker's visibility timeout short too: a lost worker's run is
# handed out again within a minute instead of half an hour.
SHORT_LIMITS = {"student_testing_soft_time_limit": 15.0, "student_testing_time_limit": 20.0,
                "submission_processing_soft_time_limit": 15.0,
                "submission_processing_time_limit": 20.0, "max_attempts": 2}
RECONCILE_EVERY_SECOND = {**SHORT_LIMITS, "reconcile_interval_seconds": 1.0}
# A worker's log once the sweep at its start is done.
START_SWEEP_DONE = re.compile(r"Task reconcile\[[^]]+\] succeeded")
# Students hand in by a merge request from this branch into the course's submission branch.
TARGET = "submissions"
BRANCH = "week1-done"


def submission_course(**assignment) -> dict:
    """Return the course whose students hand the assignment (with these settings) in to the
    submission branch."""
    return {"name": "prog1", "student_projects": ["prog1-2026/students/"],
            "reference_project": REFERENCE, "discover_assignments": False,
            "submission_branch": TARGET,
            "assignments": [{"directory": ASSIGNMENT, **assignment}]}


def student_with_merge_request(gitlab: GitLabStandIn, git_server,
                               number: int) -> tuple[int, str, int, str]:
    """Give student `number` a project with a solution and a merge request into the submission
    branch; return (project id, path, merge request iid, head SHA)."""
    path = f"prog1-2026/students/s{number:02d}"
    template = git_server.commit(path, {"README.md": "Programming 1\n"})
    user = gitlab.add_user(f"s{number:02d}")
    project = gitlab.add_project(path, branches={"main": template, TARGET: template},
                                 members={user.id: DEVELOPER})
    sha = git_server.commit(path, solution("hello"), branch=BRANCH)
    gitlab.set_branch(project["id"], BRANCH, sha)
    mr = gitlab.add_merge_request(project["id"], BRANCH, TARGET, author=user)
    return project["id"], path, mr["iid"], sha


def merge_request_hook(project_id: int, path: str, iid: int, sha: str,
                       action: str = "open") -> dict:
    """Return GitLab's hook of a student's merge request into the submission branch, opened
    (or reopened) at a commit."""
    payload = payload_of("merge_request_hook__open_into_submission_branch")
    payload["project"].update(id=project_id, path_with_namespace=path)
    payload["object_attributes"].update(iid=iid, source_branch=BRANCH, target_branch=TARGET,
                                        source_project_id=project_id,
                                        target_project_id=project_id, action=action)
    payload["object_attributes"]["last_commit"]["id"] = sha
    return payload


def comment_writes(gitlab: GitLabStandIn, project_id: int, iid: int) -> list[str]:
    """Return the comment bodies GitLab took for a merge request, in order."""
    return [r.json["body"] for r in gitlab.requests_to(
        "POST", rf"/projects/{project_id}/merge_requests/{iid}/notes$")
        + gitlab.requests_to("PUT", rf"/projects/{project_id}/merge_requests/{iid}/notes/\d+$")
        if 200 <= r.status < 300]


def greeting_of(index: int) -> str:
    """Return the greeting of delivery `index`: even ones are right, odd ones are not."""
    return "hello" if index % 2 == 0 else f"hi {index}"


def expected_status(index: int) -> RunStatus:
    """Return the status the run of delivery `index` must end in."""
    return RunStatus.PASSED if index % 2 == 0 else RunStatus.FAILED


def slow_solution(greeting: str, seconds: float) -> dict[str, str]:
    """Return a solution whose program sleeps inside the sandbox before setting its values."""
    files = solution(greeting)
    path = f"{ASSIGNMENT}/hello.py"
    files[path] = f"import time\ntime.sleep({seconds})\n" + files[path]
    return files


def deliver_numbered(service: FaultService, deliveries: dict[int, tuple[str, str]], index: int,
                     seconds: float) -> None:
    """Deliver student `index`'s slow solution and note (sha, run id) under its index."""
    sha, answer = service.deliver(f"student-{index}", slow_solution(greeting_of(index), seconds),
                                  key=f"delivery-{index}")
    run_id, = answer["runs"]
    deliveries[index] = (sha, run_id)


def deliver_after_start_sweep(service: FaultService, deliveries: dict[int, tuple[str, str]],
                              seconds: float) -> tuple[str, str]:
    """Once the sweep at the worker's start has passed (it reports every ended run GitLab lacks,
    holding a worker process while it stores its state), deliver student 0's slow solution and
    return its (sha, run id)."""
    log = service.logs / "worker.log"
    wait_for(lambda: START_SWEEP_DONE.search(log.read_text()), timeout=60,
             what="the sweep at the worker's start")
    deliver_numbered(service, deliveries, 0, seconds=seconds)
    return deliveries[0]


def wait_for_tests_stage(service: FaultService, run_id: str) -> None:
    """Wait until a run has reached its tests (fetched, sandbox ready)."""
    wait_for(lambda: service.run(run_id).stage == "tests", timeout=60,
             what="the run to reach its tests")


def assert_each_graded_once(service: FaultService, deliveries: dict[int, tuple[str, str]]) -> None:
    """Check that each delivery (index -> (sha, run id)) made one run, graded once as expected."""
    for index, (sha, run_id) in sorted(deliveries.items()):
        expected = expected_status(index)
        assert (index, service.run(run_id).status) == (index, expected)
        assert [run.id for run in service.runs_of(sha)] == [run_id]
        finals = [state for state in service.posted_states(sha) if state in FINAL_STATES]
        assert (index, finals) == \
            (index, ["success" if expected is RunStatus.PASSED else "failed"])


@contextlib.contextmanager
def final_status_held(service: FaultService, run_id: str) -> Iterator[None]:
    """Once a run reaches its tests, hold GitLab's answer to its next (final) commit status
    while the block runs (a test stops the database or the worker meanwhile), then fail it."""
    wait_for_tests_stage(service, run_id)
    held = threading.Event()
    final = service.gitlab.inject_faults(FaultPlan(
        status=502, every=1, hold=held, method="POST", path_pattern=r"/statuses/"))
    assert final.arrived.wait(60), "the final status was never posted"
    try:
        yield
    finally:
        held.set()
        service.gitlab.clear_faults()


@dataclass
class FaultService:
    """A running web process and stand-in; workers and the scheduler are started by each test."""

    scenario: Scenario
    config: Path
    settings: Settings
    logs: Path
    broker: PrivateRedis

    @property
    def gitlab(self) -> GitLabStandIn:
        """Return the GitLab stand-in."""
        return self.scenario.gitlab

    def worker(self, name: str, concurrency: int = 1):
        """Return a context manager running a worker that logs to <name>.log."""
        return worker_process(self.config, log_path=self.logs / f"{name}.log",
                              concurrency=concurrency)

    @contextlib.contextmanager
    def beat(self) -> Iterator[subprocess.Popen]:
        """Run the scheduler, which sends the reconciler on its interval, until the block ends."""
        with open(self.logs / "beat.log", "ab") as log:
            process = subprocess.Popen(gradehook_argv(self.config, "beat"), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            stop_process_group(process)

    def deliver(self, branch: str, files: dict[str, str], *, key: str, timeout: float = 60,
                sign: Callable[[bytes], dict[str, str]] | None = None) -> tuple[str, dict]:
        """Push a commit and deliver its hook (deliver_hook); return (commit SHA, the answer)."""
        sha = self.scenario.git.commit(STUDENT, files, branch=branch)
        before = self.gitlab.branches(self.scenario.project_id).get(branch)
        self.gitlab.set_branch(self.scenario.project_id, branch, sha)
        return sha, self.deliver_hook("Push Hook", self._push_payload(branch, before, sha, files),
                                      key=key, timeout=timeout, sign=sign)

    def deliver_hook(self, event: str, payload: dict, *, key: str, timeout: float = 60,
                     sign: Callable[[bytes], dict[str, str]] | None = None) -> dict:
        """Deliver a hook, sending it again while gradehook answers 503, as GitLab does; return
        the 2xx answer. It carries the secret token, or the headers `sign(body)` returns."""
        body = json.dumps(payload).encode()
        credentials = sign(body) if sign else {"X-Gitlab-Token": SECRET, "Idempotency-Key": key}
        return wait_for(lambda: self._send(event, body, credentials), timeout=timeout,
                        interval=0.5, what=f"a 2xx answer to delivery {key}")

    def run(self, run_id: str) -> TestRun:
        """Return a run as the ledger has it now."""
        with self.scenario.resources.sessions() as session:
            return session.get(TestRun, run_id)

    def runs_of(self, sha: str) -> list[TestRun]:
        """Return every run of a commit."""
        with self.scenario.resources.sessions() as session:
            return list(session.query(TestRun).filter(TestRun.commit_sha == sha))

    def wait_ended(self, run_ids: list[str], timeout: float) -> None:
        """Wait until every run has a final status and GitLab shows the end of its course.

        A run superseded or cancelled before GitLab ever showed it gets no status at all; one
        that was shown ends as `canceled`.
        """
        def reported(run: TestRun) -> bool:
            if run.status in (RunStatus.SUPERSEDED, RunStatus.CANCELLED):
                return run.reported_status in (None, "canceled")
            return run.reported_status in FINAL_STATES

        def ended() -> bool:
            runs = [self.run(run_id) for run_id in run_ids]
            return all(run.status.final and reported(run) for run in runs)
        wait_for(ended, timeout=timeout, interval=0.2,
                 what=f"{len(run_ids)} run(s) to end and be reported")

    def posted_states(self, sha: str) -> list[str]:
        """Return the commit states GitLab accepted for a commit, in the order they arrived."""
        return self.scenario.states(sha)

    def _push_payload(self, branch: str, before: str | None, sha: str,
                      files: dict[str, str]) -> dict:
        """Return GitLab's push hook of one commit to a branch of the student's project."""
        scenario = self.scenario
        payload = payload_of("push_hook__assignment_commits")
        payload.update(ref=f"refs/heads/{branch}", before=before or "0" * 40, after=sha,
                       checkout_sha=sha, project_id=scenario.project_id, total_commits_count=1)
        payload["project"].update(id=scenario.project_id, path_with_namespace=STUDENT)
        payload["commits"] = [{**payload["commits"][0], "id": sha, "added": [],
                               "modified": sorted(files), "removed": []}]
        return payload

    def _send(self, event: str, body: bytes, credentials: dict[str, str]) -> dict | None:
        """Deliver a hook once; return the answer, or None when gradehook answered 503."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.scenario.port}/webhooks/gitlab", data=body,
            headers={"Content-Type": "application/json", "X-Gitlab-Event": event,
                     **credentials}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                return None
            raise
        except (urllib.error.URLError, ConnectionError):
            return None


@contextlib.contextmanager
def fault_service(tmp_path: Path, service_settings, git_server, monkeypatch,
                  extra: dict | None = None, postgres: PrivatePostgres | None = None,
                  redis_password: str | None = None) -> Iterator[FaultService]:
    """Seed the stand-in and git, write the configuration and run the web process.

    The broker is a redis-server of the test's own (restartable, and no other test's worker
    can take its messages); the ledger is the test's database, or a private cluster if given.
    """
    broker = PrivateRedis(tmp_path, password=redis_password)
    broker.start()
    for name, value in {**broker.env(), **(postgres.env() if postgres else {})}.items():
        monkeypatch.setenv(name, value)
    try:
        with GitLabStandIn() as gitlab:
            main_sha = git_server.commit(STUDENT, {"README.md": "mine\n"})
            project = gitlab.add_project(STUDENT, branches={"main": main_sha})
            git_server.commit(REFERENCE, {**solution("hello"),
                                          f"{ASSIGNMENT}/test.yaml": TEST_YAML})
            port = free_port()
            config, settings = service_settings(_merged({
                "server": {"port": port},
                "gitlab": {"url": gitlab.url, "token": gitlab.bot.token,
                           "clone_base": git_server.base_url, "webhook_secret": SECRET},
                "courses": [{"name": "prog1", "student_projects": ["prog1-2026/students/"],
                             "reference_project": REFERENCE, "discover_assignments": False,
                             "assignments": [{"directory": ASSIGNMENT}]}]}, extra or {}))
            resources = migrated_resources(settings)
            logs = tmp_path / "logs"
            logs.mkdir()
            with web_process(config, port, log_path=logs / "web.log"):
                yield FaultService(Scenario(gitlab, git_server, project["id"], port, resources),
                                   config, settings, logs, broker)
    finally:
        broker.stop()


def _merged(base: dict, extra: dict) -> dict:
    """Return base with extra's sections merged in (a table's keys one by one)."""
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return merged
