"""Assignment directories as courses name them: discovered, graded, shown on GitLab and badges."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from sqlalchemy import select

from pipeline import testing
from pipeline.assignments import discover
from pipeline.branch_names import is_branch_name
from pipeline.ledger.models import CourseAssignment, RunStatus, TestRun
from pipeline.repos import InvalidInputError, check_directory
from pipeline.submissions.gitlab_side import submission_branch
from pipeline.tasks.reporting import report_run
from tests.infra.assignments import ONE_TEST
from tests.infra.badges import badge_texts
from tests.infra.ledger import migrated_resources, queue_run
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture
from tests.webhooks.deliveries import headers_for, payload_of
from webhooks.api.schemas import TestCreateSchema
from webhooks.app import create_app

SECRET = "directories-webhook-secret"
STUDENT = "prog1-2026/students/alice"
REFERENCE = "staff/reference"
UMLAUT = "Übung1/hallo"
HELLO = "greeting = 'hello'\n"
TAKEN = ["week1/hello", UMLAUT, "U\u0308bung1/hallo", "日本語/課題 1", "हिन्दी/अभ्यास१",
         "Aufgabe 1/teil_a.b+c-d", "x..y"]
REFUSED = ["-x", ".x", "a/../b", "..", "a/", "/a", "a//b", " a", "a:b", ":(top)a", "a\\b",
           "a*b", "a?b", "a[b]", "a\x00", "a\n", "a\x7f", "a\x85b", "a\u00a0b", "we\u200bek",
           "a\u202eb", "\u0308bung", "a\ufffdb", "a\udc80", "a\u2044b", "a" * 256]


def _course_settings(service_settings, gitlab_standin):  # noqa: F811
    _, settings = service_settings({
        "gitlab": {"url": gitlab_standin.url, "token": gitlab_standin.bot.token,
                   "webhook_secret": SECRET},
        "courses": [{"name": "prog1", "student_projects": ["prog1-2026/students/"],
                     "reference_project": REFERENCE, "discover_assignments": True}]})
    return settings


def _push(client, project_id: int, before: str, after: str, added: list[str]):
    payload = payload_of("push_hook__assignment_commits")
    payload.update(before=before, after=after, checkout_sha=after, project_id=project_id,
                   total_commits_count=1)
    payload["project"].update(id=project_id, path_with_namespace=STUDENT)
    payload["commits"] = [{**payload["commits"][0], "id": after, "added": added,
                           "modified": [], "removed": []}]
    return client.post("/webhooks/gitlab", json=payload,
                       headers={**headers_for("push_hook__assignment_commits"),
                                "X-Gitlab-Token": SECRET})


def test_an_assignment_named_with_umlauts_is_discovered_graded_and_shown(
        service_settings, git_server, gitlab_standin):  # noqa: F811
    settings = _course_settings(service_settings, gitlab_standin)
    resources = migrated_resources(settings)
    git_server.commit(REFERENCE, {f"{UMLAUT}/hello.py": HELLO, f"{UMLAUT}/test.yaml": ONE_TEST})
    first = git_server.commit(STUDENT, {"README.md": "mine\n"})
    sha = git_server.commit(STUDENT, {f"{UMLAUT}/hello.py": HELLO})
    project = gitlab_standin.add_project(STUDENT, branches={"main": sha})

    assert discover(resources.repositories, resources.sessions, settings.courses[0]) == [UMLAUT]
    app = create_app(settings)
    answer = _push(app.test_client(), project["id"], first, sha, [f"{UMLAUT}/hello.py"])
    assert answer.status_code == 202
    [run_id] = answer.get_json()["runs"]
    with resources.sessions() as session:
        run = session.get(TestRun, run_id)
    assert run.assignment == UMLAUT

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)
    report_run(resources, run.id)

    assert outcome.status == RunStatus.PASSED.value
    [status] = gitlab_standin.commit_statuses(project["id"], sha)
    assert (status["name"], status["status"]) == (f"gradehook/{UMLAUT}", "success")
    badge = app.test_client().get(
        f"/badges/{project['id']}/{urllib.parse.quote(UMLAUT)}.svg?ref=main")
    assert badge_texts(badge.data) == {"grade", "100%"}
    assert is_branch_name(submission_branch(UMLAUT))


@pytest.mark.parametrize("directory", TAKEN)
def test_letters_and_digits_of_any_script_make_an_assignment_directory(directory):
    assert check_directory(directory) == directory
    # The API documents a pattern every taken directory matches, read alike by JSON Schema.
    documented = TestCreateSchema().fields["directory"].metadata["pattern"]
    assert "\\w" not in documented and re.fullmatch(documented, directory)


@pytest.mark.parametrize("directory", REFUSED)
def test_names_git_or_a_shell_could_misread_are_refused(directory):
    with pytest.raises(InvalidInputError):
        check_directory(directory)
    documented = TestCreateSchema().fields["directory"].metadata["pattern"]
    if directory.isascii() and len(directory) <= 255:  # with maxLength, the whole ASCII rule
        assert not re.fullmatch(documented, directory)


def test_a_file_name_in_another_encoding_than_utf8_is_graded(service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    git_server.commit(REFERENCE, {"week1/hello/hello.py": HELLO, "week1/hello/test.yaml": ONE_TEST})
    first = git_server.commit("students/alice", {"README.md": "mine\n"})
    # Latin-1 bytes, as an old Windows tool commits "café.txt": not UTF-8.
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": HELLO,
                                               "week1/hello/caf\udce9.txt": "notes\n"})
    run = queue_run(resources, commit_sha=sha, before_sha=first, needs_diff=True)

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)

    assert outcome.status == RunStatus.PASSED.value


def test_discovery_leaves_out_and_names_the_folders_it_could_not_grade(
        service_settings, git_server, caplog):
    _, settings = service_settings({"courses": [{
        "name": "prog1", "student_projects": ["students/"], "reference_project": REFERENCE,
        "discover_assignments": True}]})
    resources = migrated_resources(settings)
    long = "/".join(["d" * 60] * 5)
    git_server.commit(REFERENCE, {"week1/hello/test.yaml": ONE_TEST,
                                  "Übung 1/(a)/test.yaml": ONE_TEST,
                                  f"{long}/test.yaml": ONE_TEST})

    with caplog.at_level("WARNING", logger="pipeline.assignments"):
        found = discover(resources.repositories, resources.sessions, settings.courses[0])
    assert found == ["week1/hello"]
    assert _recorded(resources) == ["week1/hello"]
    too_long, not_plain = _skipped(caplog)
    assert too_long.startswith(f"course prog1: '{long}' holds test.yaml at reference commit ")
    assert "its path has 304 characters, more than the 255" in too_long
    assert not_plain.startswith("course prog1: 'Übung 1/(a)' holds test.yaml")
    assert "must be folder names joined by '/'" in not_plain

    caplog.clear()
    with caplog.at_level("WARNING", logger="pipeline.assignments"):
        discover(resources.repositories, resources.sessions, settings.courses[0])
    assert _skipped(caplog) == []  # said once for each reference commit, not on every sweep


def _skipped(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "pipeline.assignments" and record.levelname == "WARNING"]


def _recorded(resources) -> list[str]:
    with resources.sessions() as session:
        return sorted(session.scalars(select(CourseAssignment.directory)))
