"""A decided submission's comment follows a later grading of its commit (a regrade)."""

from __future__ import annotations

from pipeline.ledger.models import RunStatus
from pipeline.tasks.reporting import report_run
from tests.submissions.world import OTHER_ASSIGNMENT, solution

REGRADED = "Regraded at {time}: the score above is from the latest test run of this commit."


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
