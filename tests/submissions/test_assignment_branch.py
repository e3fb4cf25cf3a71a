"""An assignment whose submissions target a branch of its own, not the course's."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from pipeline.config import ConfigError, CourseSettings, load_settings
from pipeline.ledger.models import Submission, TestRun
from tests.infra.processes import write_config
from tests.submissions.world import ASSIGNMENT, OTHER_ASSIGNMENT, STUDENT, TARGET, solution
from tests.webhooks.deliveries import payload_of
from webhooks.app import create_app

OWN_BRANCH = "hand-in-week1"


@pytest.fixture()
def world(make_world):
    """The world whose first assignment hands in on its own branch."""
    world = make_world(assignment={"submission_branch": OWN_BRANCH})
    world.gitlab.set_branch(world.project_id, OWN_BRANCH, world.template_sha)
    return world


def test_an_api_submission_opens_its_merge_request_into_the_assignments_branch(world):
    sha = world.push(solution("hello"))

    outcome = world.process(world.submit(sha).id)

    mr, = world.merge_requests()
    assert outcome.outcome == "accepted"
    assert (mr["iid"], mr["target_branch"]) == (outcome.merge_request_iid, OWN_BRANCH)


def test_a_merge_request_into_the_assignments_branch_submits_that_assignment_only(world):
    sha = world.push(solution("hello"), branch="week1-done")
    mr = world.gitlab.add_merge_request(world.project_id, "week1-done", OWN_BRANCH,
                                        author=world.alice)
    payload = payload_of("merge_request_hook__open_into_submission_branch")
    payload["project"].update(id=world.project_id, path_with_namespace=STUDENT)
    payload["object_attributes"].update(
        iid=mr["iid"], source_branch="week1-done", target_branch=OWN_BRANCH,
        source_project_id=world.project_id, target_project_id=world.project_id)
    payload["object_attributes"]["last_commit"]["id"] = sha
    answer = create_app(world.resources.settings).test_client().post(
        "/webhooks/gitlab", data=json.dumps(payload),
        headers={"Content-Type": "application/json", "X-Gitlab-Event": "Merge Request Hook",
                 "Idempotency-Key": f"mr-{mr['iid']}"})

    assert answer.status_code == 202
    with world.resources.sessions() as session:
        submitted = [s.assignment for s in session.scalars(select(Submission))]
        kinds = {run.assignment: run.kind for run in session.scalars(select(TestRun))}
    # The other assignment hands in on the course's branch: this merge request only grades it.
    assert submitted == [ASSIGNMENT]
    assert kinds == {ASSIGNMENT: "submission", OTHER_ASSIGNMENT: "merge_request"}


def test_the_course_branch_is_the_default():
    course = CourseSettings(name="c", reference_project="r", submission_branch=TARGET)
    assert course.submission_branch_for(ASSIGNMENT) == TARGET


@pytest.mark.parametrize("branch, complaint", [
    ("submission/week1", "collides with the branches submission/<directory>"),
    ("-x", "is not a branch name git accepts"),
    ("a..b", "is not a branch name git accepts"),
])
def test_an_unusable_assignment_branch_is_refused_with_its_key(tmp_path, branch, complaint):
    config = write_config(tmp_path, {"courses": [{
        "name": "c", "student_projects": ["s/"], "reference_project": "r",
        "assignments": [{"directory": "w1", "submission_branch": branch}]}]})
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert str(refused.value).startswith("courses[0].assignments[0].submission_branch: ")
    assert complaint in str(refused.value)
