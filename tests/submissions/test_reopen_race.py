"""A reopen, or a new merge request of the commit, recorded while the processing that withdraws
its submission runs: the ledger decides."""

from __future__ import annotations

import dataclasses
import threading
from typing import Callable, TypeVar

import pytest
from sqlalchemy.orm import sessionmaker

from pipeline.submissions.processing import process_submission
from tests.infra.ledger import while_another_process_holds
from tests.submissions.test_flow import deliver_merge_request, passed_merge_request_submission
from tests.submissions.world import TARGET
from tests.support.gitlab_standin import FaultPlan

T = TypeVar("T")


def while_the_target_branch_is_read(world, submission_id: str, act: Callable[[], T]
                                    ) -> tuple[object, T]:
    """Process a submission, holding GitLab's answer about its target branch (read after its
    merge request) while `act` runs; return the processing's outcome and what `act` returned."""
    held = world.gitlab.inject_faults(FaultPlan(
        status=None, every=1, limit=1, method="GET", hold=threading.Event(),
        path_pattern=rf"/repository/branches/{TARGET}$"))
    outcomes, acted = [], []
    processing = threading.Thread(target=lambda: outcomes.append(world.process(submission_id)))
    processing.start()
    try:
        assert held.arrived.wait(30), "the processing did not inspect the target branch"
        acted.append(act())
    finally:
        held.hold.set()
        processing.join(60)
    outcome, = outcomes
    result, = acted
    return outcome, result


def _reopen(world, mr, submission) -> int:
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "opened")
    answer = deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                                   action="reopen")
    assert answer.status_code == 200
    return mr["iid"]


def _open_new(world, mr, submission) -> int:
    new = world.gitlab.add_merge_request(world.project_id, "week1-done", TARGET,
                                         author=world.alice)
    answer = deliver_merge_request(world, new["iid"], submission.commit_sha, "week1-done")
    assert answer.status_code == 200
    return new["iid"]


# How alice hands the commit of her closed merge request in again; each returns the merge
# request it is handed in through now.
HAND_IN_AGAIN = pytest.mark.parametrize("hand_in_again", [_reopen, _open_new],
                                        ids=["reopened", "new merge request"])


@HAND_IN_AGAIN
def test_a_hand_in_recorded_while_the_refusal_is_being_committed_processes_it_again(
        world, hand_in_again):
    """The judge of another process holds the submission, refusing it for the closed merge
    request, when the hand-in is recorded: it waits for the judge, then finds the refusal."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")

    def judge_in_another_transaction(connection):
        held = dataclasses.replace(world.resources,
                                   sessions=sessionmaker(connection, expire_on_commit=False))
        return process_submission(held, world.celery, submission.id)

    refused, iid = while_another_process_holds(
        world.resources.settings, world.resources.engine, judge_in_another_transaction,
        lambda: hand_in_again(world, mr, submission), must_wait=True)

    assert refused.outcome == "refused"
    again = world.submission(submission.id)
    assert (again.outcome, again.hand_ins, again.merge_request_iid) == ("pending", 2, iid)
    outcome = world.process(submission.id)
    assert (outcome.outcome, outcome.merge_request_iid) == ("accepted", iid)


@HAND_IN_AGAIN
def test_a_hand_in_recorded_while_gitlab_is_inspected_is_seen_by_the_judge(world,
                                                                           hand_in_again):
    """GitLab answered 'closed' before the hand-in; the judge, finding the commit handed in
    again since, inspects again instead of refusing it for a state that is no more."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
    # The target branch is read after the merge request: alice hands in while it is.
    outcome, iid = while_the_target_branch_is_read(
        world, submission.id, lambda: hand_in_again(world, mr, submission))
    assert (outcome.outcome, outcome.reason, outcome.merge_request_iid) == ("accepted", None, iid)
    note, = world.notes(iid)
    assert "**✅ Accepted**" in note["body"]
