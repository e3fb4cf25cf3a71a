"""Publishing holds no ledger row or writer while GitLab is called; what comes meanwhile waits
only when it would change what is being published."""

from __future__ import annotations

import threading

from gitlab_client import TransientGitLabError
from pipeline.ledger.db import make_engine, transaction
from pipeline.ledger.locks import lock_name
from pipeline.ledger.models import RunStatus, Submission, utcnow
from pipeline.submissions.ledger import SUBMISSION_LOCK
from pipeline.submissions.processing import end_with_error
from pipeline.tasks.retry import GAVE_UP_REASON, TIME_LIMIT_REASON
from tests.infra.ledger import embedded_settings, end_run, waiters_for_name, waiters_on
from tests.infra.processes import wait_for
from tests.submissions.test_flow import (deliver_merge_request, passed_merge_request_submission,
                                         submissions_of)
from tests.submissions.world import (ASSIGNMENT, OTHER_ASSIGNMENT, STUDENT, TARGET, build_world,
                                     solution)
from tests.support.gitlab_standin import HOLD_LIMIT_SECONDS, FaultPlan

NOTES = r"/merge_requests/\d+/notes$"
ACCEPTED = "**✅ Accepted**"


def _hold_the_first_comment(world) -> FaultPlan:
    """Hold the first comment posted on a merge request until the plan's `hold` is set."""
    return world.gitlab.inject_faults(FaultPlan(status=None, every=1, limit=1, method="POST",
                                                path_pattern=NOTES, hold=threading.Event()))


def _in_thread(work) -> tuple[threading.Thread, list]:
    """Start `work` in a thread; the list gets what it returned."""
    returned: list = []
    thread = threading.Thread(target=lambda: returned.append(work()))
    thread.start()
    return thread, returned


def test_a_time_limit_meeting_a_publish_under_way_leaves_its_acceptance(world):
    """A duplicate message's processing stopped by its time limit while another worker posts
    the acceptance: the error waits for that publish and finds it done, instead of turning the
    published acceptance into 'accepted, but GitLab could not be updated'."""
    submission = world.submit(world.push(solution("hello")))
    held = _hold_the_first_comment(world)
    publishing, published = _in_thread(lambda: world.process(submission.id))
    try:
        assert held.arrived.wait(30), "the acceptance was never posted"
        stopping, stopped = _in_thread(lambda: end_with_error(
            world.resources, submission.id, TIME_LIMIT_REASON.format(limit=15),
            submission.celery_task_id))
        wait_for(lambda: waiters_for_name(world.resources.engine, SUBMISSION_LOCK, STUDENT,
                                          ASSIGNMENT) or not stopping.is_alive(),
                 what="the time limit's end to wait for the publish or to end")
    finally:
        held.hold.set()
        publishing.join(60)
    stopping.join(60)

    assert [outcome.outcome for outcome in (*published, *stopped)] == ["accepted", "accepted"]
    recorded = world.submission(submission.id)
    assert (recorded.outcome, recorded.reason, recorded.retry_at) == ("accepted", None, None)
    note, = world.notes(recorded.merge_request_iid)
    assert ACCEPTED in note["body"]


def test_the_end_of_a_processing_a_reopen_replaced_leaves_the_reopen_to_its_own(world):
    """The processing of a closed merge request's submission fails to post its refusal at its
    last attempt, and the merge request was reopened while GitLab held the post. Before, that
    processing's end turned the reopened submission into its error ('gave up after 3
    attempts'), which the reopen's processing then published instead of judging the commit."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "closed")
    first_task = world.submission(submission.id).celery_task_id
    held = world.gitlab.inject_faults(FaultPlan(status=503, every=1, limit=1, method="POST",
                                                path_pattern=NOTES, hold=threading.Event()))
    refused: list = []

    def last_attempt() -> None:
        try:
            world.process(submission.id)
        except TransientGitLabError as exc:
            refused.append(exc)
    attempt = threading.Thread(target=last_attempt)
    attempt.start()
    try:
        assert held.arrived.wait(30), "the refusal was never posted"
        world.gitlab.set_merge_request_state(world.project_id, mr["iid"], "opened")
        assert deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                                     action="reopen").status_code == 200
    finally:
        held.hold.set()
        attempt.join(60)
    assert refused, "GitLab took the refusal"

    ended = end_with_error(world.resources, submission.id,
                           GAVE_UP_REASON.format(attempts=3, error="HTTP 503"), first_task)

    assert ended.outcome == "pending"
    assert world.submission(submission.id).hand_ins == 2
    outcome = world.process(submission.id)
    assert (outcome.outcome, outcome.reason) == ("accepted", None)
    note, = world.notes(mr["iid"])
    assert ACCEPTED in note["body"]


def test_on_the_embedded_ledger_a_delivery_is_recorded_while_gitlab_holds_a_comment(
        tmp_path, monkeypatch, gitlab_standin, git_server):
    """Before, the API hand-in's publish had written its branch and merge request to the
    ledger before posting the comment: SQLite's one writer stayed taken while GitLab held the
    post, and every webhook of the host waited for it (answered 503 after the busy timeout)."""
    def embedded(extra: dict):
        # GitLab answers within the client's timeout, however long it takes.
        patient = {**extra, "gitlab": {**extra["gitlab"],
                                       "request_timeout_seconds": HOLD_LIMIT_SECONDS}}
        return tmp_path / "config.toml", embedded_settings(tmp_path, monkeypatch, patient)
    world = build_world(embedded, gitlab_standin, git_server)
    submission = world.submit(world.push(solution("hello")))
    sha = world.push(solution("hi"), branch="week1-retry")
    mr = world.gitlab.add_merge_request(world.project_id, "week1-retry", TARGET,
                                        author=world.alice)
    held = _hold_the_first_comment(world)
    publishing, published = _in_thread(lambda: world.process(submission.id))
    try:
        assert held.arrived.wait(30), "the acceptance was never posted"
        answer = deliver_merge_request(world, mr["iid"], sha, "week1-retry")
        assert answer.status_code == 202 and answer.json["runs"]
        assert publishing.is_alive() and not world.gitlab.requests_to("POST", NOTES)
    finally:
        held.hold.set()
        publishing.join(60)

    outcome, = published
    assert outcome.outcome == "accepted"
    assert ACCEPTED in world.notes(outcome.merge_request_iid)[0]["body"]


def test_a_discard_rewrites_its_comment_in_the_students_publishing_turn(world):
    """A submission that ended in an error of ours is discarded (its merge request does not
    change the assignment) while another processing of alice's assignment holds the publishing
    turn. Before, the discard wrote its comment at once, alongside that publisher's."""
    mr, _ = passed_merge_request_submission(world)
    other = submissions_of(world)[OTHER_ASSIGNMENT]
    end_run(world.resources, other.run_id, RunStatus.CANCELLED,
            status_reason=f"this push did not change {OTHER_ASSIGNMENT}")
    with transaction(world.resources.sessions) as session:
        session.get(Submission, other.id).failing_since = utcnow()
    other_process = make_engine(world.resources.settings.database_url)
    try:
        with other_process.begin() as turn:
            lock_name(turn, SUBMISSION_LOCK, STUDENT, OTHER_ASSIGNMENT)
            discarding, discarded = _in_thread(lambda: world.process(other.id))
            wait_for(lambda: waiters_on(world.resources.engine, turn) or not discarding.is_alive(),
                     what="the discard to wait for the turn or to end")
            assert discarding.is_alive() and world.notes(mr["iid"]) == []
        discarding.join(60)
    finally:
        other_process.dispose()

    assert discarded[0].outcome == "discarded" and world.submission(other.id) is None
    note, = world.notes(mr["iid"])
    assert "the merge request does not change week2/loops" in note["body"].replace("\\", "")
