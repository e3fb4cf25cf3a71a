"""Bearer tokens: staff digests, GitLab tokens checked on GitLab and cached, 401 and 403."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.config import ConfigError, load_settings
from pipeline.ledger.models import RunStatus
from tests.api.world import ASSIGNMENT, SHA_A, SHA_B, STAFF_TOKEN
from tests.infra.ledger import end_run, queue_run
from tests.support.gitlab_standin import FaultPlan
from webhooks.api.auth import TokenChecker


def test_a_missing_token_is_401_with_a_challenge(world):
    response = world.get("/api/runs", token=None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="gradehook"'
    assert response.get_json()["reason"] == \
        "send Authorization: Bearer <token> with a staff token or a GitLab access token"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer tok\x7fen",
                                    "Bearer " + "x" * 5000, "Token abc"])
def test_a_malformed_authorization_header_is_401(world, header):
    response = world.client.get("/api/runs", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.get_json()["reason"] == \
        "the Authorization header must be 'Bearer <token>' with a printable token"
    assert world.gitlab.requests == []


def test_an_unknown_token_is_401_and_gitlab_is_asked_once_while_cached(world):
    first = world.get("/api/runs", token="glpat-nobody")
    second = world.get("/api/runs", token="glpat-nobody")

    assert first.status_code == second.status_code == 401
    assert first.get_json()["reason"] == \
        "the token is neither a staff token nor a GitLab token that GitLab accepts"
    assert len(world.gitlab.requests_to("GET", r"^/api/v4/user$")) == 1


def test_a_staff_token_sees_every_project_without_asking_gitlab(world):
    queue_run(world.resources, commit_sha=SHA_A, project_path="students/alice")
    queue_run(world.resources, commit_sha=SHA_B, project_path="students/bob")

    response = world.get("/api/runs", token=STAFF_TOKEN)

    assert response.status_code == 200 and response.get_json()["total"] == 2
    assert world.gitlab.requests == []


def test_a_student_token_is_checked_once_then_cached(world):
    for _ in range(3):
        assert world.get("/api/runs", token=world.alice.token).status_code == 200

    assert [r.path for r in world.gitlab.requests] == ["/api/v4/user", "/api/v4/projects"]
    assert world.gitlab.requests[1].query["min_access_level"] == ["30"]


def test_a_student_is_denied_another_students_project_and_its_results(world):
    bobs = queue_run(world.resources, commit_sha=SHA_B, project_path="students/bob")
    end_run(world.resources, bobs.id, RunStatus.PASSED, score=1.0)
    alices = queue_run(world.resources, commit_sha=SHA_A, project_path="students/alice")
    token = world.alice.token

    test = world.post("/api/tests-celery", {"directory": ASSIGNMENT, "version_identifier": SHA_B,
                                            "project": "students/bob"}, token=token)
    by_id = world.post("/api/tests-celery", {"directory": ASSIGNMENT, "version_identifier": SHA_B,
                                             "project": world.bob_project["id"]}, token=token)
    run = world.get(f"/api/runs/{bobs.id}", token=token)
    task = world.get(f"/api/tasks/{bobs.celery_task_id}", token=token)
    listed = world.get("/api/runs?project=students/bob", token=token)
    everything = world.get("/api/runs", token=token)

    denied = "GitLab user alice does not have Developer access to project students/bob"
    for response in (test, run, task, listed):
        assert response.status_code == 403
        assert response.get_json()["reason"] == denied
    assert by_id.status_code == 403
    assert by_id.get_json()["reason"] == \
        f"GitLab user alice does not have Developer access to project id {world.bob_project['id']}"
    assert [r["id"] for r in everything.get_json()["items"]] == [alices.id]
    assert world.queued("high_priority") == []


def test_a_reporter_is_denied_the_project(world):
    response = world.post("/api/tests-celery", {"directory": ASSIGNMENT,
                                                "version_identifier": SHA_A,
                                                "project": "students/alice"},
                          token=world.carol.token)

    assert response.status_code == 403
    assert response.get_json()["reason"] == \
        "GitLab user carol does not have Developer access to project students/alice"


def test_a_student_sees_the_own_run_without_the_report(world):
    run = queue_run(world.resources, commit_sha=SHA_A, project_path="students/alice")
    end_run(world.resources, run.id, RunStatus.PASSED, report={"hidden": "details"})

    student = world.get(f"/api/runs/{run.id}", token=world.alice.token).get_json()
    staff = world.get(f"/api/runs/{run.id}").get_json()

    assert "report" not in student and student["status"] == "passed"
    assert staff["report"] == {"hidden": "details"}


def test_staff_only_operations_are_403_for_gitlab_tokens(world):
    regrade = world.post("/api/regrade", {"scope": "assignment", "assignment": ASSIGNMENT},
                         token=world.alice.token)
    workers = world.get("/api/tasks/workers/status", token=world.alice.token)

    assert regrade.status_code == workers.status_code == 403
    assert regrade.get_json()["reason"] == "only a staff token may regrade"
    assert workers.get_json()["reason"] == "only a staff token may inspect the workers"


def test_gitlab_down_is_503_and_not_cached(world):
    world.gitlab.inject_faults(FaultPlan(status=503, every=1, limit=1))

    down = world.get("/api/runs", token=world.alice.token)
    back = world.get("/api/runs", token=world.alice.token)

    assert down.status_code == 503
    assert down.get_json()["reason"] == \
        "GitLab could not be asked about the token; try again shortly"
    assert back.status_code == 200


def test_the_cache_expires_and_holds_no_token(world):
    now = [0.0]
    checker = TokenChecker(world.settings, clock=lambda: now[0])
    header = f"Bearer {world.alice.token}"

    assert checker.caller_for(header).username == "alice"
    now[0] = world.settings.api.gitlab_token_cache_seconds - 1
    checker.caller_for(header)
    now[0] = world.settings.api.gitlab_token_cache_seconds + 1
    checker.caller_for(header)

    assert len(world.gitlab.requests_to("GET", r"^/api/v4/user$")) == 2
    assert list(checker._cache) == [hashlib.sha256(world.alice.token.encode()).hexdigest()]


def test_plain_tokens_in_the_configuration_are_refused_without_being_echoed(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[api]\nstaff_token_hashes = "my-plain-staff-token"\n')

    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})

    assert str(error.value) == ("api.staff_token_hashes: entry 1 is not a sha256 hex digest "
                                "(64 hexadecimal characters); store digests, never tokens")
