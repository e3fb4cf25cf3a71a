"""A worker's configuration, as `celery inspect conf` and Flower show it, holds no secret."""

from __future__ import annotations

import json

import pytest

from pipeline.celery_app import create_celery
from pipeline.config import (GitLabSettings, PostgresSettings, RedisSettings, ServerSettings,
                             Settings)
from tests.infra.ledger import migrated_resources
from tests.infra.processes import wait_for, worker_process

GITLAB_SECRETS = {"token": "glpat-worker-conf-token-1234", "webhook_secret": "hook-secret-5678",
                  "signing_token": "whsec_c2lnbmluZy1zZWNyZXQtOTAxMi1vZi0zMi1ieXRlcyE="}
BADGE_KEY = "badge-key-of-the-course-" + "b" * 16


@pytest.mark.slow
def test_a_workers_reported_configuration_holds_no_secret(tmp_path, service_settings):
    config, settings = service_settings({"gitlab": GITLAB_SECRETS,
                                         "server": {"badge_key": BADGE_KEY}})
    migrated_resources(settings)
    # The service passwords would show inside the broker and database URLs.
    secrets = [*GITLAB_SECRETS.values(), BADGE_KEY, *(f":{password}@" for password in (
        settings.postgres.password, settings.redis.password) if password)]
    celery = create_celery(settings)
    with worker_process(config, log_path=tmp_path / "worker.log"):
        reported = wait_for(lambda: celery.control.inspect(timeout=1).conf(with_defaults=True),
                            timeout=60, what="the worker to report its configuration")
    text = json.dumps(reported)
    assert settings.broker_url.split("://")[0] in text  # the broker's settings are there
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == []


def test_the_settings_repr_holds_no_secret():
    settings = Settings(gitlab=GitLabSettings(**GITLAB_SECRETS),
                        server=ServerSettings(badge_key=BADGE_KEY),
                        redis=RedisSettings(host="redis.example", password="redis-pw-3456"),
                        postgres=PostgresSettings(host="db.example", password="pg-pw-7890"))
    text = repr(settings)
    assert "redis.example" in text and "db.example" in text and settings.gitlab.url in text
    secrets = [*GITLAB_SECRETS.values(), BADGE_KEY, "redis-pw-3456", "pg-pw-7890"]
    assert [secret for secret in secrets if secret in text] == []
