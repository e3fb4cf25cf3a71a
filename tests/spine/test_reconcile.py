"""The reconciler asks again for GitLab updates that a worker gave up posting."""

from __future__ import annotations

import base64
import datetime as dt
import json

from pipeline.celery_app import create_celery
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.reconcile import REREPORT_AFTER, reconcile_ledger
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.services import redis_client
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture


def _ended(resources, status, reported, finished_ago):
    run = queue_run(resources, commit_sha="d" * 40)
    with transaction(resources.sessions) as session:
        row = session.get(TestRun, run.id)
        row.status, row.reported_status = status, reported
        row.finished_at = utcnow() - finished_ago
    return run.id


def test_ended_runs_gitlab_never_heard_of_are_reported_again(
        service_settings, redis_db, gitlab_standin):  # noqa: F811
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token}})
    resources = migrated_resources(settings)
    long_ago = REREPORT_AFTER + dt.timedelta(minutes=1)
    lost = _ended(resources, RunStatus.FAILED, None, long_ago)
    half_shown = _ended(resources, RunStatus.PASSED, "running", long_ago)
    withdrawn = _ended(resources, RunStatus.SUPERSEDED, "pending", long_ago)
    _ended(resources, RunStatus.FAILED, "failed", long_ago)             # reported: done
    _ended(resources, RunStatus.FAILED, None, dt.timedelta(seconds=5))  # its worker may yet
    _ended(resources, RunStatus.SUPERSEDED, None, long_ago)             # never shown

    report = reconcile_ledger(resources, create_celery(settings))

    assert report.reports_requested == 3
    [message] = [json.loads(m) for m in redis_client(redis_db).lrange("notify", 0, -1)]
    assert message["headers"]["task"] == "report_runs"
    args, _, _ = json.loads(base64.b64decode(message["body"]))
    assert sorted(args[0]) == sorted([lost, half_shown, withdrawn])
