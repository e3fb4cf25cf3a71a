"""A decided submission's comment follows a later grading of its commit (a regrade)."""

from __future__ import annotations

import pytest

from gitlab_client import TransientGitLabError
from pipeline.ledger.models import RunStatus
from pipeline.reconcile import reconcile_ledger
from pipeline.tasks.reporting import report_now_or_later, report_run
from tests.cli.commands import gradehook
from tests.infra.services import take_requested_reports
from tests.submissions.world import OTHER_ASSIGNMENT, TARGET, solution
from tests.support.gitlab_standin import FaultPlan

REGRADED = "Regraded at {time}: the score above is from the latest test run of this commit."
GRADED_AGAIN = ("Graded again at {time}: the score above is from the latest test run of this "
                "commit.")


def _time(run) -> str:
    return run.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_a_regrade_of_a_decided_submission_rewrites_its_comment_with_the_new_score(world):
    """Before, the submission comment kept 'Score 67%' from the faulty test while the results
    comment, commit status, badge and gradebook read the regrade's 100%."""
    sha = world.push(solution("hello"))
    submission = world.submit(sha, RunStatus.FAILED, score=2 / 3, passed=2, total=3)
    iid = world.process(submission.id).merge_request_iid
    decided, = world.notes(iid)
    regrade = world.graded_run(sha, score=1.0, passed=3, total=3, kind="regrade")

    report_run(world.resources, regrade.id)

    note, = world.notes(iid)
    assert note["id"] == decided["id"]
    assert "Score **67%**" in decided["body"] and "Regraded" not in decided["body"]
    assert "Score **100%** (3/3 tests passed)" in note["body"]
    assert "Score **67%**" not in note["body"]
    assert f"/results/{regrade.id}" in note["body"]
    assert REGRADED.format(time=_time(regrade)) in note["body"].splitlines()
    # Runs of the commit for another assignment, or ending in error, grade nothing of it.
    report_run(world.resources, world.graded_run(sha, assignment=OTHER_ASSIGNMENT, score=0.0).id)
    report_run(world.resources, world.graded_run(sha, RunStatus.ERROR, reason="no sandbox").id)
    assert world.notes(iid) == [note]


@pytest.mark.parametrize("kind", ["retest", "push", "api", "cli"])
def test_a_later_run_of_a_decided_submissions_commit_that_is_no_regrade_is_not_called_one(
        world, kind):
    """Before, a student's /retest of the submission's merge request, a push of the commit to
    another branch or a grading asked through the API or the command line read 'Regraded at
    ...', as if staff had regraded the submission."""
    first_sha = world.push(solution("hi"))
    first = world.submit(first_sha, RunStatus.FAILED, score=0.5, passed=1, total=2)
    iid = world.process(first.id).merge_request_iid
    second_sha = world.push(solution("hello"))
    world.process(world.submit(second_sha, score=0.5, passed=1, total=2).id)
    again = world.graded_run(second_sha, score=1.0, passed=2, total=2, kind=kind)
    report_run(world.resources, again.id)
    earlier = world.graded_run(first_sha, score=1.0, passed=2, total=2, kind=kind)

    report_run(world.resources, earlier.id)

    body = world.notes(iid)[0]["body"]
    assert "Regraded" not in body and "(regraded)" not in body
    assert "Score **100%** (2/2 tests passed)" in body
    assert GRADED_AGAIN.format(time=_time(again)) in body.splitlines()
    rows = [line for line in body.splitlines() if line.startswith("| ")]
    assert rows[2].endswith(" | accepted | 100% (graded again) |")
    assert rows[3].endswith(" | accepted | 100% (graded again) |")


def test_the_history_marks_an_earlier_submission_regraded(world):
    first_sha = world.push(solution("hi"))
    first = world.submit(first_sha, RunStatus.FAILED, score=0.5, passed=1, total=2)
    iid = world.process(first.id).merge_request_iid
    second_sha = world.push(solution("hello"))
    world.process(world.submit(second_sha, score=1.0).id)
    regrade = world.graded_run(first_sha, score=1.0, passed=2, total=2, kind="regrade")

    report_run(world.resources, regrade.id)

    body = world.notes(iid)[0]["body"]
    rows = [line for line in body.splitlines() if line.startswith("| ")]
    assert rows[2].startswith("| 2 | ") and rows[2].endswith(" | accepted | 100% |")
    assert rows[3].startswith("| 1 | ") and rows[3].endswith(" | accepted | 100% (regraded) |")
    assert "Regraded at" not in body


def _regrade_with_failing_submission_comment(world, status: int):
    """Decide a submission, open a merge request of the branch main, regrade the commit, and make
    GitLab answer `status` to every write of the submission's comment; return the submission's
    merge request iid and comment, the other merge request's iid and the regrade."""
    sha = world.push(solution("hello"))
    submission = world.submit(sha, RunStatus.FAILED, score=2 / 3, passed=2, total=3)
    submission_iid = world.process(submission.id).merge_request_iid
    decided, = world.notes(submission_iid)
    own_iid = world.gitlab.add_merge_request(world.project_id, "main", TARGET)["iid"]
    regrade = world.graded_run(sha, score=1.0, passed=3, total=3, kind="regrade")
    world.gitlab.inject_faults(FaultPlan(
        status=status, every=1, method="PUT",
        path_pattern=rf"/merge_requests/{submission_iid}/notes/{decided['id']}$"))
    return submission_iid, decided, own_iid, regrade


def test_a_refused_submission_comment_does_not_hold_back_the_runs_comments(world):
    """Before, a 403 on the submission's comment stopped the run's own merge request comments
    and marked its report refused for good, as if GitLab had refused the run's own update,
    though its commit status was posted."""
    submission_iid, decided, own_iid, regrade = \
        _regrade_with_failing_submission_comment(world, 403)

    report_now_or_later(world.resources, world.celery, regrade.id)

    own, = world.notes(own_iid)
    assert f"/results/{regrade.id}" in own["body"]
    assert "the run's update" not in (world.run(regrade.id).report_refused or "")
    assert world.notes(submission_iid) == [decided]


def test_a_refused_submission_comment_is_shown_to_staff_and_written_once_gitlab_takes_it(
        world, redis_db):
    """Before, GitLab refusing (403) the comment of a submission a regrade graded again was only
    logged: `gradehook results` showed nothing, and the comment kept the old score for good.
    The refusal is kept on the run, which stays passed, until GitLab takes an update of the
    project; the reconciler then asks for the run again, and the comment is written in place."""
    submission_iid, decided, own_iid, regrade = \
        _regrade_with_failing_submission_comment(world, 403)
    world.celery.loader.import_default_modules()

    report_now_or_later(world.resources, world.celery, regrade.id)

    run = world.run(regrade.id)
    assert run.status == RunStatus.PASSED and run.status_reason is None
    listed = gradehook(world.config, "results").output.splitlines()
    assert listed[-1].startswith(  # the stand-in's fault, told as GitLab's would be
        f"run {regrade.id}: GitLab refused the submission's comment on merge request "
        f"!{submission_iid} for good: update merge request note: 403 ")
    reconcile_ledger(world.resources, world.celery, worker_started=True)
    assert regrade.id not in sum(take_requested_reports(redis_db), [])

    world.gitlab.clear_faults()
    later = world.graded_run(world.push(solution("hi")), kind="push")
    report_now_or_later(world.resources, world.celery, later.id)
    reconcile_ledger(world.resources, world.celery, worker_started=True)
    requested, = take_requested_reports(redis_db)
    assert regrade.id in requested
    world.celery.tasks["report_runs"].apply(args=[[regrade.id]]).get()
    note, = world.notes(submission_iid)
    assert note["id"] == decided["id"] and "Score **100%** (3/3 tests passed)" in note["body"]
    assert world.run(regrade.id).commented_at is not None
    assert not gradehook(world.config, "results").output.splitlines()[-1].startswith("run ")


def test_a_passing_fault_on_a_submission_comment_is_retried_after_the_runs_comments(world):
    """Before, a 500 on the submission's comment stopped the run's own merge request comments
    until a retry got through."""
    submission_iid, decided, own_iid, regrade = \
        _regrade_with_failing_submission_comment(world, 500)

    with pytest.raises(TransientGitLabError):
        report_run(world.resources, regrade.id)

    own, = world.notes(own_iid)
    assert f"/results/{regrade.id}" in own["body"]
    assert world.run(regrade.id).report_refused is None
    assert world.notes(submission_iid) == [decided]
    world.gitlab.clear_faults()
    report_run(world.resources, regrade.id)
    note, = world.notes(submission_iid)
    assert note["id"] == decided["id"] and "Score **100%** (3/3 tests passed)" in note["body"]
    assert [note["id"] for note in world.notes(own_iid)] == [own["id"]]


def test_a_submission_comment_gitlab_fails_through_every_retry_is_written_once_it_answers(
        world, redis_db):
    """Before, the run was marked as commented before the submission's comment was written: a
    500 lasting through every try of the report task left that comment at the old score for
    good, as the reconciler asks again only for runs not marked."""
    submission_iid, decided, own_iid, regrade = \
        _regrade_with_failing_submission_comment(world, 500)
    world.celery.loader.import_default_modules()

    world.celery.tasks["report_runs"].apply(args=[[regrade.id]]).get()

    assert world.notes(submission_iid) == [decided]
    own, = world.notes(own_iid)
    world.gitlab.clear_faults()
    reconcile_ledger(world.resources, world.celery, worker_started=True)
    requested, = take_requested_reports(redis_db)
    assert regrade.id in requested
    world.celery.tasks["report_runs"].apply(args=[[regrade.id]]).get()
    note, = world.notes(submission_iid)
    assert note["id"] == decided["id"] and "Score **100%** (3/3 tests passed)" in note["body"]
    assert world.notes(own_iid) == [own]
    assert world.run(regrade.id).commented_at is not None
