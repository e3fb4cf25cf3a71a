"""Path and ref injections are refused before git runs: receiver, REST API, repository cache.

A watching `git` first on PATH logs every git process; each hostile value must end in a clear
refusal with no git process started and no file made by an injected `--upload-pack`.
"""

from __future__ import annotations

import json

import pytest

from pipeline.ledger.models import Delivery, TestRun
from pipeline.repos import InvalidInputError, RepositoryCache
from tests.api.world import COURSE, build_world
from tests.infra.ledger import migrated_resources
from tests.security.hostile import GitWatch, hostile_directories, hostile_project_paths, \
    hostile_refs, hostile_shas
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture
from tests.webhooks.deliveries import headers_for, payload_of
from webhooks.app import create_app

STUDENT = "students/alice"
ASSIGNMENT = "week1/hello"
SECRET = "injection-webhook-secret"
# The arguments of each RepositoryCache method, by the kind of value each one takes.
SIGNATURES = {
    "url_for": ("project",),
    "mirror_path": ("project",),
    "ensure_commit": ("project", "sha"),
    "has_commit": ("project", "sha"),
    "tree": ("project", "sha"),
    "list_files": ("project", "sha"),
    "resolve_branch": ("project", "ref"),
    "has_path": ("project", "sha", "directory"),
    "extract": ("project", "sha", "directory", "dest"),
    "changed_paths": ("project", "sha", "sha"),
    "merge_base": ("project", "sha", "sha"),
}
HOSTILE = {"project": hostile_project_paths, "sha": hostile_shas, "ref": hostile_refs,
           "directory": hostile_directories}


@pytest.fixture
def canary(tmp_path):
    """The file an injected `--upload-pack=touch <canary>` would create."""
    return tmp_path / "INJECTED"


@pytest.fixture
def git_watch(tmp_path, monkeypatch) -> GitWatch:
    """Log every git process this test starts."""
    watch = GitWatch(tmp_path / "watch")
    watch.install(monkeypatch)
    return watch


@pytest.mark.parametrize("method", sorted(SIGNATURES))
def test_repository_cache_refuses_hostile_values_before_git_runs(
        method, tmp_path, git_server, git_watch, canary):
    sha = git_server.commit(STUDENT, {f"{ASSIGNMENT}/hello.py": "greeting = 'hi'\n"})
    cache = RepositoryCache(tmp_path / "cache", git_server.base_url)
    cache.ensure_commit(STUDENT, sha)
    assert any("fetch" in call for call in git_watch.calls()), "the watch must see git run"
    valid = {"project": STUDENT, "sha": sha, "ref": "main", "directory": ASSIGNMENT,
             "dest": tmp_path / "dest"}
    kinds = SIGNATURES[method]
    for position, kind in enumerate(kinds):
        if kind not in HOSTILE:
            continue
        for value in HOSTILE[kind](canary):
            arguments = [valid[k] for k in kinds]
            arguments[position] = value
            started = len(git_watch.calls())
            with pytest.raises(InvalidInputError):
                getattr(cache, method)(*arguments)
            assert git_watch.calls()[started:] == [], f"git ran for {method}({value!r:.60})"
    assert not canary.exists()


@pytest.fixture
def receiver(service_settings):
    """The webhook receiver of the app factory, on the test's PostgreSQL and Redis."""
    _, settings = service_settings({
        "gitlab": {"webhook_secret": SECRET},
        "courses": [{"name": "prog1", "student_projects": ["prog1-2026/students/"],
                     "reference_project": "prog1-2026/reference", "discover_assignments": False,
                     "assignments": [{"directory": "week1/assignment1"}]}]})
    resources = migrated_resources(settings)
    return create_app(settings).test_client(), resources


def _push(**changes) -> dict:
    payload = payload_of("push_hook__assignment_commits")
    project = changes.pop("project", None)
    payload.update(changes)
    if project is not None:
        payload["project"]["path_with_namespace"] = project
    return payload


def _merge_request(source_branch: str) -> dict:
    payload = payload_of("merge_request_hook__open_docs_example")
    payload["object_attributes"]["source_branch"] = source_branch
    return payload


def test_webhook_receiver_refuses_hostile_refs_shas_and_paths(receiver, git_watch, canary):
    client, resources = receiver
    deliveries = (
        [("Push Hook", _push(ref=f"refs/heads/{ref}")) for ref in hostile_refs(canary)]
        + [("Push Hook", _push(after=sha, checkout_sha=sha)) for sha in hostile_shas(canary)]
        # Inside the course's group, so that only the parser stands between them and a run.
        + [("Push Hook", _push(project=f"prog1-2026/{path}"))
           for path in hostile_project_paths(canary)]
        + [("Merge Request Hook", _merge_request(ref)) for ref in hostile_refs(canary)])
    for number, (event, payload) in enumerate(deliveries):
        response = client.post("/webhooks/gitlab", data=json.dumps(payload).encode(),
                               headers={**headers_for("push_hook__x"), "X-Gitlab-Event": event,
                                        "X-Gitlab-Token": SECRET,
                                        "Idempotency-Key": f"hostile-{number}"})
        assert response.status_code == 400, (number, response.get_json())
    with resources.sessions() as session:
        assert session.query(Delivery).count() == 0
        assert session.query(TestRun).count() == 0
    assert git_watch.calls() == [] and not canary.exists()


def test_rest_api_refuses_hostile_directories_commits_and_projects(
        service_settings, gitlab_standin, redis_db, git_watch, canary):  # noqa: F811
    world = build_world(service_settings, gitlab_standin, redis_db)
    valid = {"directory": COURSE["assignments"][0]["directory"],
             "version_identifier": "a" * 40, "project": STUDENT}
    bodies = ([{**valid, "directory": d} for d in hostile_directories(canary)]
              + [{**valid, "version_identifier": s} for s in hostile_shas(canary)]
              + [{**valid, "project": p} for p in hostile_project_paths(canary)])
    for body in bodies:
        response = world.post("/api/tests-celery", body)
        assert response.status_code in (400, 422), (body, response.get_json())
    with world.resources.sessions() as session:
        assert session.query(TestRun).count() == 0
    assert git_watch.calls() == [] and not canary.exists()
