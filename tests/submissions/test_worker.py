"""Through a real worker: a submitted commit is graded, handed off, accepted and published, and
processed again after an error of ours."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.dispatch import send_runs
from pipeline.ledger.models import Submission
from pipeline.reconcile import reconcile_ledger
from pipeline.regrade import GradingTarget, request_grading
from pipeline.submissions.ledger import request_submission
from tests.infra.processes import wait_for, worker_process
from tests.submissions.test_flow import deliver_merge_request, submissions_of
from tests.submissions.test_recovery import GITLAB_DOWN, comment, wait_passed
from tests.submissions.world import ASSIGNMENT, STUDENT, SUBMISSION_BRANCH, TARGET, solution

pytestmark = pytest.mark.slow


def test_a_submitted_commit_is_graded_then_processed_by_the_worker(tmp_path, make_world):
    world = make_world()
    sha = world.push(solution("hi"))
    course = world.resources.settings.courses[0]
    run, _ = request_grading(world.resources.sessions,
                             GradingTarget(course=course, project_path=STUDENT, commit_sha=sha,
                                           assignment=ASSIGNMENT, project_id=world.project_id),
                             kind="api")
    submission = request_submission(world.resources.sessions, run.id)

    with worker_process(world.config, log_path=tmp_path / "worker.log"):
        assert send_runs(world.celery, world.resources.sessions,
                         [(run.id, run.celery_task_id)]) == [run.id]
        done: Submission = wait_for(
            lambda: (s := world.submission(submission.id)).finished_at is not None and s,
            timeout=120, what="the submission to be processed")

    graded = world.run(run.id)
    assert (graded.status.value, graded.tests_passed, graded.tests_total) == ("failed", 0, 1)
    assert (done.outcome, done.branch) == ("accepted", SUBMISSION_BRANCH)
    mr, = world.merge_requests()
    assert (mr["iid"], mr["source_branch"], mr["target_branch"]) == \
        (done.merge_request_iid, SUBMISSION_BRANCH, TARGET)
    assert world.branches()[SUBMISSION_BRANCH] == sha
    note, = world.notes(mr["iid"])
    assert "Score **0%** (0/1 test passed)" in note["body"]


def test_a_submission_gitlab_failed_throughout_is_processed_again_after_the_reconcilers_sweep(
        tmp_path, make_world):
    world = make_world(worker={"max_attempts": 1})
    sha = world.push(solution("hello"), branch="week1-done")
    mr = world.gitlab.add_merge_request(world.project_id, "week1-done", TARGET,
                                        author=world.alice)
    world.gitlab.inject_faults(dataclasses.replace(GITLAB_DOWN))

    with worker_process(world.config, log_path=tmp_path / "worker.log"):
        assert deliver_merge_request(world, mr["iid"], sha, "week1-done").status_code == 202
        submission = submissions_of(world)[ASSIGNMENT]
        failed: Submission = wait_for(
            lambda: (s := world.submission(submission.id)).finished_at is not None and s,
            timeout=120, what="the submission to end in error")
        assert (failed.outcome, failed.retry_at is not None) == ("error", True)
        assert "not lost: gradehook will process it again automatically" in comment(
            world, mr["iid"])
        world.gitlab.clear_faults()
        wait_passed(world, submission.id)
        reconcile_ledger(world.resources, world.celery)
        done: Submission = wait_for(
            lambda: (s := world.submission(submission.id)).finished_at is not None and s,
            timeout=120, what="the submission to be processed again")

    assert (done.outcome, done.received_at) == ("accepted", submission.received_at)
    assert "**✅ Accepted**" in comment(world, mr["iid"])
