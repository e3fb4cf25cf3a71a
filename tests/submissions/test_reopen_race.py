"""A reopen recorded while the processing that withdraws its submission runs: the ledger decides."""

from __future__ import annotations

import dataclasses
import threading

from sqlalchemy.orm import sessionmaker

from pipeline.submissions.processing import process_submission
from tests.infra.ledger import while_another_process_holds
from tests.submissions.test_flow import deliver_merge_request, passed_merge_request_submission
from tests.submissions.world import TARGET
from tests.support.gitlab_standin import FaultPlan


def _reopen(world, mr, submission):
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "opened")
    return deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                                 action="reopen")


def test_a_reopen_recorded_while_the_refusal_is_being_committed_processes_it_again(world):
    """The judge of another process holds the submission, refusing it for the closed merge
    request, when the reopen is recorded: the reopen waits for it, then finds the refusal."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")

    def judge_in_another_transaction(connection):
        held = dataclasses.replace(world.resources,
                                   sessions=sessionmaker(connection, expire_on_commit=False))
        return process_submission(held, world.celery, submission.id)

    refused, answer = while_another_process_holds(
        world.resources.settings, world.resources.engine, judge_in_another_transaction,
        lambda: _reopen(world, mr, submission), must_wait=True)

    assert refused.outcome == "refused" and answer.status_code == 200
    again = world.submission(submission.id)
    assert (again.outcome, again.hand_ins) == ("pending", 2)
    assert world.process(submission.id).outcome == "accepted"


def test_a_reopen_recorded_while_gitlab_is_inspected_is_seen_by_the_judge(world):
    """GitLab answered 'closed' before the reopen; the judge, finding the commit handed in
    again since, inspects again instead of refusing it for a state that is no more."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
    # The target branch is read after the merge request: hold that answer while alice reopens.
    held = world.gitlab.inject_faults(FaultPlan(
        status=None, every=1, limit=1, method="GET", hold=threading.Event(),
        path_pattern=rf"/repository/branches/{TARGET}$"))
    outcomes = []
    processing = threading.Thread(target=lambda: outcomes.append(world.process(submission.id)))
    processing.start()
    try:
        assert held.arrived.wait(30), "the processing did not inspect the target branch"
        assert _reopen(world, mr, submission).status_code == 200
    finally:
        held.hold.set()
        processing.join(60)

    outcome, = outcomes
    assert (outcome.outcome, outcome.reason) == ("accepted", None)
    note, = world.notes(mr["iid"])
    assert "**✅ Accepted**" in note["body"]
