"""Through a real worker: a submitted commit is graded, handed off, accepted and published."""

from __future__ import annotations

import pytest

from pipeline.dispatch import send_runs
from pipeline.ledger.models import Submission
from pipeline.regrade import GradingTarget, request_grading
from pipeline.submissions.ledger import request_submission
from tests.infra.processes import wait_for, worker_process
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
