"""The one retry layer: a passing fault of ours is tried `max_attempts` times, then ended."""

from __future__ import annotations

import pytest
from celery import Celery

from gitlab_client import TransientGitLabError
from pipeline.celery_app import REGRADE, REPORT, create_celery
from pipeline.repos import RepositoryError
from pipeline.tasks.retry import GAVE_UP_REASON, drive
from tests.infra.ledger import migrated_resources, queue_run
from tests.support.gitlab_standin import FaultPlan, gitlab_standin  # noqa: F401 (a fixture)

app = Celery("retry-layer-test")
tried: list[int] = []


@app.task(bind=True)
def always_failing(self, max_attempts: int) -> str:
    """Fail with a passing fault every time; end with the reason the retry layer gives."""
    def work() -> str:
        tried.append(self.request.retries)
        raise RepositoryError("git is down")
    return drive(self, work, lambda reason: reason, soft_limit=60, max_attempts=max_attempts,
                 what="always_failing")


@pytest.mark.parametrize("max_attempts", [1, 2, 5, 8])
def test_a_passing_fault_is_tried_max_attempts_times_then_the_run_ends(max_attempts):
    # Celery's own limit (max_retries, 3 by default) must not cut the attempts short: a run
    # left by an error Celery raised past its limit stayed `running` for half an hour.
    tried.clear()
    outcome = always_failing.apply(args=(max_attempts,)).get()
    assert outcome == GAVE_UP_REASON.format(attempts=max_attempts, error="git is down")
    assert tried == list(range(max_attempts))


def test_a_report_gitlab_keeps_refusing_is_tried_max_attempts_times(
        service_settings, gitlab_standin):  # noqa: F811 (the fixture)
    project = gitlab_standin.add_project("students/alice", branches={"main": "a" * 40})
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token},
                                    "worker": {"max_attempts": 5}})
    resources = migrated_resources(settings)
    run = queue_run(resources, project_id=project["id"], commit_sha="a" * 40)
    gitlab_standin.inject_faults(FaultPlan(status=503, every=1, method="POST",
                                           path_pattern=r"/statuses/"))

    celery = create_celery(settings)
    celery.loader.import_default_modules()
    outcome = celery.tasks[REPORT].apply(args=[[run.id]]).get()

    assert outcome == {"reported": 0, "failed": [run.id]}
    assert len(gitlab_standin.requests_to("POST", r"/statuses/")) == 5


def test_a_branch_head_sweep_gitlab_keeps_refusing_is_tried_max_attempts_times(
        service_settings, gitlab_standin):  # noqa: F811 (the fixture)
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token},
                                    "worker": {"max_attempts": 5}})
    migrated_resources(settings)
    gitlab_standin.inject_faults(FaultPlan(status=503, every=1, method="GET",
                                           path_pattern=r"/groups/"))
    celery = create_celery(settings)
    celery.loader.import_default_modules()

    with pytest.raises(TransientGitLabError):
        celery.tasks[REGRADE].apply(args=["prog1"]).get()

    assert len(gitlab_standin.requests_to("GET", r"/groups/")) == 5
