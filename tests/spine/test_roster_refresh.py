"""The courses' rosters kept in the ledger: listed by the beat's task, every page of each group;
a group GitLab refuses keeps its projects listed before, GitLab away keeps the whole listing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from gitlab_client import TransientGitLabError
from pipeline.celery_app import REFRESH_ROSTERS, create_celery
from pipeline.ledger.db import transaction
from pipeline.ledger.models import CourseRoster, RosterProject, utcnow
from pipeline.rosters import refresh_rosters
from pipeline.student_projects import course_projects
from tests.cli.commands import COURSE
from tests.infra.ledger import embedded_settings, migrated_resources
from tests.support.gitlab_standin import FaultPlan, gitlab_standin  # noqa: F401

# More than GitLab's largest page (100): the group's projects come in two pages.
CLASS = [f"students/s{number:03d}" for number in range(104)]
STUDENTS_GROUP = r"^/api/v4/groups/students/projects$"
REFUSED = "list group projects: 403 Internal Server Error"  # the stand-in's fault


@pytest.fixture
def course(service_settings, gitlab_standin):  # noqa: F811 (the fixture)
    """A course of group students (104 projects), the tutors/t* of group tutors and guests/erin
    by path; the beat lists its roster every 120 s."""
    gitlab = gitlab_standin
    ids = {path: gitlab.add_project(path)["id"] for path in CLASS + ["tutors/t1", "tutors/x"]}
    _, settings = service_settings({
        "gitlab": {"url": gitlab.url, "token": gitlab.bot.token},
        "worker": {"roster_interval_seconds": 120},
        "courses": [{**COURSE, "student_projects": ["students/", "tutors/t*", "guests/erin"]}]})
    return gitlab, settings, migrated_resources(settings), ids


def kept(resources) -> tuple[dict[str, int | None], CourseRoster]:
    """Return the course's roster the ledger keeps, and its last read."""
    with resources.sessions() as session:
        return (dict(session.execute(select(RosterProject.project_path, RosterProject.project_id)
                                     .where(RosterProject.course == "prog1")).all()),
                session.get(CourseRoster, "prog1"))


def test_the_beats_task_lists_every_page_of_each_group_and_keeps_the_roster(course):
    """Before, no roster was kept: each gradebook listed the groups inside its request."""
    gitlab, settings, resources, ids = course
    celery = create_celery(settings)
    celery.loader.import_default_modules()

    celery.tasks[REFRESH_ROSTERS].apply().get()

    assert celery.conf.beat_schedule["refresh_rosters"] == {"task": REFRESH_ROSTERS,
                                                            "schedule": 120.0}
    projects, read = kept(resources)
    assert projects == {**{path: ids[path] for path in CLASS}, "tutors/t1": ids["tutors/t1"],
                        "guests/erin": None}
    assert (read.listed_at, read.problems) == (read.read_at, [])
    assert [r.query.get("page", ["1"]) for r in gitlab.requests_to("GET", STUDENTS_GROUP)] \
        == [["1"], ["2"]]


def test_a_group_gitlab_refuses_keeps_its_projects_listed_before(course):
    gitlab, _, resources, _ = course
    refresh_rosters(resources)
    before, first = kept(resources)
    gitlab.add_project("students/s900")
    t2 = gitlab.add_project("tutors/t2")
    gitlab.inject_faults(FaultPlan(status=403, every=1, path_pattern=STUDENTS_GROUP))

    refresh_rosters(resources)
    refresh_rosters(resources)

    projects, read = kept(resources)
    assert projects == {**before, "tutors/t2": t2["id"]}
    assert read.problems == [{"group": "students", "reason": REFUSED,
                              "kept_from": first.listed_at.isoformat()}]
    gitlab.clear_faults()
    refresh_rosters(resources)
    assert "students/s900" in kept(resources)[0] and kept(resources)[1].problems == []


def test_a_group_refused_before_it_was_ever_listed_keeps_nothing(course):
    gitlab, _, resources, ids = course
    gitlab.inject_faults(FaultPlan(status=403, every=1, path_pattern=STUDENTS_GROUP))

    refresh_rosters(resources)

    projects, read = kept(resources)
    assert projects == {"tutors/t1": ids["tutors/t1"], "guests/erin": None}
    assert read.problems == [{"group": "students", "reason": REFUSED,
                              "kept_from": None}]


def test_gitlab_away_keeps_the_whole_listing_read_before(course):
    gitlab, _, resources, _ = course
    refresh_rosters(resources)
    before, first = kept(resources)
    gitlab.add_project("students/s900")
    gitlab.inject_faults(FaultPlan(status=503, every=1, path_pattern=r"^/api/v4/groups/"))

    refresh_rosters(resources)

    projects, read = kept(resources)
    assert projects == before
    assert (read.listed_at, read.problems) == (first.listed_at, [{
        "group": None, "reason": "list group projects: HTTP 503, an HTML page",
        "kept_from": first.listed_at.isoformat()}])


def test_the_roster_is_kept_on_the_embedded_sqlite_ledger(
        tmp_path, monkeypatch, gitlab_standin):  # noqa: F811 (the fixture)
    gitlab = gitlab_standin
    alice = gitlab.add_project("students/alice")
    resources = migrated_resources(embedded_settings(tmp_path, monkeypatch, {
        "gitlab": {"url": gitlab.url, "token": gitlab.bot.token}, "courses": [COURSE]}))
    refresh_rosters(resources)
    first = kept(resources)[1]
    gitlab.add_project("students/bob")
    gitlab.inject_faults(FaultPlan(status=403, every=1, path_pattern=STUDENTS_GROUP))

    refresh_rosters(resources)

    projects, read = kept(resources)
    assert projects == {"students/alice": alice["id"]}
    assert (read.listed_at > first.listed_at, read.problems) == (True, [{
        "group": "students", "reason": REFUSED, "kept_from": first.listed_at.isoformat()}])


def test_a_read_begun_before_one_kept_meanwhile_keeps_nothing(course):
    """The beat's read and the command's at once: the one begun last lists GitLab as it was
    last; the other, kept after it, would put an older listing back."""
    gitlab, _, resources, _ = course
    newer = utcnow() + dt.timedelta(minutes=1)  # a read begun after this one, kept first
    with transaction(resources.sessions) as session:
        session.add(CourseRoster(course="prog1", read_at=newer, listed_at=newer, problems=[]))
        session.add(RosterProject(course="prog1", project_path="students/s000", project_id=7))

    refresh_rosters(resources)

    projects, read = kept(resources)
    assert (projects, read.read_at, read.listed_at) == ({"students/s000": 7}, newer, newer)


def test_a_regrades_badges_or_sweeps_listing_is_kept_as_the_roster(course):
    """A regrade, the badges and the merge request sweep list the course's groups anyway
    (course_projects): their listing, or GitLab away, is kept as the beat's is."""
    gitlab, settings, resources, ids = course
    listed = course_projects(resources.sessions, resources.gitlab, settings.courses[0])
    first = kept(resources)[1]
    gitlab.inject_faults(FaultPlan(status=503, every=1, path_pattern=r"^/api/v4/groups/"))

    with pytest.raises(TransientGitLabError):
        course_projects(resources.sessions, resources.gitlab, settings.courses[0])

    projects, read = kept(resources)
    assert projects == listed.projects == {**{path: ids[path] for path in CLASS},
                                           "tutors/t1": ids["tutors/t1"], "guests/erin": None}
    assert (read.listed_at, read.problems) == (first.listed_at, [{
        "group": None, "reason": "list group projects: HTTP 503, an HTML page",
        "kept_from": first.listed_at.isoformat()}])
