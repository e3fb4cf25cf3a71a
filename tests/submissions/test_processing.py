"""submission_processing on real git, a real ledger and the GitLab stand-in: every outcome."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.ledger.models import RunStatus, utcnow
from pipeline.submissions.gitlab_side import MERGE_REQUEST_TITLE
from pipeline.submissions.processing import end_with_error
from tests.submissions.world import (ASSIGNMENT, OTHER_ASSIGNMENT, SUBMISSION_BRANCH, TARGET,
                                     solution)


def test_a_first_submission_opens_the_branch_and_merge_request_with_the_score(world):
    sha = world.push(solution("hello"))
    submission = world.submit(sha, score=0.5, passed=1, total=2)

    outcome = world.process(submission.id)

    mr, = world.merge_requests()
    assert (outcome.outcome, outcome.reason, outcome.late, outcome.merge_request_iid) == \
        ("accepted", None, False, mr["iid"])
    assert world.branches()[SUBMISSION_BRANCH] == sha
    assert (mr["source_branch"], mr["target_branch"], mr["state"], mr["title"]) == \
        (SUBMISSION_BRANCH, TARGET, "opened", MERGE_REQUEST_TITLE.format(directory=ASSIGNMENT))
    note, = world.notes(mr["iid"])
    assert note["author"]["username"] == "gradehook"
    assert "**✅ Accepted**" in note["body"]
    assert "Score **50%** (1/2 tests passed)" in note["body"]
    recorded = world.submission(submission.id)
    assert (recorded.outcome, recorded.branch, recorded.merge_request_iid) == \
        ("accepted", SUBMISSION_BRANCH, mr["iid"])
    assert recorded.finished_at is not None and recorded.decided_at is not None


def test_a_resubmission_moves_the_branch_forward_and_reuses_the_merge_request(world):
    first_sha = world.push(solution("hi"))
    first = world.submit(first_sha, RunStatus.FAILED, score=0.0, passed=0, total=1)
    iid = world.process(first.id).merge_request_iid
    first_note, = world.notes(iid)

    second_sha = world.push(solution("hello"))
    second = world.submit(second_sha)
    outcome = world.process(second.id)

    assert (outcome.outcome, outcome.merge_request_iid) == ("accepted", iid)
    assert world.branches()[SUBMISSION_BRANCH] == second_sha
    mr, = world.merge_requests()
    assert (mr["iid"], mr["state"], mr["sha"]) == (iid, "opened", second_sha)
    note, = world.notes(iid)
    assert note["id"] == first_note["id"] and note["body"] != first_note["body"]
    history = note["body"].split("**Submissions through this merge request**")[1]
    rows = [line for line in history.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        f"| 2 | ` {second_sha[:12]} ` | {_time(world, second.id)} | accepted | 100% |",
        f"| 1 | ` {first_sha[:12]} ` | {_time(world, first.id)} | accepted | 0% |"]


def test_a_late_submission_is_accepted_late_when_the_assignment_allows_it(make_world):
    deadline = utcnow() - dt.timedelta(hours=1)
    world = make_world(assignment={"deadline": deadline.isoformat(), "accept_late": True})
    sha = world.push(solution("hello"))
    submission = world.submit(sha)

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.late) == ("accepted", True)
    assert outcome.reason.startswith("accepted late: gradehook received this commit at ")
    assert world.branches()[SUBMISSION_BRANCH] == sha
    note, = world.notes(outcome.merge_request_iid)
    assert "**✅ Accepted late**" in note["body"]
    recorded = world.submission(submission.id)
    assert recorded.late is True and recorded.deadline == deadline


def test_a_late_submission_is_refused_without_touching_gitlab(make_world):
    deadline = utcnow() - dt.timedelta(hours=1)
    world = make_world(assignment={"deadline": deadline.isoformat()})
    sha = world.push(solution("hello"))
    submission = world.submit(sha)
    before = world.branches()

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.late, outcome.merge_request_iid) == ("refused", True, None)
    assert "handed in after the deadline" in outcome.reason
    assert world.branches() == before and world.merge_requests() == []
    recorded = world.submission(submission.id)
    assert (recorded.outcome, recorded.late, recorded.finished_at is not None) == \
        ("refused", True, True)


def test_the_push_time_counts_not_the_submission_time(make_world):
    deadline = utcnow() - dt.timedelta(hours=1)
    world = make_world(assignment={"deadline": deadline.isoformat()})
    sha = world.push(solution("hello"))
    world.graded_run(sha, received_at=deadline - dt.timedelta(minutes=5))  # the push, in time
    submission = world.submit(sha)  # handed in an hour after the deadline

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.late) == ("accepted", False)
    assert world.submission(submission.id).counted_at == deadline - dt.timedelta(minutes=5)


def test_a_submission_over_the_limit_is_refused_on_the_open_merge_request(make_world):
    world = make_world(assignment={"max_submissions": 1})
    first_sha = world.push(solution("hi"))
    iid = world.process(world.submit(first_sha).id).merge_request_iid
    second_sha = world.push(solution("hello"))
    second = world.submit(second_sha)

    outcome = world.process(second.id)

    assert (outcome.outcome, outcome.merge_request_iid) == ("refused", iid)
    assert outcome.reason == f"the limit of 1 accepted submission of {ASSIGNMENT} is reached"
    assert world.branches()[SUBMISSION_BRANCH] == first_sha
    note, = world.notes(iid)
    assert "**⛔ Refused**" in note["body"] and "the limit of 1 accepted" in note["body"]


def test_submissions_at_the_limit_are_decided_in_the_order_received(make_world):
    """Two hand-ins in a row with one submission left, the later one's processing first (its
    run ended first, or both came at once). Before, the later one took the last submission and
    the earlier one was refused, whichever process judged first; the later one now waits for
    the earlier one, whose decision sends it again."""
    world = make_world(assignment={"max_submissions": 1})
    earlier = world.submit(world.push(solution("hi")))
    later = world.submit(world.push(solution("hello")))
    sent_before = world.submission(later.id).sent_at

    waiting = world.process(later.id)
    first = world.process(earlier.id)
    sent_again = world.submission(later.id).sent_at
    second = world.process(later.id)

    assert (waiting.outcome, first.outcome, second.outcome) == ("pending", "accepted", "refused")
    assert second.reason == f"the limit of 1 accepted submission of {ASSIGNMENT} is reached"
    assert sent_again is not None and sent_again != sent_before
    assert world.branches()[SUBMISSION_BRANCH] == world.submission(earlier.id).commit_sha


def test_a_submission_waiting_for_an_earlier_one_is_sent_when_that_one_ends_in_error(
        make_world):
    """The earlier hand-in's processing ends in an error of ours (its attempts exhausted, its
    hard time limit). Before, the later one, waiting for it, was not sent: it stayed pending
    until the reconciler found it lost, 15 minutes after it was last sent; it is sent at once,
    as after any other decision of the earlier one."""
    world = make_world(assignment={"max_submissions": 1})
    earlier = world.submit(world.push(solution("hi")))
    later = world.submit(world.push(solution("hello")))
    waiting = world.process(later.id)
    sent_before = world.submission(later.id).sent_at

    end_with_error(world.resources, earlier.id, "attempts exhausted",
                   world.submission(earlier.id).celery_task_id)

    assert waiting.outcome == "pending" and world.submission(earlier.id).outcome == "error"
    assert world.submission(later.id).sent_at not in (None, sent_before)
    assert world.process(later.id).outcome == "accepted"


def test_the_comment_counts_the_allowed_submissions_used_and_left(make_world):
    world = make_world(assignment={"max_submissions": 2})
    iid = world.process(world.submit(world.push(solution("hi"))).id).merge_request_iid
    after_first = world.notes(iid)[0]["body"]
    world.process(world.submit(world.push(solution("hello"))).id)
    after_second = world.notes(iid)[0]["body"]
    refused = world.process(world.submit(world.push(solution("hey"))).id)
    after_refusal = world.notes(iid)[0]["body"]

    assert "Submissions used: 1 of 2 (only accepted ones count), 1 left" in after_first
    assert "Submissions used: 2 of 2 (only accepted ones count), 0 left" in after_second
    assert refused.outcome == "refused"
    assert "Submissions used: 2 of 2 (only accepted ones count), 0 left" in after_refusal


def test_after_the_deadline_a_late_refusal_leaves_no_submission(make_world):
    """Before, a hand-in refused as late read 'Submissions used: 1 of 3 ..., 2 left', though
    no submission can be accepted after the deadline."""
    deadline = utcnow() - dt.timedelta(hours=1)
    world = make_world(assignment={"deadline": deadline.isoformat(), "max_submissions": 3})
    on_time = world.push(solution("hi"))
    world.graded_run(on_time, received_at=deadline - dt.timedelta(minutes=5))
    iid = world.process(world.submit(on_time).id).merge_request_iid

    refused = world.process(world.submit(world.push(solution("hello"))).id)

    assert (refused.outcome, refused.late, refused.merge_request_iid) == ("refused", True, iid)
    body = world.notes(iid)[0]["body"]
    assert "Submissions used: 1 of 3 (only accepted ones count); none left, as the deadline " \
        "has passed" in body
    assert "2 left" not in body


def test_without_a_limit_the_comment_counts_no_submissions(world):
    iid = world.process(world.submit(world.push(solution("hello"))).id).merge_request_iid

    assert "Submissions used" not in world.notes(iid)[0]["body"]


def test_the_score_names_the_collections_of_the_runs_report(world):
    submission = world.submit(world.push(solution("hello")), RunStatus.FAILED, score=1 / 3,
                              passed=1, total=5, collections=(1, 3))

    iid = world.process(submission.id).merge_request_iid

    assert "Score **33%** (1 of 3 collections passed, 1/5 tests passed)" in \
        world.notes(iid)[0]["body"]


def test_a_submission_changing_files_outside_the_assignment_is_refused(world):
    sha = world.push({**solution("hello"), "README.md": "my notes\n",
                      f"{OTHER_ASSIGNMENT}/loops.py": "x = 1\n"})
    submission = world.submit(sha)

    outcome = world.process(submission.id)

    assert outcome.outcome == "refused"
    assert outcome.reason == (f"the submission changes files outside {ASSIGNMENT}/: "
                              f"README.md, {OTHER_ASSIGNMENT}/loops.py")
    assert SUBMISSION_BRANCH not in world.branches() and world.merge_requests() == []


def test_changes_outside_are_accepted_when_the_course_allows_them(make_world):
    world = make_world(course={"submission_scope_only": False})
    sha = world.push({**solution("hello"), "README.md": "my notes\n"})

    assert world.process(world.submit(sha).id).outcome == "accepted"


def test_the_same_commit_submitted_twice_is_one_submission(world):
    sha = world.push(solution("hello"))
    first = world.submit(sha)
    again = world.submit(sha)
    assert again.id == first.id and again.celery_task_id == first.celery_task_id

    outcomes = [world.process(first.id), world.process(again.id)]

    assert outcomes[0] == outcomes[1] and outcomes[0].outcome == "accepted"
    mr, = world.merge_requests()
    assert len(world.notes(mr["iid"])) == 1
    assert len(world.gitlab.requests_to("POST", r"/repository/branches$")) == 1


def test_a_merged_submission_merge_request_refuses_further_submissions(world):
    first_sha = world.push(solution("hi"))
    iid = world.process(world.submit(first_sha).id).merge_request_iid
    world.gitlab.set_merge_request_state(world.project_id, iid, "merged")
    second_sha = world.push(solution("hello"))

    outcome = world.process(world.submit(second_sha).id)

    assert outcome.outcome == "refused"
    assert outcome.reason == (f"the submission merge request !{iid} was already merged: the "
                              f"submission of {ASSIGNMENT} is final")
    assert world.branches()[SUBMISSION_BRANCH] == first_sha
    assert [mr["state"] for mr in world.merge_requests()] == ["merged"]


def test_a_branch_that_cannot_move_forward_is_a_refusal(world):
    stray = world.push({"scratch.txt": "elsewhere\n"}, branch=SUBMISSION_BRANCH)
    sha = world.push(solution("hello"))

    outcome = world.process(world.submit(sha).id)

    assert outcome.outcome == "refused"
    assert outcome.reason == (f"the branch {SUBMISSION_BRANCH} is at commit {stray[:12]}, which "
                              "is not an ancestor of this commit, and gradehook only moves it "
                              "forward")
    assert world.branches()[SUBMISSION_BRANCH] == stray and world.merge_requests() == []


def test_a_test_run_in_error_is_not_a_zero_score(world):
    sha = world.push(solution("hello"))
    submission = world.submit(sha, RunStatus.ERROR, reason="course error: test.yaml is invalid")

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.reason) == (
        "error", "the test run of this commit ended in error: course error: test.yaml is invalid")
    assert world.merge_requests() == []


@pytest.mark.parametrize("meta_yaml, reason", [
    # An invalid hidden tests entry is named by its place alone.
    ("properties:\n  hiddenTests: test_secret.py\n",
     "properties.hiddenTests: a problem with a hidden test"),
    # Before, the ledger refused to record a limit too large for it, and the submission ended
    # as 'unexpected error in gradehook (DataError)', with no comment and no word to staff
    # about meta.yaml.
    ("properties:\n  maxSubmissions: 3000000000\n",
     "properties.maxSubmissions: must be at most 2147483647, got 3000000000"),
], ids=["hidden-tests-entry-named-by-place", "limit-too-large-to-record"])
def test_a_fault_of_meta_yaml_is_a_course_error_naming_its_line(make_world, meta_yaml, reason):
    world = make_world(meta_yaml=meta_yaml)
    sha = world.push(solution("hello"))

    outcome = world.process(world.submit(sha).id)

    assert (outcome.outcome, outcome.reason) == (
        "error", f"course error: meta.yaml line 2: {reason}")


def test_a_test_run_in_a_course_error_gives_students_only_what_they_may_read_of_it(world):
    sha = world.push(solution("hello"))
    cause = ("the reference solution gives no expected value for `f(4711)` in collection "
             "`Secret`: evaluating `f(4711)` in its namespace raised ZeroDivisionError: division "
             "by zero (ex.py, line 4: return secret_formula / 0)")
    shown = "the reference solution gives no expected value for a test of a hidden collection"
    submission = world.submit(sha, RunStatus.ERROR, reason=f"course error: {cause}", report={
        "gradehook": {"score": None, "courseError": cause, "courseErrorForStudents": shown}})

    outcome = world.process(submission.id)

    assert (outcome.outcome, outcome.reason) == (
        "error", f"the test run of this commit ended in error: course error: {shown}")
    assert world.run(submission.run_id).status_reason == f"course error: {cause}"


def test_a_missing_target_branch_is_an_error_for_course_staff(world):
    del world.gitlab.state.branches[world.project_id][TARGET]
    sha = world.push(solution("hello"))

    outcome = world.process(world.submit(sha).id)

    assert (outcome.outcome, outcome.reason) == (
        "error", f"the project has no branch {TARGET}, which submissions target; course staff "
                 "must create it")
    assert SUBMISSION_BRANCH not in world.branches()


def test_an_errored_submission_is_processed_again_when_submitted_again(world):
    sha = world.push(solution("hello"))
    first = world.submit(sha, RunStatus.ERROR, reason="sandbox unavailable")
    assert world.process(first.id).outcome == "error"

    again = world.submit(sha)  # graded again, passed

    assert again.id == first.id and again.celery_task_id != first.celery_task_id
    assert (again.outcome, again.reason, again.finished_at) == ("pending", None, None)
    assert world.process(again.id).outcome == "accepted"


def _time(world, submission_id):
    moment = world.submission(submission_id).counted_at
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_a_commit_beyond_the_allowed_test_runs_is_refused(make_world):
    world = make_world(assignment={"max_test_runs": 2})
    early = [world.push(solution(f"try {n}")) for n in range(2)]
    for sha in early:
        world.graded_run(sha)
    world.graded_run(early[0])  # graded again: still one test run of that commit
    third = world.push(solution("hello"))

    assert world.process(world.submit(early[1]).id).outcome == "accepted"
    outcome = world.process(world.submit(third).id)

    assert (outcome.outcome, outcome.reason) == (
        "refused", f"this commit is test run 3 of {ASSIGNMENT}, and only the first 2 test runs may "
                   "be handed in")
