"""A pending submission handed over to another merge request while a processing inspects it."""

from __future__ import annotations

from pipeline.submissions.succession import hand_over
from tests.submissions.test_flow import deliver_merge_request, passed_merge_request_submission
from tests.submissions.test_reopen_race import while_the_target_branch_is_read
from tests.submissions.world import TARGET

COPY = "week1-copy"  # alice's second branch, at the commit of her first merge request


def test_a_processing_that_inspected_the_closed_holder_does_not_refuse_it_once_handed_over(
        world):
    """Alice's first merge request is closed, her second, at the same commit, still open. Two
    processings of the submission run (a duplicate message): both read the closed one; one
    hands the submission over to the second merge request while the other inspects GitLab.
    Before, the other, finding it handed over already, refused it as withdrawn with the first
    one: the open merge request the submission is handed in through said it was refused."""
    first, submission = passed_merge_request_submission(world)
    sha = submission.commit_sha
    world.gitlab.set_branch(world.project_id, COPY, sha)
    second = world.gitlab.add_merge_request(world.project_id, COPY, TARGET, author=world.alice)
    deliver_merge_request(world, second["iid"], sha, COPY)
    world.gitlab.set_merge_request_state(world.project_id, first["iid"], "closed")
    course = world.resources.settings.course_named(submission.course)
    # The target branch is read after the merge request: the duplicate processing, which read
    # the submission too, hands it over while it is.
    outcome, handed_over = while_the_target_branch_is_read(
        world, submission.id,
        lambda: hand_over(world.resources, course, world.submission(submission.id)))

    assert handed_over is True
    assert (outcome.outcome, outcome.reason, outcome.merge_request_iid) == (
        "accepted", None, second["iid"])
    recorded = world.submission(submission.id)
    assert (recorded.outcome, recorded.withdrawn, recorded.merge_request_iid) == (
        "accepted", False, second["iid"])
    note, = world.notes(second["iid"])
    assert "**✅ Accepted**" in note["body"]
