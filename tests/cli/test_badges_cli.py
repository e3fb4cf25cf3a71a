"""`gradehook badges install` against the GitLab stand-in, and the badges it installs served."""

from __future__ import annotations

import logging
import re
import urllib.parse
from pathlib import Path

import pytest

from pipeline.badge_keys import badge_key
from pipeline.ledger.models import RunStatus
from tests.cli.commands import ASSIGNMENT, COURSE, gradehook
from tests.cli.test_maintenance_cli import finish
from tests.infra.ledger import migrated_resources, queue_run
from tests.support.gitlab_standin import DEVELOPER, MAINTAINER, gitlab_standin  # noqa: F401
from webhooks.app import create_app

SECRET = "course-badge-secret-" + "x" * 20
PUBLIC_URL = "https://grades.example.org"
BADGE_NAME = f"gradehook score {ASSIGNMENT}"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def course(service_settings, gitlab_standin):  # noqa: F811 (the fixture)
    """A course of three student projects; gradehook's account maintains two, develops one."""
    gitlab = gitlab_standin
    account = gitlab.add_user("course-bot")
    projects = {name: gitlab.add_project(f"students/{name}", branches={"main": "a" * 40})
                for name in ("alice", "bob", "carol")}
    for name, role in (("alice", MAINTAINER), ("bob", MAINTAINER), ("carol", DEVELOPER)):
        gitlab.add_member(projects[name]["id"], account.id, role)

    def configure(student_projects=("students/",), **server):
        return service_settings({
            "gitlab": {"url": gitlab.url, "token": account.token},
            "server": {"public_url": PUBLIC_URL, "badge_key": SECRET, **server},
            "courses": [{**COURSE, "student_projects": list(student_projects)}]})
    return gitlab, projects, configure


def ours(gitlab, project) -> list[dict]:
    return [b for b in gitlab.badges(project["id"]) if b["name"] == BADGE_NAME]


def test_install_adds_one_keyed_badge_per_project_and_reports_each(course):
    gitlab, projects, configure = course
    config, settings = configure()
    migrated_resources(settings)

    result = gradehook(config, "badges", "install", "--course", "prog1", "--assignment",
                       ASSIGNMENT)

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[:2] == ["students/alice: badge added", "students/bob: badge added"]
    assert lines[2].startswith("students/carol: failed: add project badge: 403")
    assert lines[3:] == ["2 project(s) have the badge, 1 failed"]
    alice = projects["alice"]["id"]
    key = badge_key(SECRET, alice)
    [badge] = ours(gitlab, projects["alice"])
    assert badge["kind"] == "project"
    assert badge["image_url"] == (f"{PUBLIC_URL}/badges/{alice}/week1/hello.svg"
                                  f"?ref=%{{default_branch}}&key={key}")
    assert badge["link_url"] == (f"{PUBLIC_URL}/results/latest/{alice}/week1/hello"
                                 f"?ref=%{{default_branch}}&key={key}")
    assert ours(gitlab, projects["carol"]) == []


def test_installing_again_changes_nothing_and_a_new_ref_updates_in_place(course):
    gitlab, projects, configure = course
    config, settings = configure()
    migrated_resources(settings)
    gradehook(config, "badges", "install", "--course", "prog1", "--assignment", ASSIGNMENT)

    def changes() -> int:
        return len([r for r in gitlab.requests if r.method in ("POST", "PUT") and r.status < 400])
    written = changes()
    again = gradehook(config, "badges", "install", "--course", "prog1", "--assignment",
                      f"/{ASSIGNMENT}/")
    unchanged = changes()
    moved = gradehook(config, "badges", "install", "--course", "prog1", "--assignment",
                      ASSIGNMENT, "--ref", "feature/x")

    assert again.output.splitlines()[:2] == ["students/alice: badge already up to date",
                                             "students/bob: badge already up to date"]
    assert (written, unchanged) == (2, 2)
    assert moved.output.splitlines()[:2] == ["students/alice: badge updated",
                                             "students/bob: badge updated"]
    [badge] = ours(gitlab, projects["bob"])
    assert "?ref=feature%2Fx&key=" in badge["image_url"]
    assert changes() == 4


def test_installed_urls_are_the_ones_gradehook_serves(course):
    gitlab, projects, configure = course
    config, settings = configure()
    resources = migrated_resources(settings)
    alice = projects["alice"]["id"]
    run = queue_run(resources, commit_sha="a" * 40, project_id=alice, ref="main")
    finish(resources, run.id, RunStatus.PASSED, score=1.0, report={"tests": []})
    gradehook(config, "badges", "install", "--course", "prog1", "--assignment", ASSIGNMENT)
    [badge] = ours(gitlab, projects["alice"])
    client = create_app(settings).test_client()

    def local(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
        return f"{parts.path}?{parts.query}"

    image = client.get(local(badge["rendered_image_url"]))
    link = client.get(local(badge["rendered_link_url"]))
    assert image.status_code == 200 and image.mimetype == "image/svg+xml"
    assert link.status_code == 302 and link.headers["Location"] == f"/results/{run.id}"
    bob = ours(gitlab, projects["bob"])[0]["rendered_image_url"]
    assert client.get(local(bob).replace(f"/badges/{projects['bob']['id']}/",
                                         f"/badges/{alice}/")).status_code == 404


def test_a_project_or_group_gitlab_does_not_find_fails_alone(course):
    gitlab, projects, configure = course
    config, settings = configure(student_projects=["students/", "gone-group/"])
    resources = migrated_resources(settings)
    queue_run(resources, commit_sha="b" * 40, project_path="students/gone", project_id=None)

    result = gradehook(config, "badges", "install", "--course", "prog1", "--assignment",
                       ASSIGNMENT)

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == ("group gone-group: failed: its projects could not be listed: list group "
                        "projects: 404 Group Not Found")
    assert "students/gone: failed: get project: 404 Project Not Found" in lines
    assert "students/alice: badge added" in lines
    assert lines[-1] == "2 project(s) have the badge, 3 failed"


def test_the_key_and_its_secret_are_in_no_output_or_log(course, caplog):
    gitlab, projects, configure = course
    config, settings = configure()
    migrated_resources(settings)
    caplog.set_level(logging.DEBUG)

    result = gradehook(config, "badges", "install", "--course", "prog1", "--assignment",
                       ASSIGNMENT)

    keys = {badge_key(SECRET, p["id"]) for p in projects.values()}
    for text in (result.output, caplog.text):
        assert SECRET not in text
        assert not any(key in text for key in keys)
    assert ours(gitlab, projects["alice"]), "the badges were installed"


@pytest.mark.parametrize("server, problem", [
    ({"badge_key": ""}, "Error: installing badges needs server.badge_key (GRADEHOOK_BADGE_KEY)"),
    ({"public_url": ""}, "Error: installing badges needs server.public_url"),
])
def test_install_refuses_without_a_key_or_public_address(course, server, problem):
    gitlab, _, configure = course
    config, _ = configure(**server)

    result = gradehook(config, "badges", "install", "--course", "prog1", "--assignment",
                       ASSIGNMENT)

    assert result.exit_code == 1 and result.output.startswith(problem)
    assert gitlab.requests == []


def test_the_refusal_without_a_key_names_a_section_readme_has(course):
    _, _, configure = course
    config, _ = configure(badge_key="")

    output = gradehook(config, "badges", "install", "--course", "prog1", "--assignment",
                       ASSIGNMENT).output

    section = re.search(r'\(README, "([^"]+)"', output)[1]
    assert f"\n## {section}\n" in README.read_text()


@pytest.mark.parametrize("args, problem", [
    (["--course", "nope", "--assignment", ASSIGNMENT], "no course named 'nope' is configured"),
    (["--course", "prog1", "--assignment", "week1/../x"], "'week1/../x' is not an assignment"),
    (["--course", "prog1", "--assignment", "week1/helo"],
     "week1/helo is not an assignment of course prog1; did you mean week1/hello?\n"),
    (["--course", "prog1", "--assignment", ASSIGNMENT, "--ref", "a..b"],
     "'a..b' is not a branch name git accepts"),
])
def test_install_names_a_wrong_course_assignment_or_ref(course, args, problem):
    gitlab, _, configure = course
    config, settings = configure()
    migrated_resources(settings)

    result = gradehook(config, "badges", "install", *args)

    assert result.exit_code == 1 and result.output.startswith(f"Error: {problem}")
    assert gitlab.requests == []
