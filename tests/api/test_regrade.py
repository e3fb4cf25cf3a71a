"""Regrades: one run, a student's assignment, an assignment, ungraded branch heads; never twice."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest
from sqlalchemy import text

from pipeline.ledger.models import RunStatus
from pipeline.regrade import GradingTarget, regrade_branch_heads, regrade_run, request_grading
from tests.api.world import ASSIGNMENT, OTHER_ASSIGNMENT, SHA_A, SHA_B, SHA_C, build_world
from tests.infra.ports import free_port
from tests.infra.ledger import add_submission, end_run, queue_run
from tests.support.gitlab_standin import DEVELOPER

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


def low_priority(world) -> list[tuple[str, str, int]]:
    return [(m["headers"]["task"], m["headers"]["argsrepr"], m["properties"]["priority"])
            for m in world.queued("low_priority")]


def test_regrading_a_run_queues_it_once_on_low_priority(world):
    source = queue_run(world.resources, commit_sha=SHA_A, project_id=5, merge_request_iid=3)
    end_run(world.resources, source.id, RunStatus.FAILED)

    first = world.post("/api/regrade", {"scope": "run", "run_id": source.id})
    again = world.post("/api/regrade", {"scope": "run", "run_id": source.id})

    assert first.status_code == 202
    [run_id] = first.get_json()["runs"]
    assert first.get_json() == {"scope": "run", "runs": [run_id], "existing_runs": [],
                                "task_id": None}
    assert again.status_code == 200
    assert again.get_json()["runs"] == [] and again.get_json()["existing_runs"] == [run_id]
    run = world.run(run_id)
    assert (run.kind, run.status, run.project_path, run.project_id, run.commit_sha, run.ref,
            run.merge_request_iid, run.assignment) == \
        ("regrade", RunStatus.QUEUED, "students/alice", 5, SHA_A, "main", 3, ASSIGNMENT)
    assert low_priority(world) == [("student_testing", repr([run_id]), 3)]
    assert world.queued("high_priority") == []


def test_a_student_regrade_takes_the_latest_graded_commit(world):
    older = queue_run(world.resources, commit_sha=SHA_A, received_at=T0)
    newer = queue_run(world.resources, commit_sha=SHA_B, received_at=T0 + dt.timedelta(hours=1))
    newest = queue_run(world.resources, commit_sha=SHA_C, received_at=T0 + dt.timedelta(hours=2))
    end_run(world.resources, older.id, RunStatus.PASSED)
    end_run(world.resources, newer.id, RunStatus.FAILED)
    end_run(world.resources, newest.id, RunStatus.SUPERSEDED)

    response = world.post("/api/regrade", {"scope": "student", "project": "students/alice",
                                           "assignment": ASSIGNMENT})

    assert response.status_code == 202
    [run_id] = response.get_json()["runs"]
    assert world.run(run_id).commit_sha == SHA_B


def test_an_assignment_regrade_covers_every_project_once(world):
    for sha, project, hours in ((SHA_A, "students/alice", 0), (SHA_B, "students/alice", 1),
                                (SHA_C, "students/bob", 0)):
        run = queue_run(world.resources, commit_sha=sha, project_path=project,
                        received_at=T0 + dt.timedelta(hours=hours))
        end_run(world.resources, run.id, RunStatus.PASSED)
    queue_run(world.resources, commit_sha=SHA_A, assignment=OTHER_ASSIGNMENT)

    response = world.post("/api/regrade", {"scope": "assignment", "assignment": ASSIGNMENT,
                                           "course": "prog1"})

    runs = [world.run(run_id) for run_id in response.get_json()["runs"]]
    assert sorted((r.project_path, r.commit_sha) for r in runs) == \
        [("students/alice", SHA_B), ("students/bob", SHA_C)]
    assert len(low_priority(world)) == 2


def test_a_regrade_takes_the_final_submission_too_when_a_later_commit_was_graded(world):
    """Alice handed in SHA_A by merge request, then pushed a draft (SHA_B) to main; bob only
    handed in SHA_C. Before, a regrade after a fix of the tests took the latest graded commit
    alone, alice's draft, and the gradebook kept her submission's grade from the faulty test."""
    add_submission(world.resources, commit_sha=SHA_A, counted_at=T0, score=0.5)
    draft = queue_run(world.resources, commit_sha=SHA_B)
    end_run(world.resources, draft.id, RunStatus.FAILED)
    add_submission(world.resources, commit_sha=SHA_C, counted_at=T0, score=0.5,
                   project_path="students/bob")

    student = world.post("/api/regrade", {"scope": "student", "project": "students/alice",
                                          "assignment": ASSIGNMENT})
    assignment = world.post("/api/regrade", {"scope": "assignment", "assignment": ASSIGNMENT})

    regraded = [world.run(run_id) for run_id in student.get_json()["runs"]]
    assert sorted(r.commit_sha for r in regraded) == sorted([SHA_A, SHA_B])
    assert [world.run(run_id).commit_sha for run_id in assignment.get_json()["runs"]] == [SHA_C]
    assert sorted(assignment.get_json()["existing_runs"]) == sorted(r.id for r in regraded)


@pytest.mark.parametrize("body, status, field, reason", [
    ({"scope": "run", "run_id": "missing"}, 404, None, "no run missing"),
    ({"scope": "run"}, 400, "run_id", "run_id: required when scope is run"),
    ({"scope": "student", "assignment": ASSIGNMENT}, 400, "project",
     "project: required when scope is student"),
    ({"scope": "everything"}, 400, "scope", "scope: Must be one of: run, student, assignment, "
                                            "branch_heads."),
    ({"scope": "assignment", "assignment": ASSIGNMENT}, 422, None,
     "no graded commit of week1/hello in any student project"),
    ({"scope": "student", "project": "students/bob", "assignment": ASSIGNMENT}, 422, None,
     "no graded commit of week1/hello in students/bob"),
    # A misspelt assignment was told as one nothing was graded of yet.
    ({"scope": "assignment", "assignment": "week1/helo"}, 422, None,
     "week1/helo is not an assignment of course prog1; did you mean week1/hello?"),
    ({"scope": "student", "project": "students/bob", "assignment": "week2/loop"}, 422, None,
     "week2/loop is not an assignment of course prog1; did you mean week2/loops?"),
    ({"scope": "branch_heads", "course": "prog9"}, 422, "course",
     "course: no course named 'prog9' is configured"),
    ({"scope": "branch_heads", "course": "prog1\x00"}, 400, "course",
     "course: must not hold control characters"),
])
def test_bad_regrades_say_why(world, body, status, field, reason):
    response = world.post("/api/regrade", body)

    assert response.status_code == status
    assert (response.get_json()["field"], response.get_json()["reason"]) == (field, reason)


def test_a_run_of_a_course_no_longer_configured_is_422(world):
    source = queue_run(world.resources, commit_sha=SHA_A, course="old-course")

    response = world.post("/api/regrade", {"scope": "run", "run_id": source.id})

    assert response.status_code == 422
    assert response.get_json()["reason"] == \
        f"course 'old-course' of run {source.id} is no longer configured"


def test_branch_heads_are_found_by_a_regrade_task_on_low_priority(world):
    response = world.post("/api/regrade", {"scope": "branch_heads", "course": "prog1"})

    assert response.status_code == 202
    task_id = response.get_json()["task_id"]
    [message] = world.queued("low_priority")
    assert (message["headers"]["task"], message["headers"]["id"]) == ("regrade", task_id)
    assert message["headers"]["kwargsrepr"] == "{'course': 'prog1'}"
    # Before, the task id answered 404 "no task" until a worker started the task.
    progress = world.get(f"/api/tasks/{task_id}")
    assert progress.status_code == 200
    assert (progress.get_json()["state"], progress.get_json()["ready"]) == ("PENDING", False)


def test_ungraded_branch_heads_are_queued_for_the_assignments_they_hold(world, git_server):
    hello, loops = f"{ASSIGNMENT}/main.py", f"{OTHER_ASSIGNMENT}/main.py"
    graded = git_server.commit("students/alice", {hello: "x = 1\n"})
    feature = git_server.commit("students/alice", {loops: "y = 2\n"}, branch="feature")
    bobs = git_server.commit("students/bob", {loops: "y = 3\n", "README": "bob\n"})
    world.gitlab.set_branch(world.alice_project["id"], "main", graded)
    world.gitlab.set_branch(world.alice_project["id"], "feature", feature)
    world.gitlab.set_branch(world.bob_project["id"], "main", bobs)
    carl = world.gitlab.add_project("students/late/carl", branches={"main": SHA_C},
                                    members={world.alice.id: DEVELOPER})
    world.gitlab.add_project("staff/reference", branches={"main": SHA_A})
    end_run(world.resources, queue_run(world.resources, commit_sha=graded,
                                       project_id=world.alice_project["id"]).id,
            RunStatus.PASSED)

    report = regrade_branch_heads(world.resources, "prog1")
    again = regrade_branch_heads(world.resources)

    runs = [world.run(run_id) for run_id in report.queued.created_ids]
    assert sorted((r.project_path, r.ref, r.commit_sha, r.assignment, r.kind) for r in runs) == [
        ("students/alice", "feature", feature, ASSIGNMENT, "regrade"),
        ("students/alice", "feature", feature, OTHER_ASSIGNMENT, "regrade"),
        ("students/bob", "main", bobs, OTHER_ASSIGNMENT, "regrade")]
    assert (report.projects, report.branches) == (2, 3)
    assert report.skipped_projects == ["students/late/carl"]
    assert carl["path_with_namespace"] not in [r.project_path for r in runs]
    assert again.queued.created == [] and again.queued.existing == []
    assert world.gitlab.requests_to("GET", r"^/api/v4/groups/students/projects$")


def test_concurrent_requests_for_one_commit_make_one_run(world):
    source = queue_run(world.resources, commit_sha=SHA_A)
    end_run(world.resources, source.id, RunStatus.PASSED)
    course = world.settings.courses[0]
    target = GradingTarget(course=course, project_path="students/alice", commit_sha=SHA_B,
                           assignment=ASSIGNMENT)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        regrades = list(pool.map(lambda _: regrade_run(world.resources.sessions, world.settings,
                                                       source.id), range(8)))
        requests = list(pool.map(lambda _: request_grading(world.resources.sessions, target,
                                                           kind="api"), range(8)))

    assert sum(len(q.created) for q in regrades) == 1
    assert len({run_id for q in regrades for run_id in q.created_ids + q.existing}) == 1
    assert [created for _, created in requests].count(True) == 1
    assert len({run.id for run, _ in requests}) == 1


def test_a_branch_heads_regrade_the_broker_refuses_leaves_no_mark(
        service_settings, gitlab_standin, redis_db, monkeypatch):
    monkeypatch.setenv("REDIS_PORT", str(free_port()))  # nothing listens there
    world = build_world(service_settings, gitlab_standin, redis_db)

    response = world.post("/api/regrade", {"scope": "branch_heads"})

    assert response.status_code == 503
    with world.resources.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM celery_taskmeta "
                                       "WHERE status = 'SENT'")).scalar() == 0
