"""POST /api/tests-celery and /api/tests: runs created once per commit, routed by backend."""

from __future__ import annotations

import pytest

from pipeline.ledger.db import transaction
from sqlalchemy import select

from pipeline.ledger.models import ExecutionBackend, RunStatus, Submission
from tests.api.world import ASSIGNMENT, SHA_A, SHA_B, STAFF_TOKEN, build_world
from tests.infra.badges import badge_texts
from tests.infra.ledger import end_run, queue_run
from tests.infra.processes import wait_for
from tests.support.gitlab_standin import DEVELOPER, FaultPlan


def body(**fields):
    return {"directory": ASSIGNMENT, "version_identifier": SHA_A, "project": "students/alice",
            **fields}


def test_staff_creates_a_run_and_sends_it_to_high_priority(world):
    response = world.post("/api/tests-celery", body())

    assert response.status_code == 202
    answer = response.get_json()
    run = world.run(answer["id"])
    assert answer == {
        "id": run.id, "test_system_id": run.celery_task_id, "status": "queued",
        "stage": "queued", "percentage": 0, "created": True, "backend": "celery",
        "project": "students/alice", "project_id": world.alice_project["id"],
        "directory": ASSIGNMENT,
        "version_identifier": SHA_A, "submission_task_id": None,
        "result_url": f"http://127.0.0.1:8000/results/{run.id}"}
    assert (run.kind, run.course, run.commit_sha, run.assignment, run.requested_by_user_id) == \
        ("api", "prog1", SHA_A, ASSIGNMENT, None)
    assert (run.reference_project, run.reference_ref, run.ref) == ("staff/reference", "main", None)
    messages = world.queued("high_priority")
    assert [(m["headers"]["task"], m["headers"]["id"], m["headers"]["argsrepr"])
            for m in messages] == [("student_testing", run.celery_task_id, repr([run.id]))]


def test_a_commit_being_graded_is_not_graded_again(world):
    first = world.post("/api/tests-celery", body()).get_json()
    again = world.post("/api/tests-celery", body(version_identifier=SHA_A.upper()))

    assert again.status_code == 200
    assert again.get_json()["id"] == first["id"] and again.get_json()["created"] is False
    assert len(world.queued("high_priority")) == 1


@pytest.mark.parametrize("status, retried", [(RunStatus.FAILED, True), (RunStatus.ERROR, True),
                                             (RunStatus.PASSED, False)])
def test_retry_grades_a_failed_or_errored_commit_again(world, status, retried):
    first = world.post("/api/tests-celery", body()).get_json()
    end_run(world.resources, first["id"], status)

    plain = world.post("/api/tests-celery", body())
    retry = world.post("/api/tests-celery", body(retry=True))

    assert plain.status_code == 200 and plain.get_json()["id"] == first["id"]
    assert plain.get_json()["status"] == status.value
    assert retry.status_code == (202 if retried else 200)
    assert (retry.get_json()["id"] != first["id"]) is retried


def test_a_superseded_run_does_not_count_as_graded_but_names_the_branch(world):
    old = queue_run(world.resources, commit_sha=SHA_A, ref="feature/x")
    end_run(world.resources, old.id, RunStatus.SUPERSEDED)

    response = world.post("/api/tests-celery", body())

    assert response.status_code == 202 and response.get_json()["id"] != old.id
    assert world.run(response.get_json()["id"]).ref == "feature/x"


def badge(world, ref: str | None = None) -> set[str]:
    """Return what the score badge of alice's assignment says on a branch (by default, the
    badge's default branch)."""
    response = world.client.get(f"/badges/{world.alice_project['id']}/{ASSIGNMENT}.svg",
                                query_string={} if ref is None else {"ref": ref})
    return badge_texts(response.data)


def passed_with(world, run_id: str, score: float) -> None:
    """End a run as passed with a score, as a worker would."""
    end_run(world.resources, run_id, RunStatus.PASSED, score=score, tests_passed=1,
            tests_total=1, report={"gradehook": {"score": score, "testsPassed": 1,
                                                 "testsTotal": 1}})


@pytest.mark.parametrize("branch, ref", [("main", None), ("feature/x", "feature/x")])
def test_a_run_staff_request_for_a_branch_shows_on_that_branchs_badge(world, branch, ref):
    """Before, the API named no branch: a commit never pushed through a webhook was graded
    on no branch, and its score showed on no badge."""
    response = world.post("/api/tests-celery", body(branch=branch))

    assert response.status_code == 202
    run_id = response.get_json()["id"]
    assert world.run(run_id).ref == branch
    passed_with(world, run_id, 0.75)
    assert badge(world, ref) == {"grade", "75%"}


def test_a_run_made_while_gitlab_did_not_say_the_projects_id_shows_on_its_badge(world):
    """Before, the badge found runs by project id alone: a run the API made while GitLab could
    not be asked (recorded without the id) never showed, though it was the branch's latest."""
    world.gitlab.inject_faults(FaultPlan(status=503, every=1, method="GET",
                                         path_pattern=r"^/api/v4/projects/students%2Falice$"))
    response = world.post("/api/tests-celery", body(branch="main"))
    world.gitlab.clear_faults()
    pushed = queue_run(world.resources, commit_sha=SHA_B, project_id=world.alice_project["id"])
    passed_with(world, pushed.id, 0.5)
    passed_with(world, response.get_json()["id"], 0.75)

    assert response.status_code == 202 and response.get_json()["project_id"] is None
    assert badge(world) == {"grade", "75%"}


def test_a_branch_named_gets_a_run_of_its_own_when_the_commit_was_graded_on_another(world):
    """Before, the run of another branch (or of none) answered, and the branch's badge did not
    follow."""
    other = queue_run(world.resources, commit_sha=SHA_A, ref="feature/x",
                      project_id=world.alice_project["id"])
    passed_with(world, other.id, 0.5)
    first = world.post("/api/tests-celery", body(branch="main"))
    again = world.post("/api/tests-celery", body(branch="main"))

    assert first.status_code == 202 and first.get_json()["id"] != other.id
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert world.run(first.get_json()["id"]).ref == "main"
    assert world.post("/api/tests-celery", body()).get_json()["id"] == first.get_json()["id"]


def test_only_staff_may_name_the_branch_a_run_is_recorded_on(world):
    response = world.post("/api/tests-celery", body(branch="main"), token=world.alice.token)

    assert response.status_code == 403
    assert response.get_json()["reason"] == \
        "only a staff token may name the branch a run is recorded on"
    assert world.queued("high_priority") == []


def test_a_student_token_with_one_project_may_leave_the_project_out(world):
    response = world.post("/api/tests-celery", body(project=None), token=world.alice.token)

    assert response.status_code == 202
    run = world.run(response.get_json()["id"])
    assert (run.project_path, run.project_id) == ("students/alice", world.alice_project["id"])
    assert run.requested_by_user_id == world.alice.id


def test_a_student_token_reaching_two_projects_must_name_one(world):
    world.gitlab.add_member(world.bob_project["id"], world.alice.id, DEVELOPER)

    response = world.post("/api/tests-celery", body(project=None), token=world.alice.token)

    assert response.status_code == 400
    assert response.get_json()["field"] == "project"
    assert response.get_json()["reason"] == \
        "project: required, as GitLab user alice reaches 2 student projects"


def test_a_staff_token_must_name_the_project(world):
    response = world.post("/api/tests-celery", body(project=None))

    assert response.status_code == 400 and response.get_json()["field"] == "project"


def test_project_by_id_is_resolved_through_gitlab_for_staff(world):
    response = world.post("/api/tests-celery", body(project=world.bob_project["id"]))

    assert response.status_code == 202
    assert response.get_json()["project"] == "students/bob"
    assert response.get_json()["project_id"] == world.bob_project["id"]


def test_a_project_named_by_path_gets_its_id_from_gitlab(world):
    """Runs by project id, and the project's score badges, find runs requested by path."""
    answer = world.post("/api/tests-celery", body(project="students/bob")).get_json()

    assert answer["project_id"] == world.bob_project["id"]
    assert world.run(answer["id"]).project_id == world.bob_project["id"]
    listed = world.get(f"/api/runs?project={world.bob_project['id']}").get_json()
    assert [run["id"] for run in listed["items"]] == [answer["id"]]


def test_a_project_path_in_other_letter_case_is_graded_as_gitlabs_own(world):
    """GitLab finds `students/BOB` as `students/bob`; before, the run was recorded under the
    caller's spelling, a second project of the ledger beside the first."""
    first = world.post("/api/tests-celery", body(project="students/bob")).get_json()
    again = world.post("/api/tests-celery", body(project="students/BOB")).get_json()

    assert (again["project"], again["project_id"]) == ("students/bob", world.bob_project["id"])
    assert (again["id"], again["created"]) == (first["id"], False)


def test_a_project_path_gitlab_does_not_have_is_422(world):
    response = world.post("/api/tests-celery", body(project="students/nobody"))

    assert response.status_code == 422
    assert response.get_json()["reason"] == "project: GitLab has no project students/nobody"


def test_unknown_project_id_is_422(world):
    response = world.post("/api/tests-celery", body(project=999999))

    assert response.status_code == 422
    assert response.get_json()["reason"] == "project: GitLab has no project with id 999999"


def test_a_project_outside_every_course_is_422(world):
    world.gitlab.add_project("staff/reference", branches={"main": SHA_B})

    response = world.post("/api/tests-celery", body(project="staff/reference"))

    assert response.status_code == 422
    assert response.get_json()["reason"] == \
        "project staff/reference is not a student project of any configured course"


def test_an_unknown_assignment_is_422(world):
    response = world.post("/api/tests-celery", body(directory="week9/nothing"))

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "Unprocessable Entity", "field": "directory", "fields": None,
        "reason": "directory: week9/nothing is not an assignment of course prog1"}


@pytest.mark.parametrize("sent, field, reason", [
    ({"version_identifier": SHA_A}, "directory",
     "directory: Missing data for required field."),
    (body(version_identifier="abc123"), "version_identifier",
     "version_identifier: not a full commit SHA: 'abc123'"),
    (body(directory="../etc"), "directory", "directory: not an assignment directory: '../etc'"),
    (body(submit="yes"), "submit", "submit: must be true or false"),
    (body(submit=1), "submit", "submit: must be true or false"),
    (body(project=0), "project", "project: must be a project id (a positive whole number) or "
                                 "a path like group/project"),
    (body(project="alice"), "project", "project: must be a project id (a positive whole "
                                       "number) or a path like group/project"),
    (body(colour="red"), "colour", "colour: Unknown field."),
    # Each refused branch name says why, so that the caller knows what to send instead.
    (body(branch="feature..x"), "branch",
     "branch: not a valid branch name: 'feature..x': git does not allow '..' in a branch name"),
    (body(branch="week 1"), "branch",
     "branch: not a valid branch name: 'week 1': git does not allow a space in a branch name"),
    (body(branch="-f"), "branch",
     "branch: not a valid branch name: '-f': it or a part of it between slashes starts with "
     "'-', which would read as an option"),
    (body(branch="x/.hidden"), "branch",
     "branch: not a valid branch name: 'x/.hidden': it or a part of it between slashes starts "
     "with '.'"),
    (body(branch="main.lock"), "branch",
     "branch: not a valid branch name: 'main.lock': it or a part of it between slashes ends "
     "with '.lock'"),
    (body(branch="ma\u202ein"), "branch",
     "branch: not a valid branch name: 'ma\\u202ein': it holds U+202E, an invisible or unusual "
     "character"),
    (body(branch=""), "branch", "branch: not a valid branch name: '': it is empty"),
    # GitLab has no such branch: the run would show on no badge.
    (body(branch="refs/heads/main"), "branch",
     "branch: not a valid branch name: 'refs/heads/main': name the branch without "
     "refs/heads/ ('main'), as GitLab does"),
    (body(branch="HEAD"), "branch",
     "branch: not a valid branch name: 'HEAD': GitLab has no branch named HEAD: name the "
     "branch itself"),
    (body(branch=7), "branch", "branch: Not a valid string."),
    ([SHA_A], "body", "body: Invalid input type."),
])
def test_malformed_bodies_are_400_naming_the_field(world, sent, field, reason):
    response = world.post("/api/tests-celery", sent)

    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert response.get_json()["reason"] == reason
    assert world.queued("high_priority") == []


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"[" * 100_000])
def test_a_body_that_is_not_json_is_400(world, data):
    response = world.client.post("/api/tests-celery", data=data,
                                 headers={"Authorization": f"Bearer {STAFF_TOKEN}",
                                          "Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


def test_a_body_of_another_type_is_415(world):
    response = world.client.post("/api/tests-celery", data="directory=week1/hello",
                                 headers={"Authorization": f"Bearer {STAFF_TOKEN}"})

    assert response.status_code == 415


def test_submit_records_one_submission_that_waits_for_its_run(world):
    first = world.post("/api/tests-celery", body(submit=True)).get_json()
    again = world.post("/api/tests-celery", body(submit=True)).get_json()

    with world.resources.sessions() as session:
        submission = session.scalars(select(Submission)).one()
    assert (submission.run_id, submission.outcome, submission.source) == \
        (first["id"], "pending", "api")
    assert first["submission_task_id"] == again["submission_task_id"] == \
        submission.celery_task_id
    assert world.queued("default") == []  # sent when its run ends


def test_submit_of_a_graded_commit_is_sent_at_once(world):
    graded = world.post("/api/tests-celery", body()).get_json()
    end_run(world.resources, graded["id"], RunStatus.PASSED)

    answer = world.post("/api/tests-celery", body(submit=True)).get_json()

    assert [(m["headers"]["task"], m["headers"]["id"]) for m in world.queued("default")] == \
        [("submission_processing", answer["submission_task_id"])]


def test_tests_on_a_celery_course_sends_to_the_workers(world):
    response = world.post("/api/tests", body())

    assert response.status_code == 202 and response.get_json()["backend"] == "celery"
    assert len(world.queued("high_priority")) == 1


def test_tests_on_another_backend_type_is_422_saying_how_to_migrate(world):
    with transaction(world.resources.sessions) as session:
        session.add(ExecutionBackend(type="prefect", slug="prog1", properties={}))

    response = world.post("/api/tests", body())
    on_celery = world.post("/api/tests-celery", body())

    assert response.status_code == 422
    assert response.get_json()["reason"] == (
        "course prog1 uses execution backend type 'prefect', which gradehook does not run: it "
        "runs 'celery' (workers) and 'local' (in the web process). To migrate, set "
        "execution_backend of the course in config.toml and update or delete the "
        "execution_backends row 'prog1'.")
    assert on_celery.status_code == 202


def test_tests_on_a_local_course_grades_in_the_web_process(service_settings, gitlab_standin,
                                                           redis_db, git_server):
    world = build_world(service_settings, gitlab_standin, redis_db, {"courses": [{
        "name": "prog1", "student_projects": ["students/"], "reference_project": "staff/reference",
        "discover_assignments": False, "assignments": [{"directory": ASSIGNMENT}],
        "execution_backend": "local"}]})
    reference = git_server.commit("staff/reference", {f"{ASSIGNMENT}/hello.py": "x = 1\n"})
    student = git_server.commit("students/alice", {f"{ASSIGNMENT}/hello.py": "x = 1\n"})

    response = world.post("/api/tests", body(version_identifier=student))

    assert response.status_code == 202 and response.get_json()["backend"] == "local"
    run_id = response.get_json()["id"]
    done = wait_for(lambda: (run := world.run(run_id)).status.final and run, timeout=60,
                    what="the local run to end")
    assert done.attempts == 1 and done.started_at is not None
    assert done.reference_sha == reference
    assert done.stage == "done" and done.progress == 100
    assert world.queued("high_priority") == []
