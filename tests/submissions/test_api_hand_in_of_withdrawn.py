"""An API hand-in of a commit whose merge request's submission was withdrawn hands it in."""

from __future__ import annotations

from tests.submissions.test_flow import passed_merge_request_submission
from tests.submissions.test_new_merge_request import handed_in_instead, plain
from tests.submissions.world import ASSIGNMENT, STUDENT, SUBMISSION_BRANCH, solution
from webhooks.app import create_app

DECIDED_THROUGH_API = "Commit {sha} is already handed in, and was {state}."


def hand_in_through_the_api(world, sha: str):
    """Ask gradehook's API, as alice, to grade a commit and hand it in; return the answer."""
    client = create_app(world.resources.settings).test_client()
    return client.post("/api/tests-celery", json={
        "directory": ASSIGNMENT, "version_identifier": sha, "project": STUDENT, "submit": True},
        headers={"Authorization": f"Bearer {world.alice.token}"})


def withdrawn_submission(world):
    """Return alice's merge request and its submission, refused as she closed it first."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
    assert world.process(submission.id).outcome == "refused"
    assert world.submission(submission.id).withdrawn
    return mr, world.submission(submission.id)


def test_the_api_hands_in_a_commit_whose_merge_request_was_closed(world):
    """Alice closed her merge request before its submission was processed, then hands the
    commit in through the API. Before, the API answered with the old, finished task and
    nothing was handed in: the submission stayed refused for the closed merge request."""
    old, withdrawn = withdrawn_submission(world)
    sha = withdrawn.commit_sha

    answer = hand_in_through_the_api(world, sha)

    assert answer.status_code == 200
    task_id = answer.get_json()["submission_task_id"]
    assert task_id != withdrawn.celery_task_id
    taken = world.submission(withdrawn.id)
    assert (taken.outcome, taken.source, taken.celery_task_id, taken.merge_request_iid,
            taken.previous_merge_request_iid, taken.requested_by_user_id) == (
        "pending", "api", task_id, None, old["iid"], world.alice.id)
    assert taken.sent_at is not None  # released at once: its run had ended
    outcome = world.process(withdrawn.id)

    assert outcome.outcome == "accepted"
    assert world.branches()[SUBMISSION_BRANCH] == sha
    new_iid = outcome.merge_request_iid
    assert new_iid not in (None, old["iid"])
    assert "**✅ Accepted**" in world.notes(new_iid)[0]["body"]
    old_note, = world.notes(old["iid"])
    assert plain(old_note).endswith(handed_in_instead(sha, new_iid))


def test_the_closed_merge_request_says_how_the_api_refused_the_commit(world):
    """The API's hand-in is refused, as the submission branch is elsewhere (it moves no branch
    and opens no merge request): the closed merge request's comment says so. Before, it still
    asked alice to reopen it, or open a new one, to hand the commit in."""
    old, withdrawn = withdrawn_submission(world)
    aside = world.push(solution("elsewhere"), branch="aside")
    world.gitlab.set_branch(world.project_id, SUBMISSION_BRANCH, aside)

    assert hand_in_through_the_api(world, withdrawn.commit_sha).status_code == 200
    outcome = world.process(withdrawn.id)

    assert (outcome.outcome, outcome.merge_request_iid) == ("refused", None)
    assert "not an ancestor of this" in outcome.reason
    assert world.branches()[SUBMISSION_BRANCH] == aside
    old_note, = world.notes(old["iid"])
    text = plain(old_note)
    assert DECIDED_THROUGH_API.format(sha=withdrawn.commit_sha[:12], state="refused") in text
    assert f"- {outcome.reason}" in text
    assert "reopen it" not in text


def test_a_second_api_hand_in_of_the_taken_over_commit_is_the_same_submission(world):
    old, withdrawn = withdrawn_submission(world)
    first = hand_in_through_the_api(world, withdrawn.commit_sha).get_json()
    world.process(withdrawn.id)

    again = hand_in_through_the_api(world, withdrawn.commit_sha).get_json()

    assert again["submission_task_id"] == first["submission_task_id"]
    assert world.submission(withdrawn.id).outcome == "accepted"
