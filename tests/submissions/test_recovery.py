"""A submission ending in an error of ours is told so on its merge request and processed again."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.celery_app import SUBMISSION_PROCESSING
from pipeline.ledger.db import transaction
from pipeline.grading.grader import course_error_report
from pipeline.ledger.models import Delivery, RunStatus, Submission, utcnow
from pipeline.reports.submission import ERROR_NOTE
from pipeline.submissions.ledger import SUBMISSION_LOCK
from pipeline.submissions.processing import TARGET_MISSING, end_with_error
from pipeline.submissions.recovery import RETRY_WAIT_MIN, retry_failed_submissions
from pipeline.submissions.verdict import format_time
from tests.infra.ledger import end_run, waiters_for_name, while_another_process_holds
from tests.infra.processes import wait_for
from tests.submissions.test_flow import deliver_merge_request, \
    merge_request_submission, passed_merge_request_submission, submissions_of
from tests.submissions.world import ASSIGNMENT, OTHER_ASSIGNMENT, STUDENT, TARGET, solution
from tests.support.gitlab_standin import FaultPlan

GITLAB_DOWN = FaultPlan(status=503, every=1, method="GET", path_pattern=r"/merge_requests/\d+$")
NOTES_DOWN = FaultPlan(status=503, every=1, path_pattern=r"/notes")
BRANCHES_DOWN = FaultPlan(status=503, every=1, method="GET", path_pattern=r"/repository/branches/")
# One sweep per reconciler interval: with a year's interval, every sweep of a test shares one.
ONE_PERIOD = {"reconcile_interval_seconds": 365 * 24 * 3600}


def processing_task(world, submission_id: str) -> dict:
    """Run submission_processing as a worker does, under the submission's task id, every
    attempt at once (Celery's apply)."""
    world.celery.loader.import_default_modules()
    return world.celery.tasks[SUBMISSION_PROCESSING].apply(
        args=[submission_id], task_id=world.submission(submission_id).celery_task_id).get()


def wait_passed(world, submission_id: str) -> None:
    """Move the submission's next try to now, as if its wait had passed."""
    with transaction(world.resources.sessions) as session:
        session.execute(update(Submission).where(Submission.id == submission_id)
                        .values(retry_at=utcnow() - dt.timedelta(seconds=1)))


def sweep_in_another_transaction(world):
    """Return the reconciler's retry sweep as another process runs it, in its transaction."""
    def sweep(connection):
        held = dataclasses.replace(world.resources,
                                   sessions=sessionmaker(connection, expire_on_commit=False))
        return retry_failed_submissions(held, world.celery)
    return sweep


def next_interval(world) -> None:
    """Let the next retry sweep run, as if the reconciler's next interval had come."""
    with transaction(world.resources.sessions) as session:
        session.execute(delete(Delivery).where(
            Delivery.delivery_key.like("reconciler:submission-retries:%")))


def received(submission) -> str:
    return format_time(submission.received_at)


def comment(world, iid: int, assignment: str = ASSIGNMENT) -> str:
    """Return the comment of an assignment's submissions on a merge request as it reads
    (without Markdown's escapes)."""
    note, = (n for n in world.notes(iid) if n["body"].startswith(
        f"<!-- gradehook:submission:{STUDENT}_{iid}:{assignment} -->"))
    return note["body"].replace("\\", "")


def test_gitlab_failing_every_attempt_is_told_on_the_merge_request_and_processed_again(world):
    """Before, the submission ended as error with no comment, and nothing processed it again:
    the student had to submit the same commit again, perhaps after the deadline."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.inject_faults(dataclasses.replace(GITLAB_DOWN))

    ended = processing_task(world, submission.id)

    failed = world.submission(submission.id)
    assert (ended["outcome"], failed.finished_at is not None) == ("error", True)
    assert failed.retry_at - failed.failing_since == RETRY_WAIT_MIN
    body = comment(world, mr["iid"])
    assert "**⏳ Not processed yet**" in body
    assert (f"gradehook received this commit at {received(submission)} but could not process "
            "it yet") in body
    assert "not lost: gradehook will process it again automatically" in body
    world.gitlab.clear_faults()
    wait_passed(world, submission.id)

    assert retry_failed_submissions(world.resources, world.celery) == 1

    again = world.submission(submission.id)
    assert (again.outcome, again.finished_at, again.retry_at) == ("pending", None, None)
    assert again.sent_at is not None and again.celery_task_id != failed.celery_task_id
    assert processing_task(world, submission.id)["outcome"] == "accepted"
    assert world.submission(submission.id).counted_at == submission.received_at
    body = comment(world, mr["iid"])
    assert "**✅ Accepted**" in body and "Not processed" not in body


def test_gitlab_failing_for_the_comment_too_loses_nothing(world):
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.inject_faults(dataclasses.replace(GITLAB_DOWN))
    world.gitlab.inject_faults(dataclasses.replace(NOTES_DOWN))

    assert processing_task(world, submission.id)["outcome"] == "error"

    unpublished = world.submission(submission.id)
    assert (unpublished.finished_at, unpublished.retry_at is not None) == (None, True)
    assert world.notes(mr["iid"]) == []
    world.gitlab.clear_faults()
    # Unfinished, it is a lost submission to the reconciler, which sends it to be published.
    assert world.process(submission.id).outcome == "error"
    body = comment(world, mr["iid"])
    assert "not lost: gradehook will process it again automatically" in body
    wait_passed(world, submission.id)
    assert retry_failed_submissions(world.resources, world.celery) == 1
    assert world.process(submission.id).outcome == "accepted"


def test_after_the_window_the_error_stays_and_the_comment_says_to_submit_again(world):
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.inject_faults(dataclasses.replace(GITLAB_DOWN))
    processing_task(world, submission.id)
    with transaction(world.resources.sessions) as session:  # failing for 23 hours and more
        session.execute(update(Submission).where(Submission.id == submission.id).values(
            failing_since=utcnow() - dt.timedelta(hours=23)))
    wait_passed(world, submission.id)
    assert retry_failed_submissions(world.resources, world.celery) == 1

    assert processing_task(world, submission.id)["outcome"] == "error"

    final = world.submission(submission.id)
    assert (final.retry_at, final.finished_at is not None) == (None, True)
    body = comment(world, mr["iid"])
    assert "**⚠️ Not processed**" in body and "process it again" not in body
    assert ERROR_NOTE in body


def end_on_the_last_try(world, submission) -> tuple[FaultPlan, threading.Thread]:
    """Start ending a submission failing for a day (its last try) in an error, whose comment
    GitLab holds and then refuses; return the comment's plan and the ending's thread."""
    with transaction(world.resources.sessions) as session:
        session.execute(update(Submission).where(Submission.id == submission.id).values(
            failing_since=utcnow() - dt.timedelta(hours=24)))
    held = world.gitlab.inject_faults(dataclasses.replace(
        NOTES_DOWN, method="POST", limit=1, hold=threading.Event()))
    task_id = world.submission(submission.id).celery_task_id
    ending = threading.Thread(target=lambda: end_with_error(
        world.resources, submission.id, "gave up after 2 attempts: GitLab unavailable", task_id))
    ending.start()
    return held, ending


def test_a_reopen_while_the_last_error_fails_to_be_published_is_processed(world):
    """Past its window, an error GitLab does not take is finished unpublished. A reopen
    recorded while that publish failed made it pending again; before, it was finished all the
    same, and no processing ever took it up: stuck pending."""
    mr, submission = passed_merge_request_submission(world)
    held, ending = end_on_the_last_try(world, submission)
    try:
        assert held.arrived.wait(30), "the error was never posted"
        assert deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                                     action="reopen").status_code == 200
    finally:
        held.hold.set()
        ending.join(60)

    again = world.submission(submission.id)
    assert (again.outcome, again.finished_at, again.hand_ins) == ("pending", None, 2)
    assert world.process(submission.id).outcome == "accepted"
    assert "**✅ Accepted**" in comment(world, mr["iid"])


def test_a_decision_made_after_a_reopen_is_published_though_the_last_error_was_not(world):
    """Past its window, an error GitLab does not take is finished unpublished. A reopen came
    while that publish failed, and the reopen's processing decided the submission anew (an
    error of the course: its submission branch is gone) and waited for its turn to publish.
    Before, the unpublished error was finished with the new decision in its place: the new
    processing then found it finished and published nothing, or published it and reported the
    submission pending."""
    mr, submission = passed_merge_request_submission(world)
    last_error, ending = end_on_the_last_try(world, submission)
    # The new decision's comment waits until the last error's end has run.
    new_decision = world.gitlab.inject_faults(FaultPlan(
        status=None, every=1, limit=1, method="POST", path_pattern=r"/notes",
        hold=threading.Event()))
    outcomes: list = []
    processing = threading.Thread(target=lambda: outcomes.append(world.process(submission.id)))
    try:
        assert last_error.arrived.wait(30), "the error was never posted"
        assert deliver_merge_request(world, mr["iid"], submission.commit_sha, "week1-done",
                                     action="reopen").status_code == 200
        del world.gitlab.state.branches[world.project_id][TARGET]
        processing.start()
        wait_for(lambda: waiters_for_name(world.resources.engine, SUBMISSION_LOCK, STUDENT,
                                          ASSIGNMENT) or not processing.is_alive(),
                 what="the new decision to wait for its turn to publish")
    finally:
        last_error.hold.set()
        ending.join(60)
        new_decision.hold.set()
        if processing.ident is not None:  # started
            processing.join(60)

    missing = TARGET_MISSING.format(branch=TARGET)
    outcome, = outcomes
    assert (outcome.outcome, outcome.reason) == ("error", missing)
    decided = world.submission(submission.id)
    assert (decided.outcome, decided.reason, decided.finished_at is not None) == (
        "error", missing, True)
    assert f"the project has no branch {TARGET}" in comment(world, mr["iid"])


def test_a_course_error_is_not_processed_again(world):
    del world.gitlab.state.branches[world.project_id][TARGET]
    submission = world.submit(world.push(solution("hello")))

    assert processing_task(world, submission.id)["outcome"] == "error"

    assert world.submission(submission.id).retry_at is None
    assert retry_failed_submissions(world.resources, world.celery) == 0


def test_an_error_whose_reason_holds_a_semicolon_reads_as_one_reason(world):
    """The ledger keeps a refusal's reasons as one text, joined by '; ': an error has one
    reason, which must not be cut into several where its own text has one."""
    mr, submission = passed_merge_request_submission(world)
    del world.gitlab.state.branches[world.project_id][TARGET]

    assert processing_task(world, submission.id)["outcome"] == "error"

    assert f"- {TARGET_MISSING.format(branch=TARGET)}\n" in comment(world, mr["iid"])


def test_an_assignment_the_merge_request_turns_out_not_to_change_has_its_promise_withdrawn(
        world):
    """The merge request hook asks for a submission of every assignment, and GitLab failing
    before one is known not to be changed ends it in error, with its comment. Processed again,
    it is discarded: its comment must not go on promising it."""
    mr, _ = passed_merge_request_submission(world)
    other = submissions_of(world)[OTHER_ASSIGNMENT]
    end_run(world.resources, other.run_id, RunStatus.CANCELLED,
            status_reason=f"this push did not change {OTHER_ASSIGNMENT}")
    world.gitlab.inject_faults(dataclasses.replace(GITLAB_DOWN))
    assert processing_task(world, other.id)["outcome"] == "error"
    assert "process it again automatically" in comment(world, mr["iid"], OTHER_ASSIGNMENT)
    world.gitlab.clear_faults()
    wait_passed(world, other.id)
    retry_failed_submissions(world.resources, world.celery)

    assert world.process(other.id).outcome == "discarded"

    assert comment(world, mr["iid"], OTHER_ASSIGNMENT).splitlines()[1:] == [
        "### Submission of week2/loops", "",
        "Nothing is handed in for this assignment: the merge request does not change week2/loops."]


def _failed_submissions(make_world, count: int) -> tuple:
    world = make_world(worker=ONE_PERIOD)
    world.gitlab.inject_faults(dataclasses.replace(BRANCHES_DOWN))
    failed = [world.submit(world.push(solution(f"try {n}"))) for n in range(count)]
    for submission in failed:
        processing_task(world, submission.id)
    world.gitlab.clear_faults()
    return world, failed


def test_one_sweep_per_reconciler_interval_processes_them_again(make_world):
    world, (first, second) = _failed_submissions(make_world, 2)
    wait_passed(world, first.id)

    assert retry_failed_submissions(world.resources, world.celery) == 1
    wait_passed(world, second.id)
    assert retry_failed_submissions(world.resources, world.celery) == 0  # this interval's: done

    assert (world.submission(first.id).outcome, world.submission(second.id).outcome) == (
        "pending", "error")


def test_a_sweep_of_another_worker_meanwhile_leaves_them_to_it(make_world):
    world, (failed,) = _failed_submissions(make_world, 1)
    wait_passed(world, failed.id)

    theirs, ours = while_another_process_holds(
        world.resources.settings, world.resources.engine, sweep_in_another_transaction(world),
        lambda: retry_failed_submissions(world.resources, world.celery), must_wait=True)

    assert (theirs, ours) == (1, 0)
    with world.resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.delivery_key.like("reconciler:submission-retries:%"))) == 1
    assert world.submission(failed.id).outcome == "pending"


def test_a_retry_made_while_its_error_is_being_published_is_processed(world):
    """The reconciler makes the submission pending while a worker, which read it unpublished,
    waits to publish its error: that worker leaves it to the retry. Before, it published the
    pending submission and marked it finished, so nothing processed it again: stuck pending."""
    mr, submission = passed_merge_request_submission(world)
    world.gitlab.inject_faults(dataclasses.replace(GITLAB_DOWN))
    world.gitlab.inject_faults(dataclasses.replace(NOTES_DOWN))
    assert processing_task(world, submission.id)["outcome"] == "error"
    world.gitlab.clear_faults()
    wait_passed(world, submission.id)

    retried, _ = while_another_process_holds(
        world.resources.settings, world.resources.engine, sweep_in_another_transaction(world),
        lambda: world.process(submission.id), must_wait=True)

    assert retried == 1
    again = world.submission(submission.id)
    assert (again.outcome, again.finished_at) == ("pending", None)
    assert world.process(submission.id).outcome == "accepted"
    assert "**✅ Accepted**" in comment(world, mr["iid"])


def test_a_run_that_failed_on_us_is_graded_again_when_its_submission_is_processed_again(world):
    """Before, the submission ended in error telling the student to submit the commit again,
    and nothing graded it again."""
    mr, submission = merge_request_submission(
        world, RunStatus.ERROR,
        status_reason="gave up after 5 attempts: fetching students/alice failed")

    assert world.process(submission.id).outcome == "error"
    assert world.submission(submission.id).retry_at is not None
    assert "not lost: gradehook will process it again automatically" in comment(world, mr["iid"])
    wait_passed(world, submission.id)
    assert retry_failed_submissions(world.resources, world.celery) == 1

    again = world.submission(submission.id)
    assert (again.outcome, again.run_id != submission.run_id) == ("pending", True)
    assert world.run(again.run_id).status == RunStatus.QUEUED
    # The new run fails on us too: the next try, not this one, grades the commit again.
    end_run(world.resources, again.run_id, RunStatus.ERROR,
            status_reason="gave up after 5 attempts")
    assert world.process(submission.id).outcome == "error"
    assert world.submission(submission.id).run_id == again.run_id
    wait_passed(world, submission.id)
    next_interval(world)
    assert retry_failed_submissions(world.resources, world.celery) == 1
    last = world.submission(submission.id)
    end_run(world.resources, last.run_id, RunStatus.PASSED, score=1.0, tests_passed=1,
            tests_total=1)
    assert world.process(submission.id).outcome == "accepted"
    assert world.submission(submission.id).counted_at == submission.received_at
    assert len({submission.run_id, again.run_id, last.run_id}) == 3


def test_a_run_that_ended_in_a_course_error_is_not_tried_again(world):
    reason = "test.yaml line 3: properties.tests: must be a list"
    _, submission = merge_request_submission(
        world, RunStatus.ERROR, status_reason=f"course error: {reason}",
        report=course_error_report(reason).to_dict())

    assert world.process(submission.id).outcome == "error"
    assert world.submission(submission.id).retry_at is None
