"""`GET /api/tests-celery/health` measures broker, database and workers for real."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from pipeline.ledger.migrate import head_revision
from pipeline.ledger.models import RunStatus, utcnow
from tests.api.world import STAFF_TOKEN, bearer, staff_digest
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import end_run, migrated_resources, queue_run
from tests.infra.ports import free_port
from tests.webhooks.test_receiver import COURSE, SECRET, deliver
from tests.infra.processes import wait_for, worker_process
from webhooks.app import create_app


def test_broker_down_is_reported_down(service_settings, monkeypatch):
    port = free_port()
    monkeypatch.setenv("REDIS_PORT", str(port))
    _, settings = service_settings()
    migrated_resources(settings)
    assert settings.redis.port == port
    response = create_app(settings).test_client().get("/api/tests-celery/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unhealthy"
    assert body["broker"] == "redis" and body["broker_status"] == "down"
    assert "ConnectionError" in body["broker_error"]
    assert body["database"] == "up"
    assert body["workers"] == 0 and body["backend"] == "celery"


def test_database_down_is_reported_down(service_settings, monkeypatch):
    monkeypatch.setenv("POSTGRES_PORT", str(free_port()))
    _, settings = service_settings()
    body = create_app(settings).test_client().get("/api/tests-celery/health").get_json()
    assert body["database"] == "down" and body["broker_status"] == "up"
    assert body["status"] == "unhealthy"
    assert body["runs"] is None


def test_health_says_how_many_runs_wait_and_run_and_how_long_the_oldest_waited(
        service_settings):
    """Before, neither health nor `gradehook worker status` said whether grading kept up at a
    deadline: staff had to query the ledger by hand."""
    _, settings = service_settings()
    resources = migrated_resources(settings)
    before = utcnow()
    oldest = queue_run(resources, commit_sha="a" * 40, queued_at=before - dt.timedelta(hours=1))
    queue_run(resources, commit_sha="b" * 40, queued_at=before - dt.timedelta(minutes=5))
    queue_run(resources, commit_sha="c" * 40, queued_at=before - dt.timedelta(hours=2),
              status=RunStatus.RUNNING)
    for status in (RunStatus.PASSED, RunStatus.CANCELLED):
        ended = queue_run(resources, commit_sha="d" * 40, queued_at=before - dt.timedelta(days=1))
        end_run(resources, ended.id, status)

    body = create_app(settings).test_client().get("/api/tests-celery/health").get_json()
    after = utcnow()

    waited = body["runs"].pop("oldest_queued_seconds")
    assert body["runs"] == {"queued": 2, "running": 1}
    assert int((before - oldest.queued_at).total_seconds()) <= waited \
        <= int((after - oldest.queued_at).total_seconds())
    # No worker runs here: the backlog leaves the status to the broker, database and workers.
    assert body["status"] == "unhealthy" and body["workers"] == 0


def test_health_with_nothing_queued_says_so(service_settings):
    _, settings = service_settings()
    migrated_resources(settings)

    body = create_app(settings).test_client().get("/api/tests-celery/health").get_json()

    assert body["runs"] == {"queued": 0, "running": 0, "oldest_queued_seconds": None}


def test_a_ledger_never_upgraded_is_reported_naming_the_fix(service_settings):
    """Before, health said the database was up while every API call failed: a 500 on
    PostgreSQL (UndefinedTable), 'the ledger database is unavailable; try again shortly' on the
    embedded ledger, where trying again never helps."""
    _, settings = service_settings({"api": {"staff_token_hashes": staff_digest()}})
    client = create_app(settings).test_client()

    health = client.get("/api/tests-celery/health")
    listing = client.get("/api/runs", headers=bearer(STAFF_TOKEN))

    assert health.status_code == 503
    assert (health.get_json()["database"], health.get_json()["database_error"]) == (
        "down", f"the ledger's tables are at revision none (no tables), not {head_revision()}: "
                "run `gradehook db upgrade`")
    assert listing.status_code == 503
    assert listing.get_json()["reason"] == ("the ledger's tables are missing or out of date: the "
                                            "service's operator must run `gradehook db upgrade`")


def test_a_revision_the_database_user_may_not_read_is_reported_as_such(service_settings):
    """Before, any error reading alembic_version was told as a ledger never upgraded: 'the
    ledger's tables are at revision none (no tables)', sending staff to upgrade a ledger that
    is, while its user lacks the privilege to read it."""
    _, settings = service_settings()
    resources = migrated_resources(settings)
    with resources.engine.begin() as connection:
        connection.execute(text("REVOKE SELECT ON alembic_version FROM CURRENT_USER"))

    body = create_app(settings).test_client().get("/api/tests-celery/health").get_json()

    assert (body["database"], body["database_error"]) == (
        "down", "the ledger's revision could not be read from alembic_version: permission "
                "denied for table alembic_version")


@pytest.mark.slow
def test_running_worker_makes_the_service_healthy(tmp_path, service_settings, git_server):
    config, settings = service_settings()
    migrated_resources(settings)
    git_server.commit("staff/reference", {"week1/hello/test.yaml": ONE_TEST})
    client = create_app(settings).test_client()
    assert client.get("/api/tests-celery/health").get_json()["workers"] == 0
    with worker_process(config, log_path=tmp_path / "worker.log"):
        response = wait_for(
            lambda: (r := client.get("/api/tests-celery/health")).status_code == 200 and r,
            timeout=60, what="worker to answer the health probe")
    body = response.get_json()
    assert body == {"status": "healthy", "backend": "celery", "broker": "redis",
                    "broker_status": "up", "broker_error": None, "database": "up",
                    "database_error": None, "workers": 1,
                    "worker_names": body["worker_names"], "problems": [],
                    "runs": {"queued": 0, "running": 0, "oldest_queued_seconds": None}}
    assert body["worker_names"][0].startswith("gradehook@")


def test_a_webhook_or_a_result_page_on_a_ledger_never_upgraded_is_503_naming_the_fix(
        service_settings, caplog):
    """Before, only the API said so (44fd111): a GitLab delivery on PostgreSQL answered 500 and
    logged an UndefinedTable traceback (on the embedded ledger 'the ledger database is
    unavailable; try again shortly'), and a result page answered 500 with gradehook's JSON."""
    _, settings = service_settings({"gitlab": {"webhook_secret": SECRET}, "courses": [COURSE]})
    client = create_app(settings).test_client()

    delivery = deliver(client, "push_hook__assignment_commits", key="never-upgraded")
    page = client.get("/results/" + "a" * 22)

    assert (delivery.status_code, delivery.get_json()["reason"]) == (
        503, "the ledger's tables are missing or out of date: the service's operator must run "
             "`gradehook db upgrade`")
    assert (page.status_code, page.mimetype) == (503, "text/html")
    assert b"Results unavailable for a moment" in page.data
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert [record.exc_info for record in errors] == [None, None]
    assert all("`gradehook db upgrade`" in record.getMessage() for record in errors)
