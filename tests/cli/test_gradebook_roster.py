"""`gradehook submissions --final`: students who never pushed, from the projects GitLab lists."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from pipeline.ledger.models import RosterProject

from tests.cli.commands import ASSIGNMENT, COURSE, gradehook
from tests.infra.ledger import add_submission, migrated_resources, roster_read_at
from tests.support.gitlab_standin import FaultPlan, gitlab_standin  # noqa: F401

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
# More than GitLab's largest page (100): the group's projects come in two pages.
CLASS_SIZE = 104
CLASS = [f"students/s{number:03d}-2026" for number in range(CLASS_SIZE)]
GROUP_PROJECTS = r"/groups/students/projects$"


@pytest.fixture
def course(service_settings, gitlab_standin):  # noqa: F811 (the fixture)
    """A class of 104 student projects in group students (one in a subgroup), a project of
    that group the course's pattern does not claim, one student named by path outside it; s000
    handed in and was accepted, s001 handed in late and was refused, none of the others
    pushed."""
    gitlab = gitlab_standin
    for path in CLASS[:-1] + ["students/late/s103-2026", "students/tutor-notes"]:
        gitlab.add_project(path)
    config, settings = service_settings({
        "gitlab": {"url": gitlab.url, "token": gitlab.bot.token},
        "courses": [{**COURSE, "student_projects": ["students/*-2026", "guests/erin"]}]})
    resources = migrated_resources(settings)
    add_submission(resources, commit_sha="a" * 40, counted_at=T0, score=0.5,
                   project_path=CLASS[0])
    add_submission(resources, commit_sha="b" * 40, counted_at=T0, outcome="refused", late=True,
                   project_path=CLASS[1],
                   reason="handed in after the deadline of 2026-03-01 09:00:00 UTC: ...")
    return gitlab, config, settings


def lines(result) -> list[tuple[str, str, str]]:
    return [(r["project"], r["outcome"], r["missing"])
            for r in csv.DictReader(io.StringIO(result.stdout))]


def test_the_gradebook_has_a_line_for_each_student_project_that_never_pushed(course):
    """Before, a student who never pushed had no line at all: the ledger never heard of them,
    and staff exporting grades at the deadline could not see who was missing."""
    gitlab, config, _ = course

    exported = gradehook(config, "submissions", "--final", "--csv")

    assert (exported.exit_code, exported.stderr) == (0, "")
    never_pushed = ["guests/erin", "students/late/s103-2026", *CLASS[2:-1]]
    assert lines(exported) == sorted([
        (CLASS[0], "accepted", ""), (CLASS[1], "", "refused: late"),
        *((path, "", "no push received") for path in never_pushed)])
    assert [r.query.get("page", ["1"]) for r in gitlab.requests_to("GET", GROUP_PROJECTS)] \
        == [["1"], ["2"]]


def test_the_table_lists_the_missing_grades_below_the_final_submissions(course):
    _, config, _ = course

    table = gradehook(config, "submissions", "--final", "--project", "guests/erin")

    assert table.exit_code == 0
    assert [line.split() for line in table.stdout.splitlines()] == [
        ["PROJECT", "ASSIGNMENT", "COMMIT", "OUTCOME", "LATE", "SCORE", "TESTS", "RECEIVED",
         "(UTC)"],
        ["0", "of", "0", "submission(s)"],
        [],
        "1 grade(s) missing (no accepted submission):".split(),
        ["PROJECT", "ASSIGNMENT", "MISSING"],
        ["guests/erin", ASSIGNMENT, "no", "push", "received"]]


def test_gitlab_failing_on_a_page_leaves_the_rest_of_the_gradebook_and_says_so(course):
    """GitLab fails as the second page is read: no half list of the group's students (those the
    course names by path need no GitLab), a note, exit 1."""
    gitlab, config, settings = course
    gitlab.inject_faults(FaultPlan(status=503, every=2, path_pattern=GROUP_PROJECTS))

    exported = gradehook(config, "submissions", "--final", "--csv")

    read_at = roster_read_at(migrated_resources(settings), "prog1")
    assert (exported.exit_code, exported.stderr) == (1, (
        f"gradehook: the student projects of course prog1 could not be listed from GitLab at "
        f"{read_at}: list group projects: HTTP 503, an HTML page; students who never "
        f"pushed are not in this gradebook\n"))
    assert lines(exported) == [("guests/erin", "", "no push received"),
                               (CLASS[0], "accepted", ""), (CLASS[1], "", "refused: late")]


def test_the_gradebook_lists_gitlab_now_and_keeps_the_listing_for_the_api(course):
    """The command reads GitLab's listing fresh and keeps it: the API's gradebooks show it."""
    gitlab, config, settings = course
    gradehook(config, "submissions", "--final", "--csv")
    gitlab.add_project("students/s900-2026")

    exported = gradehook(config, "submissions", "--final", "--csv")

    assert ("students/s900-2026", "", "no push received") in lines(exported)
    with migrated_resources(settings).sessions() as session:
        kept = session.scalars(select(RosterProject.project_path)
                               .where(RosterProject.course == "prog1")).all()
    assert sorted(kept) == sorted(["guests/erin", "students/late/s103-2026",
                                   "students/s900-2026", *CLASS[:-1]])


def test_a_token_gitlab_refuses_leaves_the_rest_of_the_gradebook_and_says_so(
        course, service_settings):
    gitlab, _, _ = course
    config, settings = service_settings({
        "gitlab": {"url": gitlab.url, "token": "glpat-revoked"},
        "courses": [{**COURSE, "student_projects": ["students/*-2026", "guests/erin"]}]})

    table = gradehook(config, "submissions", "--final")

    read_at = roster_read_at(migrated_resources(settings), "prog1")
    assert (table.exit_code, table.stderr) == (1, (
        f"gradehook: the projects of group students of course prog1 could not be listed from "
        f"GitLab at {read_at}: list group projects: 401 Unauthorized; its students "
        f"who never pushed are not in this gradebook\n"))
    assert [re.split(r"\s{2,}", line) for line in table.stdout.splitlines()[-4:]] == [
        ["2 grade(s) missing (no accepted submission):"],
        ["PROJECT", "ASSIGNMENT", "MISSING"],
        ["guests/erin", ASSIGNMENT, "no push received"],
        [CLASS[1], ASSIGNMENT, "refused: late"]]


def test_without_a_gitlab_token_the_gradebook_says_it_lacks_who_never_pushed(
        service_settings):
    config, settings = service_settings({"courses": [COURSE]})
    add_submission(migrated_resources(settings), commit_sha="a" * 40, counted_at=T0, score=1.0)

    exported = gradehook(config, "submissions", "--final", "--csv")

    read_at = roster_read_at(migrated_resources(settings), "prog1")
    assert exported.exit_code == 1
    assert exported.stderr == (
        f"gradehook: the student projects of course prog1 could not be listed from GitLab at "
        f"{read_at}: no GitLab token is configured (gitlab.token, GITLAB_TOKEN); "
        f"students who never pushed are not in this gradebook\n")
    assert lines(exported) == [("students/alice", "accepted", "")]


def test_a_course_naming_its_students_one_by_one_needs_no_gitlab(service_settings):
    config, settings = service_settings({"courses": [
        {**COURSE, "student_projects": ["students/alice", "students/bob"]}]})
    add_submission(migrated_resources(settings), commit_sha="a" * 40, counted_at=T0, score=1.0)

    exported = gradehook(config, "submissions", "--final", "--csv")

    assert (exported.exit_code, exported.stderr) == (0, "")
    assert lines(exported) == [("students/alice", "accepted", ""),
                               ("students/bob", "", "no push received")]


def test_a_group_two_entries_start_with_is_listed_once(course, service_settings):
    """Before, each entry listed its group: a course of students/*-2026 and students/*-retake
    read the 104 projects of students from GitLab twice for each gradebook."""
    gitlab, _, _ = course
    gitlab.add_project("students/s200-retake")
    config, _ = service_settings({
        "gitlab": {"url": gitlab.url, "token": gitlab.bot.token},
        "courses": [{**COURSE, "student_projects": ["students/*-2026", "students/*-retake"]}]})

    exported = gradehook(config, "submissions", "--final", "--csv")

    assert (exported.exit_code, exported.stderr) == (0, "")
    assert ("students/s200-retake", "", "no push received") in lines(exported)
    assert [r.query.get("page", ["1"]) for r in gitlab.requests_to("GET", GROUP_PROJECTS)] \
        == [["1"], ["2"]]


def test_a_student_whose_project_was_renamed_after_pushing_is_not_taken_for_one_who_never_did(
        course):
    """Before, the gradebook matched GitLab's projects with the ledger's by path alone: a
    project renamed (or moved) after its submission, known to the ledger by its former path,
    had a second line under its new one, 'no push received', as if the student never pushed."""
    gitlab, config, settings = course
    renamed = gitlab.add_project("students/s150-2026")
    add_submission(migrated_resources(settings), commit_sha="c" * 40, counted_at=T0, score=1.0,
                   project_path="students/s150", project_id=renamed["id"])

    exported = gradehook(config, "submissions", "--final", "--csv")

    assert (exported.exit_code, exported.stderr) == (0, "")
    assert [line for line in lines(exported) if "s150" in line[0]] == [
        ("students/s150", "accepted", "")]
