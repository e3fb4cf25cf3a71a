"""How submissions arrive and wait, and how GitLab failing half-way is completed by a retry."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import select

from gitlab_client import TransientGitLabError
from pipeline import testing
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, Submission, TestRun
from pipeline.submissions.dispatch import hand_off_submissions, resend_lost_submissions
from pipeline.submissions.ledger import request_submission
from pipeline.submissions.processing import end_with_error
from tests.infra.ledger import end_run
from tests.submissions.world import (ASSIGNMENT, OTHER_ASSIGNMENT, STUDENT, SUBMISSION_BRANCH,
                                     TARGET, solution)
from tests.support.gitlab_standin import FaultPlan
from tests.webhooks.deliveries import payload_of
from webhooks.app import create_app


def deliver_merge_request(world, iid: int, sha: str, source_branch: str, action: str = "open",
                          changes: dict | None = None, oldrev: str | None = None,
                          settings=None):
    """Deliver GitLab's hook for a merge request alice opened (or reopened, or updated with
    `changes`, or with a new head after `oldrev`) into the submission branch, to gradehook
    with the world's settings or others."""
    payload = payload_of("merge_request_hook__open_into_submission_branch")
    payload["project"].update(id=world.project_id, path_with_namespace=STUDENT)
    payload["object_attributes"].update(iid=iid, source_branch=source_branch,
                                        target_branch=TARGET, source_project_id=world.project_id,
                                        target_project_id=world.project_id, action=action)
    payload["object_attributes"]["last_commit"]["id"] = sha
    if oldrev is not None:
        payload["object_attributes"]["oldrev"] = oldrev
    payload["changes"] = changes or {}
    client = create_app(settings or world.resources.settings).test_client()
    return client.post("/webhooks/gitlab", data=json.dumps(payload),
                       headers={"Content-Type": "application/json",
                                "X-Gitlab-Event": "Merge Request Hook",
                                "Idempotency-Key": f"mr-{iid}-{sha}-{action}"})


def submissions_of(world) -> dict[str, Submission]:
    with world.resources.sessions() as session:
        return {s.assignment: s for s in session.scalars(select(Submission))}


def test_a_merge_request_a_student_opens_is_validated_and_answered_on_it(world):
    sha = world.push(solution("hello"), branch="week1-done")
    mr = world.gitlab.add_merge_request(world.project_id, "week1-done", TARGET,
                                        title="Week 1", author=world.alice)

    answer = deliver_merge_request(world, mr["iid"], sha, "week1-done")

    assert answer.status_code == 202
    found = submissions_of(world)
    assert set(found) == {ASSIGNMENT, OTHER_ASSIGNMENT}
    assert {(s.source, s.outcome, s.merge_request_iid, s.branch, s.commit_sha)
            for s in found.values()} == {("merge_request", "pending", mr["iid"], "week1-done", sha)}
    end_run(world.resources, found[ASSIGNMENT].run_id, RunStatus.PASSED, score=1.0, tests_passed=1,
            tests_total=1)
    end_run(world.resources, found[OTHER_ASSIGNMENT].run_id, RunStatus.CANCELLED,
            status_reason=f"this push did not change {OTHER_ASSIGNMENT}")

    accepted = world.process(found[ASSIGNMENT].id)
    discarded = world.process(found[OTHER_ASSIGNMENT].id)

    assert (accepted.outcome, accepted.merge_request_iid) == ("accepted", mr["iid"])
    assert discarded.outcome == "discarded"
    assert set(submissions_of(world)) == {ASSIGNMENT}
    note, = world.notes(mr["iid"])
    assert "Submission of week1/hello" in note["body"].replace("\\", "")
    assert "Score **100%**" in note["body"]
    assert SUBMISSION_BRANCH not in world.branches()  # the student's own branch is the hand-in


def passed_merge_request_submission(world):
    """Return alice's merge request into the submission branch and its submission, run passed."""
    return merge_request_submission(world, RunStatus.PASSED, score=1.0, tests_passed=1,
                                    tests_total=1)


def merge_request_submission(world, status: RunStatus, **run_values):
    """Return alice's merge request into the submission branch and its submission, its run
    ended with a status and values."""
    sha = world.push(solution("hello"), branch="week1-done")
    mr = world.gitlab.add_merge_request(world.project_id, "week1-done", TARGET,
                                        author=world.alice)
    deliver_merge_request(world, mr["iid"], sha, "week1-done")
    submission = submissions_of(world)[ASSIGNMENT]
    end_run(world.resources, submission.run_id, status, **run_values)
    return mr, submission


def test_a_closed_student_merge_request_is_refused(world):
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.reason) == (
        "refused", f"the merge request !{mr['iid']} was closed before it was processed: reopen "
                   f"it, or open a new merge request with this commit into {TARGET}, to hand "
                   "this commit in")


def test_a_merge_request_retargeted_away_from_the_submission_branch_is_refused(world):
    mr, submission = passed_merge_request_submission(world)
    # The student points the merge request at main through GitLab's API before it is processed.
    retarget(world, mr["iid"], "main")

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.reason) == (
        "refused", f"the merge request !{mr['iid']} now targets main, not the submission branch "
                   f"{TARGET}: point it back at {TARGET}, or open a new merge request with "
                   f"this commit into {TARGET}, to hand this commit in")
    note, = world.notes(mr["iid"])
    assert "now targets main" in note["body"]


def retarget(world, iid: int, target: str) -> None:
    """Point alice's merge request at another branch through GitLab's API, as she would."""
    answer = requests.put(
        f"{world.gitlab.url}/api/v4/projects/{world.project_id}/merge_requests/{iid}",
        json={"target_branch": target}, headers={"PRIVATE-TOKEN": world.alice.token},
        timeout=10)
    assert answer.status_code == 200 and answer.json()["target_branch"] == target


def _accepted_once_processed_again(world, mr, submission) -> None:
    """Check that the withdrawn submission is pending again, sent, kept its receipt time, and
    is accepted on its merge request."""
    again = world.submission(submission.id)
    assert (again.outcome, again.reason, again.finished_at) == ("pending", None, None)
    assert again.received_at == submission.received_at
    assert again.sent_at is not None  # released at once: its run had ended
    outcome = world.process(submission.id)
    assert (outcome.outcome, outcome.reason) == ("accepted", None)
    assert world.submission(submission.id).counted_at == submission.received_at
    note, = world.notes(mr["iid"])
    assert "**✅ Accepted**" in note["body"]


def test_a_merge_request_closed_before_processing_and_reopened_is_processed_again(world):
    """Before, the reopen at the same commit did nothing: the refusal stood, and the student
    had to push a new commit, late if the deadline had passed meanwhile."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
    assert world.process(submission.id).outcome == "refused"

    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "opened")
    answer = deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                                   action="reopen")

    assert answer.status_code == 200 and answer.json["existing_runs"]
    _accepted_once_processed_again(world, mr, submission)


def test_a_merge_request_pointed_back_at_the_submission_branch_is_processed_again(world):
    mr, submission = passed_merge_request_submission(world)
    retarget(world, mr["iid"], "main")
    assert world.process(submission.id).outcome == "refused"

    retarget(world, mr["iid"], TARGET)
    deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                          action="update",
                          changes={"target_branch": {"previous": "main", "current": TARGET}})

    _accepted_once_processed_again(world, mr, submission)


def test_a_refusal_for_more_than_the_closed_merge_request_stays_on_reopening(make_world):
    world = make_world(assignment={"deadline": "2020-01-01T00:00:00+00:00"})
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
    assert world.process(submission.id).outcome == "refused"  # late, and closed
    refused = world.submission(submission.id)

    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "opened")
    deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                          action="reopen")

    kept = world.submission(submission.id)
    assert (kept.outcome, kept.reason, kept.finished_at) == (
        "refused", refused.reason, refused.finished_at)
    assert kept.reason.startswith("handed in after the deadline")


def test_a_submission_waits_for_its_run_and_is_handed_off_when_it_ends(world):
    sha = world.push(solution("hello"))
    run = world.graded_run(sha, RunStatus.QUEUED)
    submission = request_submission(world.resources.sessions, run.id)

    waiting = world.process(submission.id)
    assert (waiting.outcome, waiting.run_id) == ("pending", run.id)
    assert world.submission(submission.id).sent_at is None
    testing.end_with_error(world.resources, run.id, "sandbox unavailable")  # student_testing ends

    assert world.submission(submission.id).sent_at is not None  # published to the broker
    outcome = world.process(submission.id)
    assert (outcome.outcome, outcome.reason) == (
        "error", "the test run of this commit ended in error: sandbox unavailable")
    assert hand_off_submissions(world.resources, run.id) == []  # decided: nothing waits


def test_the_reconciler_resends_a_submission_whose_hand_off_was_lost(world):
    sha = world.push(solution("hello"))
    submission = world.submit(sha)  # its run ended, but no message was ever sent

    assert resend_lost_submissions(world.resources, world.celery) == 1
    assert world.submission(submission.id).sent_at is not None
    assert resend_lost_submissions(world.resources, world.celery) == 0


def test_a_superseded_run_is_replaced_by_one_that_grades_the_commit(world):
    sha = world.push(solution("hello"))
    submission = world.submit(sha, RunStatus.SUPERSEDED)

    outcome = world.process(submission.id)

    new_run = world.run(outcome.run_id)
    assert outcome.outcome == "pending" and new_run.id != submission.run_id
    assert (new_run.kind, new_run.commit_sha, new_run.status) == ("submission", sha,
                                                                  RunStatus.QUEUED)
    assert world.submission(submission.id).run_id == new_run.id
    assert new_run.sent_at is not None


def test_a_submission_whose_new_run_is_superseded_too_is_sent_at_the_next_sweep(world):
    """Before, it kept the time it was first sent, and the reconciler took it for sent, so on
    its way, for a quarter of an hour."""
    sha = world.push(solution("hello"))
    submission = world.submit(sha, RunStatus.SUPERSEDED)
    hand_off_submissions(world.resources, submission.run_id)  # as its run's end did
    outcome = world.process(submission.id)
    assert outcome.outcome == "pending" and outcome.run_id != submission.run_id
    with transaction(world.resources.sessions) as session:  # a newer push supersedes it too
        session.get(TestRun, outcome.run_id).status = RunStatus.SUPERSEDED

    assert resend_lost_submissions(world.resources, world.celery) == 1
    assert world.process(submission.id).run_id not in (submission.run_id, outcome.run_id)


def test_gitlab_failing_half_way_is_completed_by_the_retry(world):
    sha = world.push(solution("hello"))
    submission = world.submit(sha)
    world.gitlab.inject_faults(FaultPlan(status=503, every=1, limit=1, method="POST",
                                         path_pattern=r"/merge_requests$"))

    with pytest.raises(TransientGitLabError):
        world.process(submission.id)

    halfway = world.submission(submission.id)
    assert (halfway.outcome, halfway.finished_at) == ("accepted", None)  # decided, not published
    assert world.branches()[SUBMISSION_BRANCH] == sha and world.merge_requests() == []
    outcome = world.process(submission.id)
    mr, = world.merge_requests()
    assert (outcome.outcome, outcome.merge_request_iid) == ("accepted", mr["iid"])
    assert len(world.notes(mr["iid"])) == 1


def _judged_with_its_comment_refused(make_world):
    """Return a world allowing two submissions, and one judged whose comment GitLab refused."""
    world = make_world(assignment={"max_submissions": 2})
    submission = world.submit(world.push(solution("hello")))
    world.gitlab.inject_faults(FaultPlan(status=503, every=1, limit=1, method="POST",
                                         path_pattern=r"/notes$"))
    with pytest.raises(TransientGitLabError):
        world.process(submission.id)
    return world, submission


def test_the_retry_that_writes_the_comment_still_counts_the_submissions_left(make_world):
    world, submission = _judged_with_its_comment_refused(make_world)

    iid = world.process(submission.id).merge_request_iid

    note, = world.notes(iid)
    assert "Submissions used: 1 of 2 (only accepted ones count), 1 left" in note["body"]


def test_an_accepted_submission_ending_in_error_counts_toward_no_limit(make_world):
    world, submission = _judged_with_its_comment_refused(make_world)
    assert world.submission(submission.id).submissions_used == 1  # judged: it counted itself

    end_with_error(world.resources, submission.id, "attempts exhausted",
                   submission.celery_task_id)

    ended = world.submission(submission.id)
    assert (ended.outcome, ended.submissions_used, ended.submission_limit) == ("error", None,
                                                                               None)


def test_a_resubmission_failing_between_delete_and_create_is_completed(world):
    first_sha = world.push(solution("hi"))
    iid = world.process(world.submit(first_sha).id).merge_request_iid
    second_sha = world.push(solution("hello"))
    second = world.submit(second_sha)
    world.gitlab.inject_faults(FaultPlan(status=500, every=1, limit=1, method="POST",
                                         path_pattern=r"/repository/branches$"))

    with pytest.raises(TransientGitLabError):
        world.process(second.id)
    assert SUBMISSION_BRANCH not in world.branches()  # deleted, not yet made again
    assert world.merge_requests()[0]["state"] == "closed"  # GitLab closed it with the branch

    outcome = world.process(second.id)

    assert (outcome.outcome, outcome.merge_request_iid) == ("accepted", iid)
    assert world.branches()[SUBMISSION_BRANCH] == second_sha
    assert [(mr["iid"], mr["state"]) for mr in world.merge_requests()] == [(iid, "opened")]


def test_a_merge_request_merged_before_it_was_processed_is_its_submission(world):
    """A student merges the merge request into the submission branch while its run still
    grades (GitLab's fast-forward merge: the target moves to the head). Before, the target then
    held the commit, so the submission seemed to change nothing and was dropped without a word;
    after a squash merge it was refused as 'already merged: final', for its own merge."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_branch(world.project_id, TARGET, submission.commit_sha)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "merged")

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.reason, outcome.merge_request_iid) == (
        "accepted", None, mr["iid"])
    note, = world.notes(mr["iid"])
    assert "**✅ Accepted**" in note["body"]


@pytest.mark.parametrize("target_moved", [False, True], ids=["target not yet moved", "moved"])
def test_a_merge_request_being_merged_when_processed_is_its_submission(world, target_moved):
    """GitLab shows a merge request as `locked` while it merges it. Before, that was taken for
    closed: refused, telling the student to reopen a merge request that was merged a moment
    later and could never be reopened."""
    mr, submission = passed_merge_request_submission(world)
    if target_moved:
        world.gitlab.set_branch(world.project_id, TARGET, submission.commit_sha)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "locked")

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.reason) == ("accepted", None)
