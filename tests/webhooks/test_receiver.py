"""POST /webhooks/gitlab on real PostgreSQL and Redis: answers, ledger rows, broker messages."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import threading

import pytest
from sqlalchemy import func, select
from werkzeug.http import HTTP_STATUS_CODES

from pipeline.ledger.models import Delivery, RunStatus, Submission, TestRun
from tests.infra.ledger import migrated_resources
from tests.infra.ports import free_port
from tests.infra.processes import web_process
from tests.infra.services import redis_client
from tests.webhooks.deliveries import body_of, headers_for, payload_of
from webhooks.app import create_app

SECRET = "s3cret-token"
ASSIGNMENTS = ["week1/assignment1", "week2/assignment1"]
COURSE = {"name": "prog1", "student_projects": ["prog1-2026/students/"],
          "reference_project": "prog1-2026/reference", "discover_assignments": False,
          "assignments": [{"directory": d} for d in ASSIGNMENTS]}


@pytest.fixture
def intake(service_settings):
    """A Flask test client of the receiver, and the ledger's resources."""
    _, settings = service_settings({"gitlab": {"webhook_secret": SECRET}, "courses": [COURSE]})
    resources = migrated_resources(settings)
    app = create_app(settings)
    return app.test_client(), resources


def deliver(client, stem, *, body=None, key=None, token=SECRET, **headers):
    extra = dict(headers)
    if token is not None:
        extra["X-Gitlab-Token"] = token
    if key is not None:
        extra["Idempotency-Key"] = key
    return client.post("/webhooks/gitlab", data=body if body is not None else body_of(stem),
                       headers=headers_for(stem, **extra))


def runs_of(resources, **where):
    with resources.sessions() as session:
        query = select(TestRun).order_by(TestRun.assignment)
        for name, value in where.items():
            query = query.where(getattr(TestRun, name) == value)
        return list(session.scalars(query))


def queued_messages(redis_db):
    return [json.loads(m) for m in redis_client(redis_db).lrange("high_priority", 0, -1)]


def test_push_creates_one_run_per_touched_assignment(intake, redis_db):
    client, resources = intake
    response = deliver(client, "push_hook__assignment_commits", key="k-1")
    assert response.status_code == 202
    body = response.get_json()
    runs = runs_of(resources)
    assert [r.assignment for r in runs] == ASSIGNMENTS
    assert sorted(body["runs"]) == sorted(r.id for r in runs)
    after = payload_of("push_hook__assignment_commits")["after"]
    for run in runs:
        assert (run.status, run.kind, run.commit_sha, run.ref, run.project_id) == \
            (RunStatus.QUEUED, "push", after, "main", 42)
        assert run.project_path == "prog1-2026/students/alice" and not run.needs_diff
        assert run.reference_project == "prog1-2026/reference" and run.sent_at is not None
    messages = queued_messages(redis_db)
    assert sorted(m["headers"]["argsrepr"] for m in messages) == \
        sorted(repr([r.id]) for r in runs)
    assert sorted(m["headers"]["id"] for m in messages) == sorted(r.celery_task_id for r in runs)


def test_repeated_delivery_gets_the_first_answer_and_creates_nothing(intake, redis_db):
    client, resources = intake
    first = deliver(client, "push_hook__assignment_commits", key="same-key")
    again = deliver(client, "push_hook__assignment_commits", key="same-key")
    assert again.status_code == first.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["X-Gradehook-Duplicate"] == "1"
    assert len(runs_of(resources)) == 2
    assert len(queued_messages(redis_db)) == 2


def test_payload_derived_key_deduplicates_without_headers(intake):
    client, resources = intake
    first = deliver(client, "push_hook__assignment_commits")
    again = deliver(client, "push_hook__assignment_commits")
    assert again.get_json() == first.get_json() and len(runs_of(resources)) == 2


def test_concurrent_identical_deliveries_create_one_set_of_runs(intake, redis_db):
    client, resources = intake
    app = client.application
    barrier = threading.Barrier(8)

    def send(_):
        barrier.wait()
        return deliver(app.test_client(), "push_hook__assignment_commits", key="race")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert {a.status_code for a in answers} == {202}
    assert len({json.dumps(a.get_json(), sort_keys=True) for a in answers}) == 1
    assert len(runs_of(resources)) == 2
    assert len(queued_messages(redis_db)) == 2
    with resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_newer_push_supersedes_queued_runs_of_the_branch(intake):
    client, resources = intake
    deliver(client, "push_hook__assignment_commits", key="push-1")
    older = {r.id for r in runs_of(resources)}
    payload = payload_of("push_hook__assignment_commits")
    newer_sha = "1" * 40
    payload.update(before=payload["after"], after=newer_sha, checkout_sha=newer_sha)
    response = deliver(client, "push_hook__assignment_commits", key="push-2",
                       body=json.dumps(payload).encode())
    assert response.status_code == 202
    assert set(response.get_json()["superseded"]) == older
    for run in runs_of(resources):
        if run.id in older:
            assert run.status == RunStatus.SUPERSEDED
            assert run.superseded_by == newer_sha
            assert run.status_reason == f"superseded by a newer push ({newer_sha[:12]})"
            assert run.finished_at is not None
        else:
            assert (run.status, run.commit_sha) == (RunStatus.QUEUED, newer_sha)


def test_merge_request_update_then_close_cancels_its_queued_runs(intake):
    client, resources = intake
    opened = deliver(client, "merge_request_hook__update_with_oldrev", key="mr-update")
    assert opened.status_code == 202
    runs = runs_of(resources)
    assert [r.assignment for r in runs] == ASSIGNMENTS
    assert all(r.merge_request_iid == 3 and r.kind == "merge_request" and r.needs_diff
               for r in runs)
    closed = deliver(client, "merge_request_hook__close", key="mr-close")
    assert closed.status_code == 200
    assert sorted(closed.get_json()["cancelled"]) == sorted(r.id for r in runs)
    assert {r.status for r in runs_of(resources)} == {RunStatus.CANCELLED}


def test_retargeting_onto_the_submission_branch_submits_without_delivery_ids(intake):
    # GitLab before 17.4 sends no Idempotency-Key: the retarget keeps the head and the action
    # of the update that brought the head, so the derived key must still tell them apart.
    client, resources = intake
    assert deliver(client, "merge_request_hook__update_with_oldrev").status_code == 202
    payload = payload_of("merge_request_hook__update_without_oldrev")
    payload["object_attributes"].update(target_branch="submissions",
                                        updated_at="2013-12-03T17:30:00Z")
    payload["changes"]["target_branch"] = {"previous": "main", "current": "submissions"}
    response = deliver(client, "merge_request_hook__update_without_oldrev",
                       body=json.dumps(payload).encode())
    assert "X-Gradehook-Duplicate" not in response.headers
    with resources.sessions() as session:
        submitted = session.scalars(select(Submission.assignment).where(
            Submission.merge_request_iid == 3)).all()
    assert sorted(submitted) == ASSIGNMENTS


def test_retest_note_regrades_and_names_the_requester(intake):
    client, resources = intake
    deliver(client, "merge_request_hook__update_with_oldrev", key="mr-update")
    response = deliver(client, "note_hook__retest_command", key="note-1")
    assert response.status_code == 202
    retests = runs_of(resources, kind="retest")
    note = payload_of("note_hook__retest_command")
    assert len(retests) == 2
    assert {r.requested_by_user_id for r in retests} == {note["user"]["id"]}
    assert {r.commit_sha for r in retests} == \
        {note["merge_request"]["last_commit"]["id"]}


@pytest.mark.parametrize("stem, reason", [
    ("push_hook__docs_example", "no course claims project mike/diaspora"),
    ("tag_push_hook__create", "tag pushes are not graded"),
    ("push_hook__branch_deletion", "the branch was deleted"),
    ("push_hook__outside_assignments", "the push touched no assignment"),
    ("note_hook__by_gradehook", None),
    ("merge_request_hook__update_without_oldrev", None),
])
def test_ignored_events_get_2xx_with_the_reason(intake, redis_db, stem, reason):
    client, resources = intake
    response = deliver(client, stem, key=f"ignored-{stem}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ignored"
    if reason is not None:
        assert body["reason"] == reason
    else:
        assert body["reason"]
    assert runs_of(resources) == [] and queued_messages(redis_db) == []


@pytest.mark.parametrize("token, reason_part", [(None, "token"), ("wrong", "token")])
def test_wrong_or_missing_token_is_401_and_records_nothing(intake, token, reason_part):
    client, resources = intake
    response = deliver(client, "push_hook__assignment_commits", token=token, key="auth")
    assert response.status_code == 401
    assert reason_part in response.get_json()["reason"].lower()
    with resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_malformed_bodies_are_400_naming_the_field(intake):
    client, _ = intake
    response = deliver(client, "push_hook__assignment_commits", body=b"{not json", key="m1")
    assert response.status_code == 400 and response.get_json()["reason"] == \
        "body is not valid JSON"
    payload = payload_of("push_hook__assignment_commits")
    payload["after"] = "--upload-pack=touch /tmp/pwned"
    response = deliver(client, "push_hook__assignment_commits",
                       body=json.dumps(payload).encode(), key="m2")
    assert response.status_code == 400
    assert response.get_json()["field"] == "after"


@pytest.mark.parametrize("stem, edit, field", [
    ("push_hook__assignment_commits", lambda p: p["project"].update(id=2**63), "project.id"),
    ("push_hook__assignment_commits", lambda p: p.update(user_id=-1), "user_id"),
    ("merge_request_hook__open_docs_example",
     lambda p: p["object_attributes"].update(iid=2**31), "object_attributes.iid"),
])
def test_numbers_beyond_what_gitlab_sends_are_400_naming_the_field(intake, stem, edit, field):
    # The ledger keeps ids in 64-bit and merge request iids in 32-bit columns.
    client, resources = intake
    payload = payload_of(stem)
    edit(payload)
    response = deliver(client, stem, body=json.dumps(payload).encode(), key=f"n-{field}")
    assert (response.status_code, response.get_json()["field"]) == (400, field)
    assert "whole number from 0 to" in response.get_json()["reason"]
    with resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_wrong_content_type_is_415(intake):
    client, _ = intake
    response = client.post("/webhooks/gitlab", data=body_of("push_hook__assignment_commits"),
                           headers={**headers_for("push_hook__assignment_commits"),
                                    "Content-Type": "text/plain", "X-Gitlab-Token": SECRET})
    assert response.status_code == 415


TOO_LARGE = {"error": "Request Entity Too Large",
             "reason": "the body is larger than the 2048 bytes this service takes "
                       "(server.max_body_bytes)", "field": None, "fields": None}


def test_oversized_body_is_413_saying_the_cap(service_settings):
    """Before, the reason was Werkzeug's 'The data value transmitted exceeds the capacity
    limit.', naming no limit."""
    _, settings = service_settings({"server": {"max_body_bytes": 2048},
                                    "gitlab": {"webhook_secret": SECRET}})
    client = create_app(settings).test_client()
    response = client.post("/webhooks/gitlab", data=b"{" + b" " * 4096 + b"}",
                           headers={**headers_for("push_hook__assignment_commits"),
                                    "X-Gitlab-Token": SECRET})
    assert (response.status_code, response.get_json()) == (413, TOO_LARGE)


def test_a_streamed_body_over_the_cap_is_413_not_read_cut_at_it(tmp_path, service_settings):
    """Before, gunicorn's chunked body past the cap was read up to the cap alone, without a
    word: the delivery was answered 400 'body is not valid JSON'."""
    config, settings = service_settings({"server": {"max_body_bytes": 2048},
                                         "gitlab": {"webhook_secret": SECRET}})
    migrated_resources(settings)
    port = free_port()
    with web_process(config, port, log_path=tmp_path / "web.log"):
        answer = _post_chunked(port, b"[" + b" " * 4096 + b"]")
    assert answer == (413, TOO_LARGE)


def test_a_streamed_body_of_exactly_the_cap_is_taken(tmp_path, service_settings):
    """As with a Content-Length, a chunked body of the cap is taken and one byte more refused;
    before, one of the cap was refused too (413), as if it went past it."""
    cap = 4096
    config, settings = service_settings({"server": {"max_body_bytes": cap},
                                         "gitlab": {"webhook_secret": SECRET}})
    migrated_resources(settings)
    body = body_of("push_hook__assignment_commits")
    port = free_port()
    with web_process(config, port, log_path=tmp_path / "web.log"):
        at_cap = _post_chunked(port, body + b" " * (cap - len(body)))
        past_cap = _post_chunked(port, body + b" " * (cap + 1 - len(body)))
    assert at_cap[0] == 200, at_cap
    assert past_cap == (413, {**TOO_LARGE, "reason": TOO_LARGE["reason"].replace("2048", "4096")})


def _post_chunked(port: int, body: bytes) -> tuple[int, dict]:
    """POST a push delivery to the receiver in one chunk (Transfer-Encoding: chunked, no
    Content-Length); return the answer's status and JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/webhooks/gitlab")
        for name, value in {**headers_for("push_hook__assignment_commits"),
                            "X-Gitlab-Token": SECRET, "Transfer-Encoding": "chunked"}.items():
            connection.putheader(name, value)
        connection.endheaders()
        connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("method, path, status, reason, allowed", [
    ("GET", "/webhooks/gitlab", 405, "/webhooks/gitlab does not take GET: use POST",
     {"OPTIONS", "POST"}),
    ("PUT", "/api/runs", 405, "/api/runs does not take PUT: use GET", {"GET", "HEAD", "OPTIONS"}),
    ("GET", "/api/nope", 404, "there is nothing at /api/nope", None)])
def test_what_no_route_takes_is_refused_in_gradehooks_json(service_settings, method, path,
                                                           status, reason, allowed):
    """Before, the reason was Werkzeug's ('The method is not allowed for the requested URL.'),
    the body without the API's field and fields, and a 405 without Allow."""
    _, settings = service_settings()
    response = create_app(settings).test_client().open(path, method=method)
    assert (response.status_code, response.mimetype, response.get_json()) == (
        status, "application/json",
        {"error": HTTP_STATUS_CODES[status], "reason": reason, "field": None, "fields": None})
    allow = response.headers.get("Allow")
    assert (set(allow.split(", ")) if allow else None) == allowed


def test_database_down_is_503(service_settings, monkeypatch):
    monkeypatch.setenv("POSTGRES_PORT", str(free_port()))
    _, settings = service_settings({"gitlab": {"webhook_secret": SECRET}, "courses": [COURSE]})
    client = create_app(settings).test_client()
    response = deliver(client, "push_hook__assignment_commits", key="db-down")
    assert response.status_code == 503
    assert "database" in response.get_json()["reason"]


def test_broker_down_still_answers_202_and_leaves_runs_for_the_reconciler(
        service_settings, monkeypatch):
    monkeypatch.setenv("REDIS_PORT", str(free_port()))
    _, settings = service_settings({"gitlab": {"webhook_secret": SECRET}, "courses": [COURSE]})
    resources = migrated_resources(settings)
    client = create_app(settings).test_client()
    response = deliver(client, "push_hook__assignment_commits", key="broker-down")
    assert response.status_code == 202
    runs = runs_of(resources)
    assert len(runs) == 2
    assert all(r.status == RunStatus.QUEUED and r.sent_at is None for r in runs)


def test_a_web_process_taking_deliveries_from_anyone_says_so_at_start(tmp_path,
                                                                      service_settings):
    """With neither a secret token nor a signing token, every delivery is taken (the operator's
    choice, webhooks.auth); before, nothing said so, and a service whose set-up skipped the
    webhook's token took forged pushes and merge requests without a word."""
    open_config, settings = service_settings()
    migrated_resources(settings)
    with web_process(open_config, free_port(), log_path=tmp_path / "open.log"):
        pass
    closed_config, _ = service_settings({"gitlab": {"webhook_secret": SECRET}})
    with web_process(closed_config, free_port(), log_path=tmp_path / "closed.log"):
        pass

    warning = ("gradehook: warning: neither gitlab.webhook_secret nor gitlab.signing_token is "
               "set, so POST /webhooks/gitlab takes deliveries from anyone who reaches it")
    assert warning in (tmp_path / "open.log").read_text()
    assert "webhook_secret" not in (tmp_path / "closed.log").read_text()
