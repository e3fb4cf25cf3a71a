"""Merge requests into a submission branch whose webhook never came: the reconciler hands in."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from gitlab_client import MergeRequest, MergeRequestVersion
from pipeline import ungraded
from pipeline.ledger.db import make_sessionmaker
from pipeline.ledger.models import Delivery, RunStatus, Submission, utcnow
from pipeline.reconcile import reconcile_ledger
from pipeline.submissions import unseen_merge_requests
from pipeline.submissions.merge_request_hand_in import MergeRequestHead, hand_in
from pipeline.submissions.unseen_merge_requests import receipt_time
from tests.submissions.test_flow import (deliver_merge_request, passed_merge_request_submission,
                                         submissions_of)
from tests.infra.ledger import end_run, while_another_process_holds
from tests.submissions.world import ASSIGNMENT, OTHER_ASSIGNMENT, STUDENT, TARGET, solution
from tests.support.gitlab_standin import FaultPlan

SOURCE = "week1-done"
HAND_IN_KEYS = "reconciler:merge-request:%"


@pytest.fixture
def sweep(world, monkeypatch):
    """Run the merge request sweep of the next period; return how many it handed in."""
    period = [0]
    monkeypatch.setattr(unseen_merge_requests, "_current_period", lambda _: period[0])

    def next_period() -> int:
        period[0] += 1
        return unseen_merge_requests.hand_in_unseen_merge_requests(world.resources,
                                                                   world.celery)
    return next_period


@contextlib.contextmanager
def gitlab_time(world, moment: dt.datetime):
    """Have GitLab record what happens inside at `moment`."""
    clock = world.gitlab.state.clock
    world.gitlab.state.clock = lambda: moment
    try:
        yield
    finally:
        world.gitlab.state.clock = clock


def open_merge_request(world, branch: str = SOURCE, greeting: str = "hello",
                       at: dt.datetime | None = None) -> tuple[dict, str]:
    """Have alice push a solution to a branch and open a merge request from it into the
    submission branch (on GitLab's clock at `at`); no webhook is delivered."""
    sha = world.push(solution(greeting), branch=branch)
    with gitlab_time(world, at) if at else contextlib.nullcontext():
        mr = world.gitlab.add_merge_request(world.project_id, branch, TARGET,
                                            author=world.alice)
    return mr, sha


def hand_in_deliveries(world) -> list[Delivery]:
    with world.resources.sessions() as session:
        return list(session.scalars(select(Delivery)
                                    .where(Delivery.delivery_key.like(HAND_IN_KEYS))))


def submission_ids(world) -> dict[str, tuple[str, dt.datetime]]:
    return {assignment: (s.id, s.received_at)
            for assignment, s in submissions_of(world).items()}


def every_submission(world) -> set[tuple[str, str, int, dt.datetime]]:
    """Return (id, commit, merge request, receipt time) of every submission."""
    with world.resources.sessions() as session:
        return {(s.id, s.commit_sha, s.merge_request_iid, s.received_at)
                for s in session.scalars(select(Submission))}


def handed_in_projects(world) -> set[str]:
    return {delivery.project_path for delivery in hand_in_deliveries(world)}


def an_hour_ago() -> dt.datetime:
    return (utcnow() - dt.timedelta(hours=1)).replace(microsecond=0)


def test_a_merge_request_whose_open_webhook_was_lost_is_handed_in_and_judged_in_time(
        make_world, monkeypatch):
    """Before, nothing ever handed it in: no submission, no judgement, no comment. The
    reconciler now does, received when GitLab recorded its head: in time for a deadline that
    passed before the sweep ran, whatever the commit's dates."""
    deadline = an_hour_ago()
    world = make_world(assignment={"deadline": deadline.isoformat()})
    opened_at = deadline - dt.timedelta(minutes=30)
    mr, sha = open_merge_request(world, at=opened_at)
    period = [1]
    monkeypatch.setattr(unseen_merge_requests, "_current_period", lambda _: period[0])
    monkeypatch.setattr(ungraded, "_current_period", lambda _: 1)

    first = reconcile_ledger(world.resources, world.celery)
    assert (first.unseen_merge_requests_handed_in, submissions_of(world)) == (0, {})
    period[0] = 2
    second = reconcile_ledger(world.resources, world.celery)

    assert second.unseen_merge_requests_handed_in == 1
    found = submissions_of(world)
    assert set(found) == {ASSIGNMENT, OTHER_ASSIGNMENT}
    assert {(s.source, s.outcome, s.merge_request_iid, s.branch, s.commit_sha,
             s.received_at) for s in found.values()} == {
        ("merge_request", "pending", mr["iid"], SOURCE, sha, opened_at)}
    run = world.run(found[ASSIGNMENT].run_id)
    assert (run.kind, run.ref, run.base_branch, run.needs_diff, run.merge_request_iid,
            run.received_at, run.status) == (
        "submission", SOURCE, TARGET, True, mr["iid"], opened_at, RunStatus.QUEUED)
    assert run.sent_at is not None
    delivery, = hand_in_deliveries(world)
    assert (delivery.id, delivery.source, delivery.event, delivery.response_status) == (
        run.delivery_id, "reconciler", "Merge Request Hook", 202)
    end_run(world.resources, run.id, RunStatus.PASSED, score=1.0, tests_passed=1, tests_total=1)
    end_run(world.resources, found[OTHER_ASSIGNMENT].run_id, RunStatus.CANCELLED,
            status_reason=f"this push did not change {OTHER_ASSIGNMENT}")

    accepted = world.process(found[ASSIGNMENT].id)
    discarded = world.process(found[OTHER_ASSIGNMENT].id)

    assert (accepted.outcome, accepted.reason, accepted.late) == ("accepted", None, False)
    assert world.submission(found[ASSIGNMENT].id).counted_at == opened_at
    assert discarded.outcome == "discarded"
    note, = world.notes(mr["iid"])
    assert "**✅ Accepted**" in note["body"]


def test_the_webhook_arriving_after_the_sweep_handed_in_adds_nothing(world, sweep):
    mr, sha = open_merge_request(world)
    assert (sweep(), sweep()) == (0, 1)
    handed_in = submission_ids(world)
    sweep_runs = hand_in_deliveries(world)[0].response_body["runs"]

    answer = deliver_merge_request(world, mr["iid"], sha, SOURCE)

    assert answer.status_code == 200
    assert (answer.json["runs"], sorted(answer.json["existing_runs"])) == ([], sorted(sweep_runs))
    assert submission_ids(world) == handed_in
    assert sweep() == 0 and submission_ids(world) == handed_in
    assert len(hand_in_deliveries(world)) == 1


def test_a_merge_request_its_webhook_handed_in_is_left_alone(world, sweep):
    mr, sha = open_merge_request(world)
    deliver_merge_request(world, mr["iid"], sha, SOURCE)
    delivered = every_submission(world)
    lost, lost_sha = open_merge_request(world, branch="week2-done", greeting="hi")

    assert (sweep(), sweep(), sweep()) == (0, 1, 0)

    handed_in = every_submission(world) - delivered
    assert {(commit, iid) for _, commit, iid, _ in handed_in} == {(lost_sha, lost["iid"])}
    assert len(handed_in) == 2 and delivered <= every_submission(world)
    assert [d.delivery_key for d in hand_in_deliveries(world)] == [
        f"reconciler:merge-request:{world.project_id}!{lost['iid']}@{lost_sha}"]


def test_the_webhook_arriving_while_the_sweep_hands_in_leaves_one_submission(world, sweep):
    """The sweep found the head unseen and asks GitLab when it was recorded; the webhook is
    recorded meanwhile. The hand-in then finds the webhook's submissions and hands nothing in.
    Before, it recorded its delivery, counted each submission handed in once more, and the
    sweep counted the head among those it handed in."""
    mr, sha = open_merge_request(world)
    sweep()
    held = world.gitlab.inject_faults(FaultPlan(
        status=None, every=1, limit=1, method="GET", hold=threading.Event(),
        path_pattern=r"/versions$"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        handing_in = pool.submit(sweep)
        try:
            assert held.arrived.wait(30), "the sweep did not ask for the merge request's versions"
            answer = deliver_merge_request(world, mr["iid"], sha, SOURCE)
        finally:
            held.hold.set()
        assert handing_in.result(timeout=60) == 0

    assert hand_in_deliveries(world) == []
    found = submissions_of(world)
    assert set(found) == {ASSIGNMENT, OTHER_ASSIGNMENT}
    assert {s.run_id for s in found.values()} == set(answer.json["runs"])
    assert {s.hand_ins for s in found.values()} == {1}
    assert sweep() == 0


def test_a_webhook_recorded_while_the_hand_in_is_written_waits_for_it_and_adds_nothing(world):
    """The hand-in takes the intake's locks: the webhook's recording waits for it, then reuses
    its runs and finds its submissions."""
    mr, sha = open_merge_request(world)
    head = MergeRequestHead(course=world.resources.settings.courses[0], project_path=STUDENT,
                            project_id=world.project_id, iid=mr["iid"], source_branch=SOURCE,
                            target_branch=TARGET, commit_sha=sha)
    received_at = an_hour_ago()

    def hand_in_in_another_transaction(connection) -> bool:
        writing = dataclasses.replace(world.resources, sessions=make_sessionmaker(connection))
        return hand_in(writing, world.celery, head, [ASSIGNMENT, OTHER_ASSIGNMENT], received_at)

    handed_in, answer = while_another_process_holds(
        world.resources.settings, world.resources.engine, hand_in_in_another_transaction,
        lambda: deliver_merge_request(world, mr["iid"], sha, SOURCE), must_wait=True)

    assert handed_in and answer.status_code == 200 and answer.json["runs"] == []
    delivery, = hand_in_deliveries(world)
    assert sorted(answer.json["existing_runs"]) == sorted(delivery.response_body["runs"])
    assert {s.received_at for s in submissions_of(world).values()} == {received_at}
    assert len(submissions_of(world)) == 2


def test_a_closed_merge_request_is_not_handed_in(world, sweep):
    world.push(solution("hi"), branch="week1-draft")
    world.gitlab.add_merge_request(world.project_id, "week1-draft", TARGET, author=world.alice,
                                   state="closed")
    mr, _ = open_merge_request(world)

    assert (sweep(), sweep()) == (0, 1)

    assert {s.merge_request_iid for s in submissions_of(world).values()} == {mr["iid"]}


def test_a_merge_request_from_a_fork_is_not_handed_in(world, sweep):
    fork = world.gitlab.add_project("others/alice-copy", branches={"main": "f" * 40},
                                    members={world.alice.id: 30})
    world.gitlab.add_merge_request(world.project_id, "main", TARGET, author=world.alice,
                                   source_project_id=fork["id"])
    mr, _ = open_merge_request(world)

    assert (sweep(), sweep()) == (0, 1)

    assert {s.merge_request_iid for s in submissions_of(world).values()} == {mr["iid"]}


def test_a_merge_request_merged_before_any_webhook_is_handed_in(world, sweep):
    opened_at = an_hour_ago()
    mr, sha = open_merge_request(world, at=opened_at)
    world.graded_run(world.push(solution("earlier"), branch="week1-earlier"),
                     received_at=opened_at)  # gradehook watched the course then
    world.gitlab.set_branch(world.project_id, TARGET, sha)  # GitLab's fast-forward merge
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "merged")

    assert (sweep(), sweep()) == (0, 1)

    submission = submissions_of(world)[ASSIGNMENT]
    assert (submission.merge_request_iid, submission.received_at) == (mr["iid"], opened_at)
    end_run(world.resources, submission.run_id, RunStatus.PASSED, score=1.0, tests_passed=1,
            tests_total=1)
    outcome = world.process(submission.id)
    assert (outcome.outcome, outcome.reason) == ("accepted", None)


def test_a_merge_request_merged_before_gradehook_graded_anything_of_the_course_is_left(
        world, sweep):
    merged, sha = open_merge_request(world, branch="week1-old", at=an_hour_ago())
    world.gitlab.set_branch(world.project_id, TARGET, sha)
    world.gitlab.set_merge_request_state(world.project_id, merged["iid"], "merged")
    world.graded_run(world.push(solution("later")), received_at=utcnow())
    still_open, _ = open_merge_request(world, greeting="today")

    assert (sweep(), sweep()) == (0, 1)

    assert {s.merge_request_iid for s in submissions_of(world).values()} == {still_open["iid"]}


def test_a_hand_in_of_the_sweep_does_not_make_another_merge_request_merged_before_watched(
        world, sweep):
    """Alice's merge request !1 was merged before gradehook graded anything of the course; !2,
    opened before that too, was merged later, and the sweep hands it in first (GitLab lists
    the newest first), received when GitLab recorded its head. Before, that hand-in's run,
    received then, moved when gradehook seemed to have watched the course back before !1's
    merge, and the same sweep handed !1 in too."""
    now = utcnow().replace(microsecond=0)
    merged_early, _ = open_merge_request(world, branch="week1-old", greeting="old",
                                         at=now - dt.timedelta(hours=4))
    merged_later, sha = open_merge_request(world, at=now - dt.timedelta(hours=3))
    with gitlab_time(world, now - dt.timedelta(hours=2)):
        world.gitlab.set_merge_request_state(world.project_id, merged_early["iid"], "merged")
    world.graded_run(world.push(solution("first")), received_at=now - dt.timedelta(hours=1))
    world.gitlab.set_branch(world.project_id, TARGET, sha)
    world.gitlab.set_merge_request_state(world.project_id, merged_later["iid"], "merged")

    assert (sweep(), sweep()) == (0, 1)

    assert {s.merge_request_iid for s in submissions_of(world).values()} == {
        merged_later["iid"]}


def test_a_reopen_whose_webhook_was_lost_processes_the_withdrawn_submission_again(world, sweep):
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
    assert world.process(submission.id).outcome == "refused"
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "opened")

    assert (sweep(), sweep()) == (0, 1)

    again = world.submission(submission.id)
    assert (again.outcome, again.received_at) == ("pending", submission.received_at)
    assert world.process(submission.id).outcome == "accepted"


def test_a_second_lost_reopen_of_the_same_head_is_handed_in_again(world, sweep):
    """Alice closes and reopens her merge request twice, both reopens' webhooks lost. Before,
    the sweep handed the head in the first time only: the second reopen left the submission
    refused as withdrawn for good."""
    mr, submission = passed_merge_request_submission(world)
    for _ in range(2):
        world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
        assert world.process(submission.id).outcome == "refused"
        world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "opened")

        assert (sweep(), sweep()) == (0, 1)

        assert world.submission(submission.id).outcome == "pending"
    assert world.process(submission.id).outcome == "accepted"
    assert len(hand_in_deliveries(world)) == 2


def test_a_new_merge_request_whose_webhook_was_lost_hands_the_withdrawn_commit_in(
        world, sweep):
    first, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, first["iid"], "closed")
    assert world.process(submission.id).outcome == "refused"
    second = world.gitlab.add_merge_request(world.project_id, first["source_branch"], TARGET,
                                            author=world.alice)

    assert (sweep(), sweep()) == (0, 1)

    again = world.submission(submission.id)
    assert (again.outcome, again.merge_request_iid) == ("pending", second["iid"])
    assert world.process(submission.id).outcome == "accepted"


@pytest.mark.parametrize("failing, status", [(r"/merge_requests$", 503), (r"/versions$", 503),
                                             (r"/merge_requests$", 401)],
                         ids=["listing unreachable", "versions unreachable", "token refused"])
def test_gitlab_failing_during_the_sweep_records_nothing_and_the_next_period_hands_in(
        world, sweep, caplog, failing, status):
    opened_at = an_hour_ago()
    open_merge_request(world, at=opened_at)
    assert sweep() == 0
    world.gitlab.inject_faults(FaultPlan(status=status, every=1, limit=1, method="GET",
                                         path_pattern=failing))

    with caplog.at_level(logging.WARNING, logger=unseen_merge_requests.__name__):
        assert sweep() == 0

    assert "left to the next period" in caplog.text
    assert submissions_of(world) == {} and hand_in_deliveries(world) == []
    assert sweep() == 1
    assert {s.received_at for s in submissions_of(world).values()} == {opened_at}


def test_a_project_gitlab_does_not_show_holds_up_no_other_and_is_handed_in_later(
        world, sweep, caplog):
    bob = world.gitlab.add_project("students/bob", branches={
        "main": "1" * 40, TARGET: "1" * 40, SOURCE: "2" * 40})
    world.gitlab.add_merge_request(bob["id"], SOURCE, TARGET)
    open_merge_request(world, at=an_hour_ago())
    assert sweep() == 0
    world.gitlab.inject_faults(FaultPlan(
        status=403, every=1, limit=1, method="GET",
        path_pattern=rf"/projects/{world.project_id}/merge_requests$"))

    with caplog.at_level(logging.WARNING, logger=unseen_merge_requests.__name__):
        assert sweep() == 1

    assert f"merge requests of {STUDENT} not listed" in caplog.text
    assert handed_in_projects(world) == {"students/bob"}
    assert sweep() == 1  # alice's, met before GitLab refused to show it
    assert handed_in_projects(world) == {"students/bob", STUDENT}


def test_later_sweeps_list_only_merge_requests_updated_since_and_meet_unseen_ones_again(
        world, sweep):
    opened_at = an_hour_ago()
    open_merge_request(world, at=opened_at)

    assert (sweep(), sweep(), sweep()) == (0, 1, 0)

    listings = world.gitlab.requests_to("GET", r"/merge_requests$")
    since = [listing.query.get("updated_after", [None])[0] for listing in listings]
    assert since[:2] == [None, opened_at.isoformat()]  # the second meets the first's again
    assert dt.datetime.fromisoformat(since[2]) > opened_at


def test_when_gitlab_recorded_a_head():
    head, other = "a" * 40, "b" * 40
    opened, pushed, forced_back = (dt.datetime(2026, 3, 1, hour, tzinfo=dt.timezone.utc)
                                   for hour in (9, 10, 11))
    merged = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    versions = [MergeRequestVersion(3, head, forced_back), MergeRequestVersion(2, other, pushed),
                MergeRequestVersion(1, head, opened)]

    def merge_request(state: str, **fields) -> MergeRequest:
        return MergeRequest(iid=1, project_id=2, title="", state=state, source_branch="s",
                            target_branch=TARGET, source_project_id=2, target_project_id=2,
                            sha=head, author_username="alice", web_url=None, updated_at=merged,
                            **fields)

    assert receipt_time(merge_request("opened"), versions) == opened
    assert receipt_time(merge_request("merged", merged_at=merged), versions[1:2]) == merged
    assert receipt_time(merge_request("opened"), versions[1:2]) is None
    assert receipt_time(merge_request("locked"), []) is None
