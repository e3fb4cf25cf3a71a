"""Deliveries recorded together, or beside another process's writes, act as if each were alone."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from sqlalchemy import func, select

from pipeline import regrade, ungraded
from pipeline.celery_app import QUEUES, create_celery
from pipeline.config import load_settings
from pipeline.context import Resources
from pipeline.ledger.db import make_engine, make_sessionmaker, transaction
from pipeline.ledger.models import Delivery, RunStatus, TestRun, utcnow
from pipeline.regrade import GradingTarget
from pipeline.sweeps import SWEEP_SOURCE
from tests.infra.ledger import waiters_on, migrated_resources, queue_run, \
    while_another_process_holds
from tests.infra.processes import wait_for, write_config
from tests.infra.services import SERVICE_VARIABLES
from tests.support.gitlab_standin import DEVELOPER
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture
from tests.webhooks.deliveries import body_of, headers_for, payload_of
from webhooks.app import create_app
from webhooks.events import parse_delivery
from webhooks.handlers.decisions import Context
from webhooks.handlers.router import decide
from webhooks.intake import _record, record_deliveries
from webhooks.intake_plan import Delivered

ASSIGNMENTS = ["week1/assignment1", "week2/assignment1"]
COURSE = {"name": "prog1", "student_projects": ["prog1-2026/students/"],
          "reference_project": "prog1-2026/reference", "discover_assignments": False,
          "assignments": [{"directory": d} for d in ASSIGNMENTS]}
PUSH = "push_hook__assignment_commits"
# The head commit and source branch of the merge request in merge_request_hook__update_with_oldrev
# and note_hook__retest_command.
MERGE_REQUEST_HEAD = "0c14c6b2019d0329b451bb2634462926a5687afe"
MERGE_REQUEST_BRANCH = "week2-draft"
MERGE_REQUEST_IID = 3


@pytest.fixture
def ledger(service_settings):
    """The course's settings and a migrated ledger on PostgreSQL."""
    _, settings = service_settings({"courses": [COURSE]})
    return settings, migrated_resources(settings)


def delivered(settings, stem, key, *, body=None) -> Delivered:
    """Parse and decide a fixture delivery as the receiver would."""
    event = parse_delivery(headers_for(stem, **{"Idempotency-Key": key}),
                           body if body is not None else body_of(stem))
    course = settings.course_for(event.project_path)
    decision = decide(event, Context(course=course, assignments=ASSIGNMENTS))
    return Delivered(event, decision, course)


def newer_push(sha: str) -> bytes:
    payload = payload_of(PUSH)
    payload.update(before=payload["after"], after=sha, checkout_sha=sha)
    return json.dumps(payload).encode()


def runs(resources) -> dict[str, TestRun]:
    with resources.sessions() as session:
        return {run.id: run for run in session.scalars(select(TestRun))}


def test_a_later_push_in_the_batch_supersedes_the_earlier_runs(ledger):
    settings, resources = ledger
    newer_sha = "2" * 40
    first, second = record_deliveries(resources.engine, [
        delivered(settings, PUSH, "push-1"),
        delivered(settings, PUSH, "push-2", body=newer_push(newer_sha))])
    assert first.status == second.status == 202
    assert sorted(second.body["superseded"]) == sorted(first.body["runs"])
    assert first.to_send == ()
    assert [run_id for run_id, _ in second.to_send] == second.body["runs"]
    stored = runs(resources)
    for run_id in first.body["runs"]:
        assert stored[run_id].status == RunStatus.SUPERSEDED
        assert stored[run_id].superseded_by == newer_sha
        assert stored[run_id].finished_at is not None
    assert {stored[run_id].status for run_id in second.body["runs"]} == {RunStatus.QUEUED}


def test_a_close_in_the_batch_cancels_the_runs_of_the_update_before_it(ledger):
    settings, resources = ledger
    update, close = record_deliveries(resources.engine, [
        delivered(settings, "merge_request_hook__update_with_oldrev", "mr-update"),
        delivered(settings, "merge_request_hook__close", "mr-close")])
    assert update.status == 202 and len(update.body["runs"]) == 2
    assert close.status == 200
    assert sorted(close.body["cancelled"]) == sorted(update.body["runs"])
    assert update.to_send == close.to_send == ()
    assert {run.status for run in runs(resources).values()} == {RunStatus.CANCELLED}


def test_a_retest_in_the_batch_makes_new_runs_and_an_update_reuses_them(ledger):
    settings, resources = ledger
    update, retest, again = record_deliveries(resources.engine, [
        delivered(settings, "merge_request_hook__update_with_oldrev", "mr-update"),
        delivered(settings, "note_hook__retest_command", "note-1"),
        delivered(settings, "merge_request_hook__update_with_oldrev", "mr-update-again")])
    assert len(retest.body["runs"]) == 2
    assert not set(retest.body["runs"]) & set(update.body["runs"])
    assert again.status == 200 and again.body["runs"] == []
    assert sorted(again.body["existing_runs"]) == sorted(update.body["runs"])
    assert len(runs(resources)) == 4


def push_to(branch: str, *, new_branch: bool = False) -> bytes:
    payload = payload_of(PUSH)
    payload.update(ref=f"refs/heads/{branch}")
    if new_branch:
        payload.update(before="0" * 40)
    return json.dumps(payload).encode()


def test_a_graded_commit_pushed_to_another_branch_gets_runs_of_that_branch(ledger):
    """A fast-forward of another branch onto a graded commit: GitLab shows that branch's
    pipeline and badges only by statuses posted for it, so its runs are its own."""
    settings, resources = ledger
    work, = record_deliveries(resources.engine, [delivered(settings, PUSH, "push-work",
                                                           body=push_to("work"))])
    main, same_branch_again = record_deliveries(resources.engine, [
        delivered(settings, PUSH, "push-main", body=push_to("main")),
        delivered(settings, PUSH, "push-work-again", body=push_to("work"))])
    assert main.status == 202 and len(main.body["runs"]) == 2
    assert not set(main.body["runs"]) & set(work.body["runs"])
    assert main.body["superseded"] == []
    assert same_branch_again.body["runs"] == []
    assert sorted(same_branch_again.body["existing_runs"]) == sorted(work.body["runs"])
    stored = runs(resources)
    assert {stored[run_id].ref for run_id in main.body["runs"]} == {"main"}
    assert {run.status for run in stored.values()} == {RunStatus.QUEUED}


def test_a_new_branch_made_at_a_graded_commit_reuses_its_runs(ledger):
    """Nothing new to grade: a run of its own would only diff the commit with itself."""
    settings, resources = ledger
    work, = record_deliveries(resources.engine, [delivered(settings, PUSH, "push-work",
                                                           body=push_to("work"))])
    copy, = record_deliveries(resources.engine, [
        delivered(settings, PUSH, "push-copy", body=push_to("copy", new_branch=True))])
    assert copy.status == 200 and copy.body["runs"] == []
    assert sorted(copy.body["existing_runs"]) == sorted(work.body["runs"])


def test_a_key_repeated_in_the_batch_is_answered_as_the_first(ledger):
    settings, resources = ledger
    first, repeat = record_deliveries(resources.engine, [
        delivered(settings, PUSH, "same"), delivered(settings, PUSH, "same")])
    assert repeat.duplicate and not first.duplicate
    assert repeat.body == first.body and repeat.to_send == ()
    assert len(runs(resources)) == 2


def test_a_key_committed_by_another_process_meanwhile_gets_its_answer(ledger):
    """The unique key decides: the later transaction waits, fails, and answers as the first."""
    settings, resources = ledger
    (first,), (answer,) = while_another_process_holds(
        settings, resources.engine,
        lambda connection: _record(connection, [delivered(settings, PUSH, "raced")]),
        lambda: record_deliveries(resources.engine, [delivered(settings, PUSH, "raced")]),
        must_wait=True)
    assert answer.duplicate
    assert answer.body == first.body
    assert len(runs(resources)) == 2
    with resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def _recorded_alongside(settings, resources, first: Delivered, second: Delivered):
    """Record `first` in another process's transaction and, before it commits, `second`.

    Return both answers. Two gunicorn processes each write their own batches: only the
    ledger can make the second see what the first wrote.
    """
    (earlier,), (later,) = while_another_process_holds(
        settings, resources.engine, lambda connection: _record(connection, [first]),
        lambda: record_deliveries(resources.engine, [second]))
    return earlier, later


def test_a_push_recorded_by_another_process_meanwhile_is_superseded(ledger):
    settings, resources = ledger
    newer_sha = "2" * 40
    earlier, later = _recorded_alongside(
        settings, resources, delivered(settings, PUSH, "push-1"),
        delivered(settings, PUSH, "push-2", body=newer_push(newer_sha)))
    assert len(earlier.body["runs"]) == 2
    assert sorted(later.body["superseded"]) == sorted(earlier.body["runs"])
    stored = runs(resources)
    assert {(stored[run_id].status, stored[run_id].superseded_by)
            for run_id in earlier.body["runs"]} == {(RunStatus.SUPERSEDED, newer_sha)}
    assert {stored[run_id].status for run_id in later.body["runs"]} == {RunStatus.QUEUED}


def push_to_merge_request_branch(sha: str) -> bytes:
    """Return a push of a commit onto the source branch of the fixtures' merge request."""
    payload = payload_of(PUSH)
    payload.update(ref=f"refs/heads/{MERGE_REQUEST_BRANCH}", after=sha, checkout_sha=sha)
    payload["commits"][-1]["id"] = sha
    return json.dumps(payload).encode()


def test_a_commit_recorded_by_another_process_meanwhile_is_graded_once(ledger):
    """A push and its merge request's update name the same commit at the same moment."""
    settings, resources = ledger
    update = delivered(settings, "merge_request_hook__update_with_oldrev", "mr-update")
    push = delivered(settings, PUSH, "push", body=push_to_merge_request_branch(MERGE_REQUEST_HEAD))
    earlier, later = _recorded_alongside(settings, resources, push, update)
    assert len(earlier.body["runs"]) == 2
    assert later.body["runs"] == []
    assert sorted(later.body["existing_runs"]) == sorted(earlier.body["runs"])
    assert len(runs(resources)) == 2


def test_a_close_cancels_the_runs_another_process_is_recording_meanwhile(ledger):
    settings, resources = ledger
    update, close = _recorded_alongside(
        settings, resources,
        delivered(settings, "merge_request_hook__update_with_oldrev", "mr-update"),
        delivered(settings, "merge_request_hook__close", "mr-close"))
    assert len(update.body["runs"]) == 2
    assert sorted(close.body["cancelled"]) == sorted(update.body["runs"])
    assert {run.status for run in runs(resources).values()} == {RunStatus.CANCELLED}


def test_a_retest_recorded_meanwhile_is_cancelled_by_a_close(ledger):
    settings, resources = ledger
    retest, close = _recorded_alongside(
        settings, resources, delivered(settings, "note_hook__retest_command", "note-1"),
        delivered(settings, "merge_request_hook__close", "mr-close"))
    assert len(retest.body["runs"]) == 2
    assert sorted(close.body["cancelled"]) == sorted(retest.body["runs"])


def test_a_push_of_the_commit_a_retest_records_meanwhile_reuses_its_runs(ledger):
    """As when the retest is recorded first: its runs grade the commit for the push too."""
    settings, resources = ledger
    retest, push = _recorded_alongside(
        settings, resources, delivered(settings, "note_hook__retest_command", "note-1"),
        delivered(settings, PUSH, "push", body=push_to_merge_request_branch(MERGE_REQUEST_HEAD)))
    assert len(retest.body["runs"]) == 2
    assert push.body["runs"] == []
    assert sorted(push.body["existing_runs"]) == sorted(retest.body["runs"])
    assert len(runs(resources)) == 2


def test_a_regrade_of_the_commit_a_retest_records_meanwhile_finds_its_runs(ledger):
    settings, resources = ledger
    targets = [GradingTarget(course=settings.courses[0],
                             project_path=payload_of(PUSH)["project"]["path_with_namespace"],
                             commit_sha=MERGE_REQUEST_HEAD, assignment=assignment,
                             ref=MERGE_REQUEST_BRANCH) for assignment in ASSIGNMENTS]
    (retest,), queued = while_another_process_holds(
        settings, resources.engine,
        lambda connection: _record(connection, [
            delivered(settings, "note_hook__retest_command", "note-1")]),
        lambda: regrade._regrade(resources.sessions, targets))
    assert queued.created == []
    assert sorted(queued.existing) == sorted(retest.body["runs"])


@pytest.mark.parametrize("stem", ["note_hook__retest_command",
                                  "merge_request_hook__update_with_oldrev"])
def test_runs_a_merge_request_records_meanwhile_are_superseded_by_a_newer_push(ledger, stem):
    """As when the merge request's delivery is recorded first: the push of a newer commit onto
    its branch supersedes the runs still queued there."""
    settings, resources = ledger
    newer_sha = "2" * 40
    earlier, push = _recorded_alongside(
        settings, resources, delivered(settings, stem, "mr-delivery"),
        delivered(settings, PUSH, "push", body=push_to_merge_request_branch(newer_sha)))
    assert len(earlier.body["runs"]) == 2
    assert sorted(push.body["superseded"]) == sorted(earlier.body["runs"])


def test_a_regrade_of_a_commit_a_push_records_meanwhile_does_not_deadlock_with_it(ledger):
    """A teacher's regrade of a branch head's assignments and the head's push at one moment.

    A request for the head's first assignment holds its lock; the regrade waits for it, and
    the push (its intake takes its locks in key order, the second assignment's first) waits
    too. Once the request commits, neither the regrade nor the push fails on a deadlock.
    """
    settings, resources = ledger
    sha = "1" * 40  # its second assignment's lock key sorts before the first's
    push = delivered(settings, PUSH, "push", body=newer_push(sha))
    project = push.event.project_path
    targets = [GradingTarget(course=settings.courses[0], project_path=project, commit_sha=sha,
                             assignment=assignment, ref="main") for assignment in ASSIGNMENTS]
    other_process = make_engine(settings.database_url)
    outcomes: dict[str, object] = {}

    def outcome(name, action):
        try:
            outcomes[name] = action()
        except Exception as exc:  # noqa: BLE001  the failure is the test's finding
            outcomes[name] = exc

    regrading = threading.Thread(target=outcome, args=(
        "regrade", lambda: regrade._regrade(resources.sessions, targets)))
    recording = threading.Thread(target=outcome, args=(
        "push", lambda: record_deliveries(resources.engine, [push])))
    try:
        with other_process.begin() as connection:
            regrade.request_grading(make_sessionmaker(connection), targets[0], kind="api")
            regrading.start()
            wait_for(lambda: waiters_on(resources.engine, connection) == 1, timeout=30,
                     what="the regrade to wait for the request")
            recording.start()
            wait_for(lambda: waiters_on(resources.engine, connection) == 2, timeout=30,
                     what="the push to wait too")
        regrading.join(timeout=30)
        recording.join(timeout=30)
    finally:
        other_process.dispose()
    assert not isinstance(outcomes["regrade"], Exception), outcomes["regrade"]
    assert not isinstance(outcomes["push"], Exception), outcomes["push"]


def test_a_regrade_recorded_by_another_process_meanwhile_is_superseded_by_a_newer_push(ledger):
    """A teacher regrades a branch's head as its student pushes a newer commit: as when the
    regrade is recorded first, the push supersedes the regrade's runs still queued (graded,
    the old commit would post its status after the new one)."""
    settings, resources = ledger
    newer_sha = "2" * 40
    push = payload_of(PUSH)
    targets = [GradingTarget(course=settings.courses[0],
                             project_path=push["project"]["path_with_namespace"],
                             commit_sha=push["after"], assignment=assignment,
                             ref=push["ref"].removeprefix("refs/heads/"))
               for assignment in ASSIGNMENTS]
    regraded, newer = while_another_process_holds(
        settings, resources.engine,
        lambda connection: regrade._regrade(make_sessionmaker(connection), targets),
        lambda: record_deliveries(resources.engine, [
            delivered(settings, PUSH, "push-2", body=newer_push(newer_sha))])[0])
    assert len(regraded.created) == 2
    assert sorted(newer.body["superseded"]) == sorted(regraded.created_ids)
    stored = runs(resources)
    assert {stored[run_id].status for run_id in regraded.created_ids} == {RunStatus.SUPERSEDED}


def test_a_regrade_of_a_merge_request_run_recorded_meanwhile_is_cancelled_by_a_close(ledger):
    """As when the regrade is recorded first: a close cancels its merge request's runs still
    queued, the regrade's among them."""
    settings, resources = ledger
    targets = [GradingTarget(course=settings.courses[0],
                             project_path=payload_of(PUSH)["project"]["path_with_namespace"],
                             commit_sha=MERGE_REQUEST_HEAD, assignment=assignment,
                             ref=MERGE_REQUEST_BRANCH, merge_request_iid=MERGE_REQUEST_IID)
               for assignment in ASSIGNMENTS]
    regraded, close = while_another_process_holds(
        settings, resources.engine,
        lambda connection: regrade._regrade(make_sessionmaker(connection), targets),
        lambda: record_deliveries(resources.engine, [
            delivered(settings, "merge_request_hook__close", "mr-close")])[0])
    assert len(regraded.created) == 2
    assert sorted(close.body["cancelled"]) == sorted(regraded.created_ids)


SWEEP_PERIOD = 7


@pytest.fixture
def sweep(service_settings, gitlab_standin, monkeypatch):  # noqa: F811
    """Settings, a ledger and a sweep of unseen heads that met the pushed head last period.

    The sweep is a function of the resources it writes with; GitLab shows the head of the
    push fixture's branch, which no webhook brought yet.
    """
    _, settings = service_settings({"courses": [COURSE], "gitlab": {
        "url": gitlab_standin.url, "token": gitlab_standin.bot.token}})
    return _sweep_of(settings, gitlab_standin, monkeypatch)


@pytest.fixture
def embedded_sweep(tmp_path, gitlab_standin, monkeypatch):  # noqa: F811
    """As sweep, on the embedded SQLite ledger and broker."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(write_config(tmp_path, {
        "data_dir": str(tmp_path / "data"), "courses": [COURSE],
        "gitlab": {"url": gitlab_standin.url, "token": gitlab_standin.bot.token}}))
    assert settings.embedded
    return _sweep_of(settings, gitlab_standin, monkeypatch)


def _sweep_of(settings, standin, monkeypatch):
    """Return settings, a migrated ledger and the sweep, as the sweep fixture describes."""
    resources = migrated_resources(settings)
    push = payload_of(PUSH)
    head = (push["project"]["path_with_namespace"], push["ref"].removeprefix("refs/heads/"),
            push["after"])
    standin.add_project(head[0], branches={head[1]: head[2]},
                        members={standin.bot.id: DEVELOPER})
    monkeypatch.setattr(ungraded, "_current_period", lambda _: SWEEP_PERIOD)
    with transaction(resources.sessions) as session:
        session.add(Delivery(
            delivery_key=ungraded.SWEEP_KEY.format(period=SWEEP_PERIOD - 1),
            source=SWEEP_SOURCE, event=ungraded.SWEEP_EVENT, received_at=utcnow(),
            response_status=200, response_body={ungraded.UNSEEN_FIELD: [list(head)]}))
    celery = create_celery(settings)
    return settings, resources, lambda writing: ungraded.grade_unseen_heads(writing, celery)


def test_a_head_the_sweep_meets_while_its_push_is_recorded_is_graded_once(sweep):
    settings, resources, grade_unseen_heads = sweep
    (push,), queued = while_another_process_holds(
        settings, resources.engine,
        lambda connection: _record(connection, [delivered(settings, PUSH, "push")]),
        lambda: grade_unseen_heads(resources))
    assert len(push.body["runs"]) == 2
    assert queued == 0
    assert sorted(runs(resources)) == sorted(push.body["runs"])


def test_a_push_recorded_while_the_sweep_queues_the_head_before_it_supersedes_its_runs(sweep):
    settings, resources, grade_unseen_heads = sweep
    newer_sha = "2" * 40
    queued, push = while_another_process_holds(
        settings, resources.engine,
        lambda connection: grade_unseen_heads(_writing_on(resources, connection)),
        lambda: record_deliveries(resources.engine, [
            delivered(settings, PUSH, "push-2", body=newer_push(newer_sha))])[0])
    assert queued == 2
    swept = [run_id for run_id, run in runs(resources).items() if run.commit_sha != newer_sha]
    assert len(swept) == 2
    assert sorted(push.body["superseded"]) == sorted(swept)
    stored = runs(resources)
    assert {(stored[run_id].status, stored[run_id].superseded_by) for run_id in swept} == {
        (RunStatus.SUPERSEDED, newer_sha)}


@pytest.mark.parametrize("ledger_sweep", ["sweep", "embedded_sweep"])
def test_a_push_recorded_after_the_sweep_listed_the_branch_leaves_the_listed_head_unqueued(
        request, ledger_sweep, monkeypatch):
    """GitLab listed the branch at the head the sweep met unseen last period; the webhook of a
    push onto a newer commit is recorded before the sweep locks the branch. The webhook is the
    newer news: queued beside the newer commit's runs, the listed head would be graded after
    them and post its status and comment after theirs."""
    settings, resources, grade_unseen_heads = request.getfixturevalue(ledger_sweep)
    newer_sha = "2" * 40
    list_branches = resources.gitlab.list_branches

    def listed_then_pushed(project):
        listed = list_branches(project)
        record_deliveries(resources.engine, [
            delivered(settings, PUSH, "push-2", body=newer_push(newer_sha))])
        return listed
    monkeypatch.setattr(resources.gitlab, "list_branches", listed_then_pushed)
    assert grade_unseen_heads(resources) == 0
    assert {run.commit_sha for run in runs(resources).values()} == {newer_sha}


def test_a_project_gitlab_no_longer_shows_holds_up_no_other_projects_heads(sweep):
    """A project the ledger has runs of was deleted on GitLab (404): its branches cannot be
    listed, and the other projects' heads are graded all the same."""
    settings, resources, grade_unseen_heads = sweep
    queue_run(resources, course="prog1", project_path="prog1-2026/students/aaron",
              project_id=999, commit_sha="3" * 40)

    assert grade_unseen_heads(resources) == 2
    assert {run.commit_sha for run in runs(resources).values()} == {
        "3" * 40, payload_of(PUSH)["after"]}


def _writing_on(resources: Resources, connection) -> Resources:
    """Return resources whose sessions write in a connection's transaction."""
    return dataclasses.replace(resources, sessions=make_sessionmaker(connection))


def test_a_delivery_the_ledger_refuses_does_not_fail_the_others(ledger):
    settings, resources = ledger
    app = create_app(settings)
    intake = app.extensions["gradehook"].intake
    good = delivered(settings, PUSH, "good")
    refused = delivered(settings, PUSH, "refused")
    # A key longer than the ledger's column: the parser never lets one through, so edit it in.
    bad = dataclasses.replace(refused, event=dataclasses.replace(refused.event,
                                                                 delivery_key="x" * 300))
    answers = intake.record([good, bad])
    assert answers[0].status == 202 and len(answers[0].body["runs"]) == 2
    assert isinstance(answers[1], Exception)
    assert {run.delivery_id for run in runs(resources).values()} == {
        answers[0].body["delivery_id"]}


def test_intake_on_the_embedded_database_and_broker(tmp_path, monkeypatch):
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(write_config(tmp_path, {"data_dir": str(tmp_path / "data"),
                                                     "gitlab": {"webhook_secret": "s"},
                                                     "courses": [COURSE]}))
    assert settings.embedded
    resources = migrated_resources(settings)
    client = create_app(settings).test_client()

    def post(key, body):
        return client.post("/webhooks/gitlab", data=body, headers=headers_for(
            PUSH, **{"X-Gitlab-Token": "s", "Idempotency-Key": key}))

    first = post("push-1", body_of(PUSH))
    second = post("push-2", newer_push("3" * 40))
    repeat = post("push-2", newer_push("3" * 40))
    assert (first.status_code, second.status_code, repeat.status_code) == (202, 202, 202)
    assert sorted(second.get_json()["superseded"]) == sorted(first.get_json()["runs"])
    assert repeat.get_json() == second.get_json()
    stored = runs(resources)
    assert len(stored) == 4
    assert sorted(run.status for run in stored.values()) == [RunStatus.QUEUED] * 2 + \
        [RunStatus.SUPERSEDED] * 2
    messages = {queue: len(list(settings.broker_folder.glob(f"*.{queue}.msg")))
                for queue in QUEUES}
    assert messages["high_priority"] == 4 and messages["notify"] == 2
