"""A gradehook web app on real PostgreSQL and Redis, with a GitLab stand-in knowing three users."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from pipeline.config import Settings
from pipeline.context import Resources
from pipeline.ledger.models import TestRun
from tests.infra.ledger import migrated_resources
from tests.infra.services import redis_client
from tests.support.gitlab_standin import DEVELOPER, REPORTER, GitLabStandIn, StandInUser
from webhooks.app import create_app

STAFF_TOKEN = "staff-token-0123456789"
ASSIGNMENT = "week1/hello"
OTHER_ASSIGNMENT = "week2/loops"
COURSE = {"name": "prog1", "student_projects": ["students/"],
          "reference_project": "staff/reference", "discover_assignments": False,
          "assignments": [{"directory": ASSIGNMENT}, {"directory": OTHER_ASSIGNMENT}]}
SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40


@dataclass
class World:
    """The app, its ledger, GitLab's users and projects, and the Redis database it sends to."""

    app: Flask
    client: FlaskClient
    config: Path
    settings: Settings
    resources: Resources
    gitlab: GitLabStandIn
    redis_db: int
    alice: StandInUser
    bob: StandInUser
    carol: StandInUser  # Reporter on alice's project: below Developer
    alice_project: dict
    bob_project: dict

    def get(self, url: str, token: str | None = STAFF_TOKEN, **kwargs):
        """GET with a bearer token."""
        return self.client.get(url, headers=bearer(token), **kwargs)

    def post(self, url: str, body, token: str | None = STAFF_TOKEN, **kwargs):
        """POST a JSON body with a bearer token."""
        return self.client.post(url, json=body, headers=bearer(token), **kwargs)

    def queued(self, queue: str) -> list[dict]:
        """Return the Celery messages waiting in a Redis queue."""
        return [json.loads(m) for m in redis_client(self.redis_db).lrange(queue, 0, -1)]

    def run(self, run_id: str) -> TestRun:
        """Read a run from the ledger."""
        with self.resources.sessions() as session:
            return session.get(TestRun, run_id)


def bearer(token: str | None) -> dict[str, str]:
    """Return the Authorization header of a token (none for None)."""
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def staff_digest(token: str = STAFF_TOKEN) -> str:
    """Return the configured form of a staff token."""
    return hashlib.sha256(token.encode()).hexdigest()


def build_world(service_settings, gitlab: GitLabStandIn, redis_db: int,
                extra: dict | None = None) -> World:
    """Seed GitLab with alice, bob and carol and build the app on the test's services."""
    alice, bob, carol = (gitlab.add_user(name) for name in ("alice", "bob", "carol"))
    alice_project = gitlab.add_project("students/alice", branches={"main": SHA_A},
                                       members={alice.id: DEVELOPER, carol.id: REPORTER})
    bob_project = gitlab.add_project("students/bob", branches={"main": SHA_B},
                                     members={bob.id: DEVELOPER})
    config = {"gitlab": {"url": gitlab.url, "token": gitlab.bot.token},
              "api": {"staff_token_hashes": staff_digest(), "inspect_timeout_seconds": 0.3,
                      "event_poll_seconds": 0.05},
              "courses": [COURSE]}
    for key, value in (extra or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path, settings = service_settings(config)
    resources = migrated_resources(settings)
    app = create_app(settings)
    return World(app=app, client=app.test_client(), config=path, settings=settings,
                 resources=resources,
                 gitlab=gitlab, redis_db=redis_db, alice=alice, bob=bob, carol=carol,
                 alice_project=alice_project, bob_project=bob_project)
