"""A student project in real git and the GitLab stand-in, a real ledger and gradehook."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from pipeline.celery_app import create_celery
from pipeline.context import Resources
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, Submission, TestRun, utcnow
from pipeline.submissions.ledger import request_submission
from pipeline.submissions.processing import SubmissionOutcome, process_submission
from tests.infra.gitrepos import GitServer
from tests.infra.ledger import migrated_resources, queue_run
from tests.support.gitlab_standin import DEVELOPER, GitLabStandIn, StandInUser
from tests.infra.assignments import ONE_TEST

STUDENT = "students/alice"
REFERENCE = "staff/reference"
ASSIGNMENT = "week1/hello"
OTHER_ASSIGNMENT = "week2/loops"
TARGET = "submissions"
SUBMISSION_BRANCH = f"submission/{ASSIGNMENT}"
TEST_YAML = ONE_TEST


def solution(greeting: str, directory: str = ASSIGNMENT) -> dict[str, str]:
    """Return the files of a solution of an assignment."""
    return {f"{directory}/hello.py": f"greeting = {greeting!r}\n"}


@dataclass
class World:
    """Alice's project on both sides (git and GitLab), the reference, and gradehook's resources."""

    gitlab: GitLabStandIn
    git: GitServer
    resources: Resources
    celery: Celery
    project_id: int
    alice: StandInUser
    template_sha: str
    config: Path  # the config file a worker process reads

    def push(self, files: dict[str, str | None], branch: str = "main") -> str:
        """Commit files to alice's branch in git and move GitLab's branch there; return the SHA."""
        sha = self.git.commit(STUDENT, files, branch=branch)
        self.gitlab.set_branch(self.project_id, branch, sha)
        return sha

    def graded_run(self, sha: str, status: RunStatus = RunStatus.PASSED, *,
                   assignment: str = ASSIGNMENT, score: float | None = 1.0, passed: int = 1,
                   total: int = 1, collections: tuple[int, int] | None = None,
                   reason: str | None = None, received_at: dt.datetime | None = None,
                   **fields) -> TestRun:
        """Record a run of a commit ended as a worker would; `collections` (passed, total)."""
        received = received_at or utcnow()
        run = queue_run(self.resources, commit_sha=sha, assignment=assignment,
                        project_path=STUDENT, project_id=self.project_id,
                        reference_project=REFERENCE, received_at=received, ref="main",
                        **fields)
        if status.final:
            with transaction(self.resources.sessions) as session:
                row = session.get(TestRun, run.id)
                row.status, row.stage, row.progress = status, "done", 100
                row.finished_at, row.status_reason = utcnow(), reason
                if status in (RunStatus.PASSED, RunStatus.FAILED):
                    row.score, row.tests_passed, row.tests_total = score, passed, total
                    collections_passed, collections_total = collections or (passed, total)
                    row.report = {"gradehook": {
                        "score": score, "testsPassed": passed, "testsTotal": total,
                        "collectionsPassed": collections_passed,
                        "collectionsTotal": collections_total}}
            return self.run(run.id)
        return run

    def submit(self, sha: str, status: RunStatus = RunStatus.PASSED, **run_fields) -> Submission:
        """Grade a commit (as recorded) and hand it in through the API's path."""
        run = self.graded_run(sha, status, **run_fields)
        return request_submission(self.resources.sessions, run.id, requested_by=self.alice.id)

    def process(self, submission_id: str) -> SubmissionOutcome:
        """Run submission_processing's flow for one submission."""
        return process_submission(self.resources, self.celery, submission_id)

    def submission(self, submission_id: str) -> Submission | None:
        """Read a submission from the ledger."""
        with self.resources.sessions() as session:
            return session.get(Submission, submission_id)

    def run(self, run_id: str) -> TestRun:
        """Read a run from the ledger."""
        with self.resources.sessions() as session:
            return session.get(TestRun, run_id)

    def branches(self) -> dict[str, str]:
        """Return GitLab's branches of alice's project."""
        return self.gitlab.branches(self.project_id)

    def merge_requests(self) -> list[dict]:
        """Return GitLab's merge requests of alice's project."""
        return self.gitlab.merge_requests(self.project_id)

    def notes(self, iid: int) -> list[dict]:
        """Return the notes of a merge request."""
        return self.gitlab.notes(self.project_id, iid)


def build_world(service_settings, gitlab: GitLabStandIn, git: GitServer, *,
                assignment: dict | None = None, course: dict | None = None,
                meta_yaml: str | None = None, worker: dict | None = None) -> World:
    """Seed git and GitLab with alice's project and the reference; build gradehook on them."""
    reference = {**solution("hello"), f"{ASSIGNMENT}/test.yaml": TEST_YAML,
                 f"{OTHER_ASSIGNMENT}/test.yaml": TEST_YAML}
    if meta_yaml is not None:
        reference[f"{ASSIGNMENT}/meta.yaml"] = meta_yaml
    git.commit(REFERENCE, reference)
    template = git.commit(STUDENT, {"README.md": "Programming 1\n",
                                    f"{ASSIGNMENT}/.keep": "", f"{OTHER_ASSIGNMENT}/.keep": ""})
    alice = gitlab.add_user("alice")
    project = gitlab.add_project(STUDENT, branches={"main": template, TARGET: template},
                                 members={alice.id: DEVELOPER})
    config_course = {"name": "prog1", "student_projects": ["students/"],
                     "reference_project": REFERENCE, "discover_assignments": False,
                     "assignments": [{"directory": ASSIGNMENT, **(assignment or {})},
                                     {"directory": OTHER_ASSIGNMENT}], **(course or {})}
    config, settings = service_settings({
        "gitlab": {"url": gitlab.url, "token": gitlab.bot.token, "clone_base": git.base_url},
        "courses": [config_course], "worker": worker or {}})
    resources = migrated_resources(settings)
    return World(gitlab=gitlab, git=git, resources=resources, celery=create_celery(settings),
                 project_id=project["id"], alice=alice, template_sha=template, config=config)
