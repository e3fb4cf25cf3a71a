"""GET /api/submissions: filters, newest first, each student's final submission, access."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.ledger.db import transaction
from pipeline.ledger.models import RosterProject
from pipeline.rosters import refresh_rosters
from tests.api.world import (ASSIGNMENT, OTHER_ASSIGNMENT, SHA_A, SHA_B, SHA_C, STAFF_TOKEN, bearer,
                             staff_digest)
from tests.infra.ledger import (add_submission, embedded_settings, migrated_resources,
                                roster_read_at)
from tests.support.gitlab_standin import DEVELOPER, FaultPlan
from webhooks.app import create_app

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
SHA_D, SHA_E = "d" * 40, "e" * 40
GROUPS = r"^/api/v4/groups/"


@pytest.fixture
def seeded(world):
    """alice: week1 accepted at 10:00 (50 %) and 12:00 (100 %, late), refused at 13:00, week2
    accepted; bob: week1 accepted at 11:00 (75 %) and a pending one at 14:00."""
    r = world.resources
    return [
        add_submission(r, commit_sha=SHA_A, counted_at=T0, score=0.5),
        add_submission(r, commit_sha=SHA_B, counted_at=T0 + dt.timedelta(hours=2), score=1.0,
                       late=True),
        add_submission(r, commit_sha=SHA_C, counted_at=T0 + dt.timedelta(hours=3),
                       outcome="refused", reason="the limit of 2 accepted submissions of "
                                                 "week1/hello is reached"),
        add_submission(r, commit_sha=SHA_D, counted_at=T0 + dt.timedelta(minutes=30),
                       assignment=OTHER_ASSIGNMENT, score=0.25),
        add_submission(r, commit_sha=SHA_A, counted_at=T0 + dt.timedelta(hours=1), score=0.75,
                       project_path="students/bob"),
        add_submission(r, commit_sha=SHA_E, counted_at=T0 + dt.timedelta(hours=4),
                       outcome="pending", project_path="students/bob"),
    ]


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


@pytest.mark.parametrize("query, expected", [
    ("", [5, 2, 1, 4, 3, 0]),
    ("?project=students/bob", [5, 4]),
    (f"?assignment={OTHER_ASSIGNMENT}", [3]),
    ("?outcome=refused", [2]),
    ("?late=true", [1]),
    ("?late=false&project=students/alice", [2, 3, 0]),
    ("?course=other", []),
    # Each student's last accepted submission of each assignment, by project and assignment:
    # alice's late one at 12:00 (not the refused one after it), her week2 one, bob's at 11:00
    # (not his pending one).
    ("?final=true", [1, 3, 4]),
    (f"?final=true&assignment={ASSIGNMENT}", [1, 4]),
    ("?final=true&outcome=accepted&project=students/bob", [4]),
    # Lateness is that of the final submission: alice's on-time one at 10:00 is not her final.
    ("?final=true&late=false", [3, 4]),
    ("?final=true&late=true", [1]),
])
def test_filters_and_final_submissions(world, seeded, query, expected):
    assert ids(world.get(f"/api/submissions{query}")) == [seeded[i] for i in expected]


def test_a_project_id_finds_the_projects_submissions_recorded_without_it(world, seeded):
    """Before, ?project=<id> listed only the submissions recorded with the id: alice's handed
    in while GitLab did not say her project's id were missing from her list, and a gradebook."""
    alice = world.alice_project["id"]
    with_id = add_submission(world.resources, commit_sha=SHA_E, project_id=alice,
                             counted_at=T0 + dt.timedelta(hours=5))

    assert ids(world.get(f"/api/submissions?project={alice}")) == \
        [with_id, *(seeded[i] for i in (2, 1, 3, 0))]
    assert ids(world.get(f"/api/submissions?project={alice}&final=true")) == \
        [with_id, seeded[3]]


def test_a_gradebook_names_each_known_students_missing_grades(world, seeded):
    """Before, a student without an accepted submission of an assignment had no line at all:
    bob, who handed in no week2, and carol, whose one hand-in came late."""
    add_submission(world.resources, commit_sha=SHA_E, counted_at=T0, outcome="refused",
                   late=True, project_path="students/carol",
                   reason="handed in after the deadline of 2026-03-01 09:00:00 UTC: ...")

    gradebook = world.get("/api/submissions?final=true&per_page=1").get_json()
    bobs = world.get("/api/submissions?final=true", token=world.bob.token).get_json()

    assert gradebook["missing"] == [
        {"course": "prog1", "project_path": "students/bob", "assignment": OTHER_ASSIGNMENT,
         "why": "no submission"},
        {"course": "prog1", "project_path": "students/carol", "assignment": ASSIGNMENT,
         "why": "refused: late"},
        {"course": "prog1", "project_path": "students/carol", "assignment": OTHER_ASSIGNMENT,
         "why": "no submission"}]
    assert (len(gradebook["items"]), gradebook["total"]) == (1, 3)
    assert [m["project_path"] for m in bobs["missing"]] == ["students/bob"]
    for query in ("", "?final=true&late=true", "?final=true&outcome=accepted"):
        assert world.get(f"/api/submissions{query}").get_json()["missing"] is None


def test_a_gradebook_names_the_student_projects_that_never_pushed(world, seeded):
    """Before, dave, whose project GitLab lists in the course's group but who never pushed,
    was absent from missing: the ledger never heard of him."""
    dave = world.gitlab.add_project("students/dave")
    world.gitlab.add_project("staff/tools")  # not a student project of the course
    refresh_rosters(world.resources)
    never_pushed = [{"course": "prog1", "project_path": "students/dave", "assignment": each,
                     "why": "no push received"} for each in (ASSIGNMENT, OTHER_ASSIGNMENT)]

    gradebook = world.get("/api/submissions?final=true").get_json()
    by_id = world.get(f"/api/submissions?final=true&project={dave['id']}").get_json()
    bobs = world.get("/api/submissions?final=true", token=world.bob.token).get_json()

    assert gradebook["missing"] == [
        {"course": "prog1", "project_path": "students/bob", "assignment": OTHER_ASSIGNMENT,
         "why": "no submission"}, *never_pushed]
    assert (by_id["missing"], by_id["total"]) == (never_pushed, 0)
    assert [m["project_path"] for m in bobs["missing"]] == ["students/bob"]
    assert gradebook["roster_problems"] == by_id["roster_problems"] == []
    assert world.get("/api/submissions").get_json()["roster_problems"] is None


def test_a_gradebook_asks_gitlab_nothing(world, seeded):
    """Before, every page of a gradebook listed the course's groups from GitLab inside the
    request: a 60-page gradebook listed them 60 times, each waiting on GitLab."""
    world.gitlab.add_project("students/dave")
    refresh_rosters(world.resources)
    listed = len(world.gitlab.requests_to("GET", GROUPS))

    pages = [world.get(f"/api/submissions?final=true&per_page=1&page={page}").get_json()
             for page in (1, 2, 3)]

    assert len(world.gitlab.requests_to("GET", GROUPS)) == listed
    assert [[m["project_path"] for m in page["missing"]] for page in pages] == \
        [["students/bob", "students/dave", "students/dave"]] * 3


def test_a_gradebook_before_the_first_listing_says_none_was_read(world, seeded):
    world.gitlab.add_project("students/dave")

    response = world.get("/api/submissions?final=true")

    assert response.status_code == 200
    assert [m["project_path"] for m in response.get_json()["missing"]] == ["students/bob"]
    assert response.get_json()["roster_problems"] == [
        "the student projects of course prog1 have not been listed from GitLab yet (gradehook "
        "lists them every 900 s, and `gradehook submissions --final` does at once); students "
        "who never pushed are not in this gradebook"]
    assert world.gitlab.requests_to("GET", GROUPS) == []


def test_a_gradebook_leaves_out_a_kept_project_the_course_no_longer_claims(world, seeded):
    """config.toml changed since the listing: staff/tools, listed under an older entry, is no
    student of the course now."""
    world.gitlab.add_project("students/dave")
    refresh_rosters(world.resources)
    with transaction(world.resources.sessions) as session:
        session.add(RosterProject(course="prog1", project_path="staff/tools", project_id=9))

    gradebook = world.get("/api/submissions?final=true").get_json()

    assert [m["project_path"] for m in gradebook["missing"]] == \
        ["students/bob", "students/dave", "students/dave"]


def test_a_gradebook_gitlab_does_not_list_the_students_of_says_so(world, seeded):
    world.gitlab.add_project("students/dave")
    world.gitlab.inject_faults(FaultPlan(status=503, every=1, path_pattern=GROUPS))
    refresh_rosters(world.resources)

    response = world.get("/api/submissions?final=true")

    read_at = roster_read_at(world.resources, "prog1")
    assert response.status_code == 200
    assert [m["project_path"] for m in response.get_json()["missing"]] == ["students/bob"]
    assert response.get_json()["roster_problems"] == [
        f"the student projects of course prog1 could not be listed from GitLab at "
        f"{read_at}: list group projects: HTTP 503, an HTML page; students who "
        f"never pushed are not in this gradebook"]


def test_a_gradebook_keeps_the_students_listed_before_gitlab_failed_and_says_when(
        world, seeded):
    world.gitlab.add_project("students/dave")
    refresh_rosters(world.resources)
    listed_at = roster_read_at(world.resources, "prog1")
    world.gitlab.inject_faults(FaultPlan(status=503, every=1, path_pattern=GROUPS))
    refresh_rosters(world.resources)

    response = world.get("/api/submissions?final=true")

    read_at = roster_read_at(world.resources, "prog1")
    assert [m["project_path"] for m in response.get_json()["missing"]] == \
        ["students/bob", "students/dave", "students/dave"]
    assert response.get_json()["roster_problems"] == [
        f"the student projects of course prog1 could not be listed from GitLab at "
        f"{read_at}: list group projects: HTTP 503, an HTML page; students who "
        f"never pushed are those GitLab listed at {listed_at}"]


def test_a_students_gradebook_takes_their_own_projects_without_listing_groups(world, seeded):
    """A student's token: the never-pushed projects among those they reach, and no listing of
    the course's groups with gradehook's token, which every student could otherwise have
    GitLab answer again and again. Before, bob's second project had no line."""
    world.gitlab.add_project("students/bob-extra", members={world.bob.id: DEVELOPER})
    world.gitlab.add_project("students/dave")  # not bob's
    world.gitlab.inject_faults(FaultPlan(status=503, every=1, path_pattern=GROUPS))

    bobs = world.get("/api/submissions?final=true", token=world.bob.token).get_json()

    assert [(m["project_path"], m["assignment"], m["why"]) for m in bobs["missing"]] == [
        ("students/bob", OTHER_ASSIGNMENT, "no submission"),
        ("students/bob-extra", ASSIGNMENT, "no push received"),
        ("students/bob-extra", OTHER_ASSIGNMENT, "no push received")]
    assert bobs["roster_problems"] == []
    assert world.gitlab.requests_to("GET", GROUPS) == []


def test_a_submission_shows_its_decision_and_its_runs_score(world, seeded):
    items = world.get("/api/submissions?final=true").get_json()["items"]
    late = items[0]
    run_id = late.pop("run_id")

    assert late == {
        "id": seeded[1], "course": "prog1", "assignment": ASSIGNMENT, "project_id": None,
        "project_path": "students/alice", "commit_sha": SHA_B, "branch": "submission/week1",
        "merge_request_iid": 3, "source": "merge_request", "outcome": "accepted",
        "reason": None, "late": True, "counted_at": "2026-03-01T12:00:00+00:00",
        "deadline": None, "decided_at": "2026-03-01T12:01:00+00:00", "submissions_used": None,
        "submission_limit": None, "score": 1.0, "tests_passed": 4, "tests_total": 4,
        "result_url": f"{world.settings.server.base_url}/results/{run_id}"}
    assert world.run(run_id).commit_sha == SHA_B


def test_times_are_in_utc_whatever_postgresqls_time_zone(world, seeded, monkeypatch):
    monkeypatch.setenv("PGTZ", "Asia/Kathmandu")  # libpq's session time zone: UTC+05:45

    late = world.get("/api/submissions?final=true&late=true").get_json()["items"][0]

    assert (late["counted_at"], late["decided_at"]) == ("2026-03-01T12:00:00+00:00",
                                                        "2026-03-01T12:01:00+00:00")


def test_a_submission_without_a_run_shows_no_score(world, seeded):
    pending = world.get("/api/submissions?outcome=pending").get_json()["items"][0]

    assert (pending["run_id"], pending["score"], pending["tests_total"],
            pending["result_url"]) == (None, None, None, None)


def test_pages_of_final_submissions(world, seeded):
    first = world.get("/api/submissions?final=true&per_page=2").get_json()
    second = world.get("/api/submissions?final=true&per_page=2&page=2").get_json()

    assert [i["id"] for i in first["items"] + second["items"]] == [seeded[i] for i in (1, 3, 4)]
    assert (first["total"], second["total"], second["page"]) == (3, 3, 2)


def test_a_gitlab_token_sees_its_own_projects_submissions_only(world, seeded):
    mine = world.get("/api/submissions", token=world.bob.token)
    other = world.get("/api/submissions?project=students/alice", token=world.bob.token)

    assert ids(mine) == [seeded[5], seeded[4]]
    assert other.status_code == 403
    assert other.get_json()["reason"] == \
        "GitLab user bob does not have Developer access to project students/alice"


@pytest.mark.parametrize("query, field", [
    ("?final=yes", "final"), ("?late=1", "late"), ("?outcome=great", "outcome"),
    ("?final=true&outcome=refused", "outcome"), ("?per_page=201", "per_page"),
    ("?project=alice", "project"), ("?colour=red", "colour"),
])
def test_bad_queries_are_400_naming_the_parameter(world, query, field):
    response = world.get(f"/api/submissions{query}")

    assert response.status_code == 400
    assert response.get_json()["field"] == field


@pytest.mark.parametrize("query, reason", [
    ("?late=maybe", "late: must be true or false"),
    ("?final=yes", "final: must be true or false"),
])
def test_a_flag_that_is_neither_true_nor_false_says_so(world, query, reason):
    """Before, marshmallow's words: 'late: Not a valid boolean.'"""
    response = world.get(f"/api/submissions{query}")

    assert response.status_code == 400 and response.get_json()["reason"] == reason


def test_no_token_is_401(world):
    assert world.get("/api/submissions", token=None).status_code == 401


def test_final_submissions_from_the_embedded_sqlite_ledger(tmp_path, monkeypatch):
    """The window that picks each student's last accepted submission works on SQLite too."""
    settings = embedded_settings(tmp_path, monkeypatch,
                                 {"api": {"staff_token_hashes": staff_digest()}})
    resources = migrated_resources(settings)
    first = add_submission(resources, commit_sha=SHA_A, counted_at=T0, score=0.5)
    last = add_submission(resources, commit_sha=SHA_B, counted_at=T0 + dt.timedelta(hours=1),
                          score=1.0)
    client = create_app(settings).test_client()

    listed = client.get("/api/submissions?final=true", headers=bearer(STAFF_TOKEN)).get_json()
    every = client.get("/api/submissions", headers=bearer(STAFF_TOKEN)).get_json()

    assert [(i["id"], i["score"], i["counted_at"]) for i in listed["items"]] == [
        (last, 1.0, "2026-03-01T11:00:00+00:00")]
    assert [i["id"] for i in every["items"]] == [last, first]
