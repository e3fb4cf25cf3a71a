"""A new merge request of a commit whose submission was withdrawn, or still waits, hands it in."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from pipeline.ledger.models import RunStatus, Submission
from pipeline.submissions.verdict import format_time
from tests.infra.ledger import end_run
from tests.submissions.test_flow import (deliver_merge_request,
                                         merge_request_submission,
                                         passed_merge_request_submission)
from tests.submissions.world import ASSIGNMENT, TARGET, solution
from webhooks.receiver import DUPLICATE_HEADER

BRANCH = "week1-done"  # alice's branch, which test_flow's merge requests come from


def open_new_merge_request(world, sha: str):
    """Open a new merge request of alice's branch into the submission branch, as she would
    once the first is closed, and deliver its hook; return it and the hook's answer."""
    mr = world.gitlab.add_merge_request(world.project_id, BRANCH, TARGET, author=world.alice)
    return mr, deliver_merge_request(world, mr["iid"], sha, BRANCH)


def handed_in_instead(sha: str, iid: int) -> str:
    """Return what the comment of the merge request the commit left says, escapes removed."""
    return (f"Nothing is handed in for this assignment: commit {sha[:12]} is handed in through "
            f"the merge request !{iid} instead, whose comment shows its outcome.")


def plain(note: dict) -> str:
    """Return a note's text without markdown's escapes."""
    return note["body"].replace("\\", "")


def submissions_of_commit(world, sha: str) -> list[Submission]:
    with world.resources.sessions() as session:
        return list(session.scalars(select(Submission).where(
            Submission.commit_sha == sha, Submission.assignment == ASSIGNMENT)))


@pytest.mark.parametrize("refused_first", [True, False], ids=["refused", "still waiting"])
def test_a_new_merge_request_hands_in_the_commit_of_the_closed_one(world, refused_first):
    """Alice closes her merge request before it is processed (it is refused then, or still
    waits for its run) and opens a new one at the same commit. Before, the new one handed
    nothing in and got no submission comment: the submission stayed refused on the closed one,
    or was refused for it once processed."""
    old, submission = passed_merge_request_submission(world)
    sha = submission.commit_sha
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")
    if refused_first:
        assert world.process(submission.id).outcome == "refused"

    new, answer = open_new_merge_request(world, sha)

    assert answer.status_code == 200 and answer.json["existing_runs"]
    recorded = world.submission(submission.id)
    if refused_first:  # the new merge request makes it pending again, through itself
        assert (recorded.outcome, recorded.merge_request_iid,
                recorded.previous_merge_request_iid, recorded.branch) == (
            "pending", new["iid"], old["iid"], BRANCH)
        assert recorded.sent_at is not None  # released at once: its run had ended
    else:  # still the closed one's, which hands it over when it is processed
        assert (recorded.outcome, recorded.merge_request_iid) == ("pending", old["iid"])
    repeated = deliver_merge_request(world, new["iid"], sha, BRANCH)
    assert repeated.headers.get(DUPLICATE_HEADER) == "1"
    assert world.submission(submission.id).hand_ins == recorded.hand_ins

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.reason, outcome.merge_request_iid) == (
        "accepted", None, new["iid"])
    moved = world.submission(submission.id)
    assert (moved.previous_merge_request_iid, moved.branch) == (old["iid"], BRANCH)
    assert moved.received_at > submission.received_at  # the new merge request's hand-in
    assert world.submission(submission.id).counted_at == submission.received_at
    assert [s.id for s in submissions_of_commit(world, sha)] == [submission.id]
    note, = world.notes(new["iid"])
    assert "**✅ Accepted**" in note["body"]
    assert f"received {format_time(submission.received_at)}" in note["body"]
    old_note, = world.notes(old["iid"])
    assert plain(old_note).endswith(handed_in_instead(sha, new["iid"]))


def test_a_new_merge_request_after_the_deadline_is_on_time_for_a_commit_received_before(
        make_world):
    """The deadline counts when gradehook first received the commit, as for any submission, not
    when the new merge request was opened: closing the first costs the student nothing."""
    world = make_world(assignment={"deadline": "2020-01-01T00:00:00+00:00"})
    received = dt.datetime(2019, 12, 31, 23, 50, tzinfo=dt.timezone.utc)
    old, submission = merge_request_submission(world, RunStatus.PASSED, score=1.0,
                                               tests_passed=1, tests_total=1,
                                               received_at=received)
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")
    assert world.process(submission.id).outcome == "refused"
    assert world.submission(submission.id).withdrawn  # for the closed merge request alone

    new, _ = open_new_merge_request(world, submission.commit_sha)
    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.late, outcome.merge_request_iid) == (
        "accepted", False, new["iid"])
    note, = world.notes(new["iid"])
    assert "received 2019-12-31 23:50:00 UTC · deadline 2020-01-01 00:00:00 UTC" in note["body"]


def test_the_withdrawn_commit_counts_once_and_a_new_commit_after_it_counts_too(make_world):
    """With two submissions allowed, the commit withdrawn and handed in through the new merge
    request uses one, and a new commit pushed to that merge request the other."""
    world = make_world(assignment={"max_submissions": 2})
    old, first = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")
    assert world.process(first.id).outcome == "refused"
    new, _ = open_new_merge_request(world, first.commit_sha)
    assert world.process(first.id).outcome == "accepted"
    assert world.submission(first.id).submissions_used == 1

    second_sha = world.push(solution("hi"), branch=BRANCH)
    deliver_merge_request(world, new["iid"], second_sha, BRANCH, action="update",
                          oldrev=first.commit_sha)
    second, = submissions_of_commit(world, second_sha)
    end_run(world.resources, second.run_id, RunStatus.PASSED, score=1.0, tests_passed=1,
            tests_total=1)
    outcome = world.process(second.id)

    assert (outcome.outcome, outcome.merge_request_iid) == ("accepted", new["iid"])
    note, = world.notes(new["iid"])
    assert "Submissions used: 2 of 2 (only accepted ones count), 0 left" in note["body"]
    assert first.commit_sha[:12] in note["body"]  # in the history of the new merge request


def test_the_closed_merge_request_reopened_after_the_new_one_handed_the_commit_in_adds_nothing(
        world):
    """The commit is one submission, accepted through the new merge request; reopening the
    first changes nothing, and its comment still says where the commit was handed in."""
    old, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")
    world.process(submission.id)
    new, _ = open_new_merge_request(world, submission.commit_sha)
    assert world.process(submission.id).outcome == "accepted"
    accepted = world.submission(submission.id)
    # GitLab reopens a merge request only while no other one of its branch into its target is
    # open: alice closes the new one first.
    world.gitlab.set_merge_request_state(world.project_id, new["iid"], "closed")
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "opened")

    answer = deliver_merge_request(world, old["iid"], submission.commit_sha, BRANCH,
                                   action="reopen")

    assert answer.status_code == 200
    kept = world.submission(submission.id)
    assert (kept.outcome, kept.merge_request_iid, kept.hand_ins, kept.finished_at) == (
        "accepted", new["iid"], accepted.hand_ins, accepted.finished_at)
    assert [s.id for s in submissions_of_commit(world, submission.commit_sha)] == [submission.id]
    assert world.process(submission.id).outcome == "accepted"
    old_note, = world.notes(old["iid"])
    assert plain(old_note).endswith(handed_in_instead(submission.commit_sha, new["iid"]))
    note, = world.notes(new["iid"])
    assert "**✅ Accepted**" in note["body"]


def test_two_open_merge_requests_at_one_commit_leave_its_submission_with_the_first(world):
    """Alice opens a second merge request, from another branch at the same commit, before the
    first one's submission is processed, and its hooks come again (it is reopened). Before,
    each hook moved the pending submission to its merge request, back and forth, and the
    merge request whose hook came last was the one it was handed in through."""
    first, submission = passed_merge_request_submission(world)
    sha = submission.commit_sha
    world.gitlab.set_branch(world.project_id, "week1-copy", sha)
    second = world.gitlab.add_merge_request(world.project_id, "week1-copy", TARGET,
                                            author=world.alice)

    for action in ("open", "reopen"):
        deliver_merge_request(world, second["iid"], sha, "week1-copy", action=action)
        assert world.submission(submission.id).merge_request_iid == first["iid"]
    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.merge_request_iid) == ("accepted", first["iid"])
    assert "**✅ Accepted**" in world.notes(first["iid"])[0]["body"]
    note, = world.notes(second["iid"])
    assert (f"Commit {sha[:12]} is already handed in through the merge request "
            f"!{first['iid']}, where it was accepted.") in plain(note)
