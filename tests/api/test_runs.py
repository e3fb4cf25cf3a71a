"""GET /api/runs and /api/runs/<id>: filters, pages, newest first, exact fields."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus
from pipeline.ledger.runs import refuse_report
from tests.api.world import (ASSIGNMENT, OTHER_ASSIGNMENT, SHA_A, SHA_B, SHA_C, STAFF_TOKEN, bearer,
                             staff_digest)
from tests.infra.ledger import embedded_settings, end_run, migrated_resources, queue_run
from webhooks.app import create_app

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def seeded(world):
    """Four runs an hour apart: alice A (passed), alice B (failed), bob C, alice A week2."""
    runs = [
        queue_run(world.resources, commit_sha=SHA_A, received_at=T0),
        queue_run(world.resources, commit_sha=SHA_B, received_at=T0 + dt.timedelta(hours=1)),
        queue_run(world.resources, commit_sha=SHA_C, project_path="students/bob",
                  received_at=T0 + dt.timedelta(hours=2)),
        queue_run(world.resources, commit_sha=SHA_A, assignment=OTHER_ASSIGNMENT,
                  received_at=T0 + dt.timedelta(hours=3)),
    ]
    end_run(world.resources, runs[0].id, RunStatus.PASSED, score=1.0, tests_passed=3,
            tests_total=3)
    end_run(world.resources, runs[1].id, RunStatus.FAILED, score=0.5, tests_passed=1,
            tests_total=2)
    return [r.id for r in runs]


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


@pytest.mark.parametrize("query, expected", [
    ("", [3, 2, 1, 0]),
    ("?project=students/alice", [3, 1, 0]),
    (f"?assignment={ASSIGNMENT}", [2, 1, 0]),
    (f"?commit={SHA_A[:7]}", [3, 0]),
    (f"?commit={SHA_B.upper()}", [1]),
    ("?status=failed", [1]),
    ("?status=queued&project=students/alice", [3]),
    ("?course=prog1&assignment=week2/loops", [3]),
    ("?course=other", []),
])
def test_filters_and_newest_first(world, seeded, query, expected):
    assert ids(world.get(f"/api/runs{query}")) == [seeded[i] for i in expected]


def test_several_statuses_separated_by_commas_list_runs_of_any_of_them(world, seeded):
    """Before, `status` took one status: a script wanting the graded runs asked once per status,
    or read every run, the cancelled ones too, which at a deadline outnumber them."""
    cancelled = queue_run(world.resources, commit_sha=SHA_C, received_at=T0 + dt.timedelta(hours=4))
    end_run(world.resources, cancelled.id, RunStatus.CANCELLED,
            status_reason=f"this push did not change {ASSIGNMENT}")

    graded = world.get("/api/runs?status=passed,failed")
    alices = world.get("/api/runs?status=failed,queued,failed&project=students/alice")
    everything = world.get("/api/runs")

    assert (ids(graded), graded.get_json()["total"]) == ([seeded[1], seeded[0]], 2)
    assert ids(alices) == [seeded[3], seeded[1]]
    # Left out, as before: scripts reading every run still read the cancelled ones.
    assert ids(everything) == [cancelled.id, *(seeded[i] for i in (3, 2, 1, 0))]


@pytest.mark.parametrize("status", ["passed,great", "passed,", ",passed", "passed, failed",
                                    "PASSED", ""])
def test_statuses_other_than_a_comma_list_of_statuses_are_400_saying_what_is_expected(
        world, status):
    response = world.get(f"/api/runs?status={status}")

    assert response.status_code == 400 and response.get_json()["field"] == "status"
    assert response.get_json()["reason"] == (
        "status: must be one or more of queued, running, passed, failed, error, superseded, "
        f"cancelled, separated by commas; got {status!r}")


def test_filter_by_project_id(world, seeded):
    queue_run(world.resources, commit_sha=SHA_C, project_id=77, project_path="students/carl",
              received_at=T0)

    response = world.get("/api/runs?project=77")

    assert len(ids(response)) == 1 and response.get_json()["items"][0]["project_id"] == 77


def test_a_project_id_finds_the_projects_runs_recorded_without_it(world, seeded):
    """Before, ?project=<id> listed only the runs recorded with the id: alice's runs made while
    GitLab did not say her project's id (the API's, with GitLab away) were left out."""
    with_id = queue_run(world.resources, commit_sha=SHA_C, project_id=77,
                        received_at=T0 + dt.timedelta(hours=4))

    assert ids(world.get("/api/runs?project=77")) == \
        [with_id.id, *(seeded[i] for i in (3, 1, 0))]


def test_pages(world, seeded):
    first = world.get("/api/runs?per_page=3").get_json()
    second = world.get("/api/runs?per_page=3&page=2").get_json()

    assert [i["id"] for i in first["items"]] == [seeded[3], seeded[2], seeded[1]]
    assert [i["id"] for i in second["items"]] == [seeded[0]]
    assert (first["total"], first["page"], first["per_page"]) == (4, 1, 3)
    assert (second["total"], second["page"]) == (4, 2)
    assert world.get("/api/runs").get_json()["per_page"] == 50


@pytest.mark.parametrize("query, field", [
    ("?status=great", "status"), ("?page=0", "page"), ("?per_page=201", "per_page"),
    ("?commit=xyz", "commit"), ("?project=alice", "project"), ("?colour=red", "colour"),
    ("?course=%00", "course"), ("?course=prog1%0A", "course"),
    ("?assignment=week1%00", "assignment"),
])
def test_bad_queries_are_400_naming_the_parameter(world, query, field):
    response = world.get(f"/api/runs{query}")

    assert response.status_code == 400 and response.get_json()["field"] == field


def test_a_commit_that_is_no_sha_says_what_is_expected(world):
    """Before, marshmallow's words: 'commit: String does not match expected pattern.'"""
    response = world.get("/api/runs?commit=main")

    assert response.status_code == 400 and response.get_json()["reason"] == \
        "commit: must be a commit SHA or its first 7 or more characters, got 'main'"


@pytest.mark.parametrize("query, field", [
    ("?page=1&page=2", "page"), ("?project=students/alice&project=students/bob", "project"),
    ("?course=a&course=a", "course"),
])
def test_a_parameter_given_twice_is_400_not_its_first_value_alone(world, seeded, query, field):
    response = world.get(f"/api/runs{query}")

    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert response.get_json()["reason"] == f"{field}: give this parameter once"


def test_a_status_given_twice_is_pointed_to_the_comma_list(world, seeded):
    """Before, 'status: give this parameter once', which did not say how to ask for runs of
    either status."""
    response = world.get("/api/runs?status=passed&status=failed")

    assert response.status_code == 400 and response.get_json()["field"] == "status"
    assert response.get_json()["reason"] == \
        "status: give this parameter once, with its values separated by commas: " \
        "status=passed,failed"


def test_one_run_with_every_field(world, seeded):
    answer = world.get(f"/api/runs/{seeded[0]}").get_json()
    run = world.run(seeded[0])

    assert answer == {
        "id": run.id, "course": "prog1", "assignment": ASSIGNMENT, "project_id": None,
        "project_path": "students/alice", "ref": "main", "commit_sha": SHA_A,
        "merge_request_iid": None, "kind": "push", "status": "passed", "status_reason": None,
        "stage": "done", "percentage": 100, "score": 1.0, "tests_passed": 3, "tests_total": 3,
        "test_system_id": run.celery_task_id, "attempts": 0, "reference_sha": None,
        "received_at": "2026-03-01T10:00:00+00:00", "started_at": None,
        "finished_at": run.finished_at.isoformat(), "report_refused": None, "report": None,
        "result_url": f"http://127.0.0.1:8000/results/{run.id}"}


@pytest.mark.parametrize("run_id", ["nope", "x" * 65, "a%2Fb", "%00"])
def test_unknown_run_is_404(world, run_id):
    response = world.get(f"/api/runs/{run_id}")

    assert response.status_code == 404


def test_times_from_the_embedded_sqlite_ledger_carry_their_utc_offset(tmp_path, monkeypatch):
    """SQLite gives stored times back without a zone; the API names them as the UTC they are."""
    settings = embedded_settings(tmp_path, monkeypatch,
                                 {"api": {"staff_token_hashes": staff_digest()}})
    resources = migrated_resources(settings)
    run = queue_run(resources, commit_sha=SHA_A, received_at=T0)
    end_run(resources, run.id, RunStatus.PASSED, started_at=T0 + dt.timedelta(seconds=1))
    client = create_app(settings).test_client()

    answer = client.get(f"/api/runs/{run.id}", headers=bearer(STAFF_TOKEN)).get_json()
    listed = client.get("/api/runs", headers=bearer(STAFF_TOKEN)).get_json()["items"][0]

    assert (answer["received_at"], answer["started_at"]) == (
        "2026-03-01T10:00:00+00:00", "2026-03-01T10:00:01+00:00")
    assert dt.datetime.fromisoformat(answer["finished_at"]).utcoffset() == dt.timedelta(0)
    assert listed["received_at"] == "2026-03-01T10:00:00+00:00"


FOR_STAFF = ("the reference solution gives no expected value for `f(4711)` in collection "
             "`Secret`: evaluating `f(4711)` in its namespace raised ZeroDivisionError: division "
             "by zero (ex.py, line 4: return secret_formula / 0)")
FOR_STUDENTS = "the reference solution gives no expected value for a test of a hidden collection"


def test_a_course_errors_cause_is_whole_for_staff_and_as_worded_for_students_to_others(world):
    """Before, a student's own token read the reason written for staff, which quotes the
    reference's code and hidden tests, from the runs and the task of their project."""
    run = queue_run(world.resources, commit_sha=SHA_A)
    end_run(world.resources, run.id, RunStatus.ERROR, status_reason=f"course error: {FOR_STAFF}",
            report={"tests": [], "gradehook": {"courseError": FOR_STAFF,
                                               "courseErrorForStudents": FOR_STUDENTS}})
    student = world.alice.token

    listed = world.get("/api/runs?project=students/alice", token=student).get_json()["items"]
    one = world.get(f"/api/runs/{run.id}", token=student).get_json()
    task = world.get(f"/api/tasks/{run.celery_task_id}", token=student).get_json()
    staff_one = world.get(f"/api/runs/{run.id}").get_json()
    staff_task = world.get(f"/api/tasks/{run.celery_task_id}").get_json()

    assert ([item["status_reason"] for item in listed], one["status_reason"], task["reason"]) \
        == ([f"course error: {FOR_STUDENTS}"], f"course error: {FOR_STUDENTS}",
            f"course error: {FOR_STUDENTS}")
    assert (staff_one["status_reason"], staff_task["reason"]) == (f"course error: {FOR_STAFF}",
                                                                  f"course error: {FOR_STAFF}")


def test_what_gitlab_refused_of_a_runs_update_is_shown_to_staff_alone(world):
    """Before, why GitLab refused a run's update for good (a submission's comment showing its
    grade, its commit status) was kept in the ledger and shown nowhere: staff could not see
    that a comment kept an old score. A student's token reads null."""
    run = queue_run(world.resources, commit_sha=SHA_A)
    end_run(world.resources, run.id, RunStatus.PASSED, score=1.0, tests_passed=1, tests_total=1)
    refusal = ("GitLab refused the submission's comment on merge request !3 for good: update "
               "merge request note: 403 Forbidden")
    with transaction(world.resources.sessions) as session:
        refuse_report(session, run.id, refusal)
    student = world.alice.token

    staff_one = world.get(f"/api/runs/{run.id}").get_json()
    staff_listed = world.get("/api/runs").get_json()["items"]
    one = world.get(f"/api/runs/{run.id}", token=student).get_json()
    listed = world.get("/api/runs?project=students/alice", token=student).get_json()["items"]

    assert (staff_one["report_refused"], [item["report_refused"] for item in staff_listed]) \
        == (refusal, [refusal])
    assert (one["report_refused"], [item["report_refused"] for item in listed]) == (None, [None])
    assert staff_one["status"] == "passed"
