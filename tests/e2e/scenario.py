"""A student project, a reference, a GitLab stand-in and a running gradehook, for e2e tests."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.infra.gitrepos import GitServer
from tests.infra.ledger import migrated_resources
from tests.infra.ports import free_port
from tests.infra.processes import web_process, worker_process
from tests.support.gitlab_standin import GitLabStandIn
from tests.webhooks.deliveries import payload_of
from tests.infra.assignments import TWO_TESTS

SECRET = "e2e-webhook-secret"
STUDENT = "prog1-2026/students/alice"
REFERENCE = "prog1-2026/reference"
ASSIGNMENT = "week1/hello"
TEST_YAML = TWO_TESTS


def solution(greeting: str, count: int = 3) -> dict[str, str]:
    """Return the files of a solution setting `greeting` and `count`."""
    return {f"{ASSIGNMENT}/hello.py": f"greeting = {greeting!r}\ncount = {count}\n"}


@dataclass
class Scenario:
    """Everything an end-to-end test talks to."""

    gitlab: GitLabStandIn
    git: GitServer
    project_id: int
    port: int
    resources: object

    def push(self, branch: str, files: dict[str, str], *, key: str) -> tuple[str, dict]:
        """Commit to the student's branch and deliver GitLab's push hook; return (sha, answer)."""
        before = self.gitlab.branches(self.project_id).get(branch, "0" * 40)
        sha = self.git.commit(STUDENT, files, branch=branch)
        self.gitlab.set_branch(self.project_id, branch, sha)
        payload = payload_of("push_hook__assignment_commits")
        payload.update(ref=f"refs/heads/{branch}", before=before, after=sha, checkout_sha=sha,
                       project_id=self.project_id, total_commits_count=1)
        payload["project"].update(id=self.project_id, path_with_namespace=STUDENT)
        payload["commits"] = [{**payload["commits"][0], "id": sha, "added": [],
                               "modified": sorted(files), "removed": []}]
        return sha, self._deliver(payload, "Push Hook", key)

    def open_merge_request(self, branch: str, target: str, *, key: str) -> tuple[dict, dict]:
        """Open a merge request on GitLab and deliver its hook; return (merge request, answer)."""
        mr = self.gitlab.add_merge_request(self.project_id, branch, target)
        head = self.gitlab.branches(self.project_id)[branch]
        payload = payload_of("merge_request_hook__open_docs_example")
        payload["project"].update(id=self.project_id, path_with_namespace=STUDENT)
        payload["object_attributes"].update(
            iid=mr["iid"], source_branch=branch, target_branch=target, action="open",
            source_project_id=self.project_id, target_project_id=self.project_id,
            last_commit={**payload["object_attributes"]["last_commit"], "id": head})
        return mr, self._deliver(payload, "Merge Request Hook", key)

    def _deliver(self, payload: dict, event: str, key: str) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/gitlab", data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "X-Gitlab-Event": event,
                     "X-Gitlab-Token": SECRET, "Idempotency-Key": key}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def states(self, sha: str, project_id: int | None = None) -> list[str]:
        """Return the states gradehook posted for a commit (of the student's project, or of
        another), in order."""
        return [r.json["state"] for r in self.gitlab.requests_to(
            "POST", rf"/projects/{project_id or self.project_id}/statuses/{sha}$")
            if r.status == 201]


@contextlib.contextmanager
def running_service(tmp_path: Path, service_settings, git_server: GitServer,
                    log_level: str = "INFO") -> Iterator[Scenario]:
    """Start the stand-in, web and worker processes on real Redis and PostgreSQL."""
    with GitLabStandIn() as gitlab:
        main_sha = git_server.commit(STUDENT, {"README.md": "mine\n"})
        project = gitlab.add_project(STUDENT, branches={"main": main_sha})
        git_server.commit(REFERENCE, {**solution("hello"), f"{ASSIGNMENT}/test.yaml": TEST_YAML})
        port = free_port()
        config, settings = service_settings({
            "log_level": log_level,
            "server": {"port": port},
            "gitlab": {"url": gitlab.url, "token": gitlab.bot.token,
                       "clone_base": git_server.base_url, "webhook_secret": SECRET},
            "courses": [{"name": "prog1", "student_projects": ["prog1-2026/students/"],
                         "reference_project": REFERENCE, "discover_assignments": False,
                         "assignments": [{"directory": ASSIGNMENT}]}]})
        resources = migrated_resources(settings)
        with worker_process(config, log_path=tmp_path / "worker.log"), \
                web_process(config, port, log_path=tmp_path / "web.log"):
            yield Scenario(gitlab, git_server, project["id"], port, resources)
