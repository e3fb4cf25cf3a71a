"""A merge request comment GitLab did not take is written when the run is reported again."""

from __future__ import annotations

import datetime as dt

import pytest

from gitlab_client import TransientGitLabError
from pipeline.ledger import runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.tasks.reporting import report_run
from tests.infra.ledger import migrated_resources, queue_run
from tests.support.gitlab_standin import FaultPlan
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture

PROJECT = "students/alice"


def _graded_run(resources, project_id: int, sha: str) -> str:
    run = queue_run(resources, project_path=PROJECT, project_id=project_id, ref="work",
                    commit_sha=sha)
    with transaction(resources.sessions) as session:
        row = session.get(TestRun, run.id)
        row.status, row.stage, row.progress = RunStatus.PASSED, "done", 100
        row.score, row.tests_passed, row.tests_total = 1.0, 2, 2
        row.started_at = row.finished_at = utcnow()
    return run.id


@pytest.fixture
def reporting(service_settings, gitlab_standin):  # noqa: F811
    """Resources reporting to the stand-in, and a student project with a work branch."""
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token}})
    project = gitlab_standin.add_project(PROJECT, branches={"main": "a" * 40, "work": "b" * 40})
    return migrated_resources(settings), project


def _unreported(resources) -> list[str]:
    now = utcnow()
    with resources.sessions() as session:
        return [run_id for run_id, _ in runs.unreported_runs(
            session, (now - dt.timedelta(hours=1), now), now)]


def test_a_comment_gitlab_refused_is_written_when_the_run_is_reported_again(
        reporting, gitlab_standin):  # noqa: F811
    resources, project = reporting
    mr = gitlab_standin.add_merge_request(project["id"], "work", "main")
    run_id = _graded_run(resources, project["id"], "b" * 40)
    notes_down = gitlab_standin.inject_faults(FaultPlan(status=502, every=1,
                                                        path_pattern=r"/notes"))

    with pytest.raises(TransientGitLabError):
        report_run(resources, run_id)

    assert notes_down.injected
    [status] = gitlab_standin.commit_statuses(project["id"], "b" * 40)
    assert status["status"] == "success"
    assert gitlab_standin.notes(project["id"], mr["iid"]) == []
    assert _unreported(resources) == [run_id]

    gitlab_standin.clear_faults()
    report_run(resources, run_id)

    [note] = gitlab_standin.notes(project["id"], mr["iid"])
    assert note["body"].startswith("<!-- gradehook:") and f"/results/{run_id}" in note["body"]
    assert len(gitlab_standin.commit_statuses(project["id"], "b" * 40)) == 1
    assert _unreported(resources) == []


def test_a_graded_run_of_a_branch_without_merge_requests_counts_as_commented(
        reporting, gitlab_standin):  # noqa: F811
    resources, project = reporting
    run_id = _graded_run(resources, project["id"], "b" * 40)

    report_run(resources, run_id)

    assert gitlab_standin.commit_statuses(project["id"], "b" * 40)[0]["status"] == "success"
    assert _unreported(resources) == []
