"""Replayed and forged webhook signatures, through the real receiver: refused, nothing recorded."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from pipeline.ledger.models import Delivery, TestRun
from tests.infra.ledger import migrated_resources
from tests.security.signing import new_signing_key, signature_headers
from tests.webhooks.deliveries import headers_for, payload_of
from webhooks.app import create_app

FIXTURE = "push_hook__assignment_commits"
TOLERANCE = 300
KEY, SIGNING_TOKEN = new_signing_key()
SECRET = "signature-test-secret-" + secrets.token_hex(8)
BODY = json.dumps(payload_of(FIXTURE)).encode()


def signed(body: bytes = BODY, *, webhook_id: str = "msg_first", timestamp: int | None = None,
           key: bytes = KEY, **overrides: str) -> dict[str, str]:
    """Return the headers of a delivery signed as GitLab signs it, with fields overridden."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {**headers_for(FIXTURE), **signature_headers(body, webhook_id, timestamp, key)}
    headers.update(overrides)
    return headers


def course(require_signature: bool = False) -> dict:
    """Return the configuration of a course whose student is the fixture's project."""
    return {"gitlab": {"signing_token": SIGNING_TOKEN, "webhook_secret": SECRET,
                       "require_signature": require_signature,
                       "signature_tolerance_seconds": TOLERANCE},
            "courses": [{"name": "prog1", "student_projects": ["prog1-2026/students/"],
                         "reference_project": "prog1-2026/reference",
                         "discover_assignments": False,
                         "assignments": [{"directory": "week1/assignment1"}]}]}


@pytest.fixture
def receiver(service_settings):
    """Return (test client, resources) of the app on the test's PostgreSQL and Redis."""
    def build(require_signature: bool = False):
        _, settings = service_settings(course(require_signature))
        return create_app(settings).test_client(), migrated_resources(settings)
    return build


def ledger_counts(resources) -> tuple[int, int]:
    """Return how many deliveries and runs the ledger holds."""
    with resources.sessions() as session:
        return session.query(Delivery).count(), session.query(TestRun).count()


def test_a_replayed_delivery_is_answered_once_and_refused_when_altered_or_late(receiver):
    client, resources = receiver()
    now = int(time.time())
    first = client.post("/webhooks/gitlab", data=BODY, headers=signed(timestamp=now))
    assert first.status_code == 202
    run_id, = first.get_json()["runs"]

    replay = client.post("/webhooks/gitlab", data=BODY, headers=signed(timestamp=now))
    assert (replay.status_code, replay.get_json()["runs"]) == (202, [run_id])
    assert replay.headers["X-Gradehook-Duplicate"] == "1"

    captured = signed(timestamp=now)
    refused = {
        "a new webhook-id on a captured signature":
            {**captured, "webhook-id": "msg_second"},
        "a fresh timestamp on a captured signature":
            {**captured, "webhook-timestamp": str(now + 60)},
        "a capture replayed past the tolerance":
            signed(webhook_id="msg_late", timestamp=now - TOLERANCE - 60),
        "a signature dated too far ahead":
            signed(webhook_id="msg_early", timestamp=now + TOLERANCE + 60),
    }
    for what, headers in refused.items():
        answer = client.post("/webhooks/gitlab", data=BODY, headers=headers)
        assert answer.status_code == 401, what
    assert ledger_counts(resources) == (1, 1)


def test_forged_deliveries_are_refused_and_record_nothing(receiver):
    client, resources = receiver()
    now = int(time.time())
    altered = BODY.replace(b'"refs/heads/main"', b'"refs/heads/evil"')
    assert altered != BODY
    forged = {
        "signed with another key": (BODY, signed(key=secrets.token_bytes(32))),
        "body changed after signing": (altered, signed()),
        "signature that is not base64": (BODY, signed(**{"webhook-signature": "v1,***"})),
        "only another signature version": (
            BODY, signed(**{"webhook-signature": signed()["webhook-signature"].replace(
                "v1,", "v2,")})),
        "empty signature": (BODY, signed(**{"webhook-signature": ""})),
        "signature without its timestamp": (
            BODY, {k: v for k, v in signed().items() if k != "webhook-timestamp"}),
        "signature without its id": (
            BODY, {k: v for k, v in signed().items() if k != "webhook-id"}),
        "the signing token sent as the secret": (
            BODY, {**headers_for(FIXTURE), "X-Gitlab-Token": SIGNING_TOKEN}),
        "a wrong secret": (BODY, {**headers_for(FIXTURE), "X-Gitlab-Token": SECRET + "x"}),
        "a prefix of the secret": (
            BODY, {**headers_for(FIXTURE), "X-Gitlab-Token": SECRET[:-1]}),
        "no credentials": (BODY, headers_for(FIXTURE)),
    }
    for what, (body, headers) in forged.items():
        answer = client.post("/webhooks/gitlab", data=body,
                             headers={**headers, "Idempotency-Key": f"forged-{now}-{what}"})
        assert answer.status_code == 401, what
        assert answer.get_json()["error"] == "unauthorized", what
    assert ledger_counts(resources) == (0, 0)


def test_the_secret_token_is_refused_where_a_signature_is_required(receiver):
    client, resources = receiver(require_signature=True)
    answer = client.post("/webhooks/gitlab", data=BODY,
                         headers={**headers_for(FIXTURE), "X-Gitlab-Token": SECRET})
    assert answer.status_code == 401
    assert client.post("/webhooks/gitlab", data=BODY, headers=signed()).status_code == 202
    assert ledger_counts(resources) == (1, 1)
