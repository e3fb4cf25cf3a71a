"""A new merge request of a commit whose submission is decided already is told so in its comment."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json

from pipeline.celery_app import SUBMISSION_PROCESSING
from pipeline.ledger.models import RunStatus, utcnow
from pipeline.reconcile import reconcile_ledger
from pipeline.submissions.notices import lost_notices
from pipeline.submissions.processing import tell_decided_elsewhere
from tests.infra.ports import free_port
from tests.infra.services import redis_client
from tests.infra.ledger import end_run
from tests.submissions.test_flow import (deliver_merge_request,
                                         merge_request_submission,
                                         passed_merge_request_submission)
from tests.submissions.test_new_merge_request import (BRANCH, open_new_merge_request, plain,
                                                      submissions_of_commit)
from tests.submissions.world import TARGET, solution
from tests.support.gitlab_standin import FaultPlan

SUBMISSION_QUEUE = "default"


def queued_notices(redis_db: int) -> list[tuple[str, int]]:
    """Take the submission_processing messages that write a merge request's comment alone off
    the broker's queue; return their (submission id, merge request iid)."""
    client = redis_client(redis_db)
    notices = []
    while (envelope := client.rpop(SUBMISSION_QUEUE)) is not None:
        message = json.loads(envelope)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        if message["headers"]["task"] == SUBMISSION_PROCESSING and len(args) == 2:
            notices.append(tuple(args))
    return notices


def tell(world, redis_db: int) -> list[tuple[str, int]]:
    """Do what the queued notices ask, as a worker would; return them."""
    notices = queued_notices(redis_db)
    for submission_id, iid in notices:
        tell_decided_elsewhere(world.resources, submission_id, iid)
    return notices


def test_a_new_merge_request_of_an_accepted_commit_says_where_it_was_accepted(world, redis_db):
    """Alice's commit was accepted through !1; she closes it and opens a new merge request at
    the same commit to hand it in again. Before, the new one got no comment at all."""
    old, submission = passed_merge_request_submission(world)
    assert world.process(submission.id).outcome == "accepted"
    accepted = world.submission(submission.id)
    old_note, = world.notes(old["iid"])
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")

    new, answer = open_new_merge_request(world, submission.commit_sha)

    assert answer.status_code == 200
    assert tell(world, redis_db) == [(submission.id, new["iid"])]
    note, = world.notes(new["iid"])
    sha = submission.commit_sha[:12]
    assert (f"Commit {sha} is already handed in through the merge request !{old['iid']}, where "
            "it was accepted.") in plain(note)
    assert "To hand in something else, push a new commit to this merge request." in plain(note)
    kept = world.submission(submission.id)
    assert (kept.outcome, kept.merge_request_iid, kept.hand_ins, kept.submissions_used,
            kept.finished_at) == ("accepted", old["iid"], accepted.hand_ins,
                                  accepted.submissions_used, accepted.finished_at)
    assert [s.id for s in submissions_of_commit(world, submission.commit_sha)] == [submission.id]
    assert world.notes(old["iid"]) == [old_note]


def test_a_new_merge_request_of_a_commit_refused_as_late_gives_the_reason(make_world, redis_db):
    """The commit came after the deadline and was refused through !1; the new merge request's
    comment says so, with the refusal's reason. Before, it got no comment."""
    world = make_world(assignment={"deadline": "2020-01-01T00:00:00+00:00"})
    old, submission = merge_request_submission(world, RunStatus.PASSED, score=1.0,
                                               tests_passed=1, tests_total=1)
    refused = world.process(submission.id)
    assert refused.outcome == "refused" and "after the deadline" in refused.reason
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")

    new, _ = open_new_merge_request(world, submission.commit_sha)

    assert tell(world, redis_db) == [(submission.id, new["iid"])]
    note, = world.notes(new["iid"])
    assert f"through the merge request !{old['iid']}, where it was refused." in plain(note)
    assert f"- {refused.reason}" in plain(note)
    assert world.submission(submission.id).outcome == "refused"


def test_a_repeated_webhook_of_the_new_merge_request_writes_its_comment_once(world, redis_db):
    """GitLab delivers the new merge request's hook twice: one notice, one comment."""
    old, submission = passed_merge_request_submission(world)
    world.process(submission.id)
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")
    new, _ = open_new_merge_request(world, submission.commit_sha)
    repeated = deliver_merge_request(world, new["iid"], submission.commit_sha, "week1-done")

    assert repeated.status_code == 200
    notices = tell(world, redis_db)
    assert notices == [(submission.id, new["iid"])]
    tell_decided_elsewhere(world.resources, *notices[0])  # a redelivered message changes nothing
    note, = world.notes(new["iid"])
    assert "is already handed in through the merge request" in plain(note)


def test_a_notice_the_broker_refused_is_sent_by_the_reconciler(world, redis_db):
    """The broker is down when the new merge request's hook arrives. Before, its notice was
    lost with the message (no ledger row to send it from again): the new merge request never
    got a comment."""
    old, submission = passed_merge_request_submission(world)
    assert world.process(submission.id).outcome == "accepted"
    world.gitlab.set_merge_request_state(world.project_id, old["iid"], "closed")
    new = world.gitlab.add_merge_request(world.project_id, BRANCH, TARGET, author=world.alice)
    settings = world.resources.settings
    broker_down = dataclasses.replace(settings, redis=dataclasses.replace(
        settings.redis, port=free_port()))  # nothing listens there

    answer = deliver_merge_request(world, new["iid"], submission.commit_sha, BRANCH,
                                   settings=broker_down)

    assert answer.status_code == 200 and queued_notices(redis_db) == []
    reconcile_ledger(world.resources, world.celery)
    assert tell(world, redis_db) == [(submission.id, new["iid"])]
    note, = world.notes(new["iid"])
    assert f"through the merge request !{old['iid']}, where it was accepted." in plain(note)
    reconcile_ledger(world.resources, world.celery)
    assert queued_notices(redis_db) == []  # told: not sent again


def test_a_merge_request_of_a_commit_the_api_is_handing_in_is_told_once_it_is_decided(
        world, redis_db):
    """Alice hands a commit in through the API, then opens a merge request at it before the
    API's submission is processed. Before, the merge request got no comment: the submission
    was pending at that moment, so nothing was to be told, and nothing told it later."""
    sha = world.push(solution("hello"), branch=BRANCH)
    submission = world.submit(sha)
    mr = world.gitlab.add_merge_request(world.project_id, BRANCH, TARGET, author=world.alice)
    deliver_merge_request(world, mr["iid"], sha, BRANCH)
    assert tell(world, redis_db) == []  # nothing decided yet

    outcome = world.process(submission.id)

    assert outcome.outcome == "accepted" and outcome.merge_request_iid != mr["iid"]
    note, = world.notes(mr["iid"])
    assert (f"Commit {sha[:12]} is already handed in through the merge request "
            f"!{outcome.merge_request_iid}, where it was accepted.") in plain(note)
    kept = world.submission(submission.id)
    assert (kept.source, kept.merge_request_iid) == ("api", outcome.merge_request_iid)
    reconcile_ledger(world.resources, world.celery)
    assert queued_notices(redis_db) == []  # told with the decision: not sent again


def test_a_notified_merge_request_gitlab_no_longer_shows_fails_no_submission(world, redis_db):
    """The merge request waiting to be told is gone from GitLab (404) when the API's submission
    is published: the acceptance is published all the same, and the notice is not sent again."""
    sha = world.push(solution("hello"), branch=BRANCH)
    submission = world.submit(sha)
    mr = world.gitlab.add_merge_request(world.project_id, BRANCH, TARGET, author=world.alice)
    deliver_merge_request(world, mr["iid"], sha, BRANCH)
    world.gitlab.inject_faults(FaultPlan(status=404, every=1, method="GET",
                                         path_pattern=rf"/merge_requests/{mr['iid']}$"))

    outcome = world.process(submission.id)

    assert outcome.outcome == "accepted"
    assert world.submission(submission.id).finished_at is not None
    assert world.notes(mr["iid"]) == []
    reconcile_ledger(world.resources, world.celery)
    assert queued_notices(redis_db) == []


def test_a_merge_request_deleted_before_it_is_told_is_not_told_again_and_again(world, redis_db):
    """Alice opened a second merge request at her accepted commit and deleted it before its
    notice was written. Before, the notice failed on GitLab's 404 and stayed untold: the
    reconciler sent it again every 15 minutes for a day, each time failing the same way."""
    _, submission = passed_merge_request_submission(world)
    assert world.process(submission.id).outcome == "accepted"
    world.gitlab.set_branch(world.project_id, "week1-copy", submission.commit_sha)
    second = world.gitlab.add_merge_request(world.project_id, "week1-copy", TARGET,
                                            author=world.alice)
    deliver_merge_request(world, second["iid"], submission.commit_sha, "week1-copy")
    world.gitlab.inject_faults(FaultPlan(status=404, every=1, method="GET",
                                         path_pattern=rf"/merge_requests/{second['iid']}$"))

    assert tell(world, redis_db) == [(submission.id, second["iid"])]

    assert world.notes(second["iid"]) == []
    with world.resources.sessions() as session:
        assert lost_notices(session, utcnow() + dt.timedelta(days=1),
                            utcnow() - dt.timedelta(days=1), 10) == []


def test_a_merge_request_back_at_a_commit_it_was_told_of_is_told_again_when_the_broker_is_down(
        world, redis_db):
    """Alice's second merge request was told that its commit is handed in through the first;
    she pushes a new commit to it (its comment then shows that one's submission), then moves
    its branch back to the first commit while the broker is down. Before, the notice, told
    already, was not sent again by the reconciler: the comment kept showing the newer
    commit's submission."""
    first, submission = passed_merge_request_submission(world)
    assert world.process(submission.id).outcome == "accepted"
    sha = submission.commit_sha
    world.gitlab.set_branch(world.project_id, "week1-copy", sha)
    second = world.gitlab.add_merge_request(world.project_id, "week1-copy", TARGET,
                                            author=world.alice)
    deliver_merge_request(world, second["iid"], sha, "week1-copy")
    assert tell(world, redis_db) == [(submission.id, second["iid"])]
    newer = world.push(solution("hi"), branch="week1-copy")
    deliver_merge_request(world, second["iid"], newer, "week1-copy", action="update",
                          oldrev=sha)
    newer_submission, = submissions_of_commit(world, newer)
    end_run(world.resources, newer_submission.run_id, RunStatus.PASSED, score=1.0, tests_passed=1,
            tests_total=1)
    assert world.process(newer_submission.id).outcome == "accepted"
    queued_notices(redis_db)
    world.gitlab.set_branch(world.project_id, "week1-copy", sha)
    settings = world.resources.settings
    broker_down = dataclasses.replace(settings, redis=dataclasses.replace(
        settings.redis, port=free_port()))

    deliver_merge_request(world, second["iid"], sha, "week1-copy", action="update",
                          oldrev=newer, settings=broker_down)
    reconcile_ledger(world.resources, world.celery)

    assert tell(world, redis_db) == [(submission.id, second["iid"])]
    note, = world.notes(second["iid"])
    assert (f"Commit {sha[:12]} is already handed in through the merge request "
            f"!{first['iid']}, where it was accepted.") in plain(note)
