"""The reconciler sends runs the broker lost and asks again for updates GitLab lacks."""

from __future__ import annotations

import base64
import datetime as dt
import json

from sqlalchemy import select, update

from pipeline import reconcile
from pipeline.broker_marker import broker_forgot
from pipeline.celery_app import create_celery
from pipeline.dispatch import send_runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import CourseAssignment, RunStatus, TestRun, utcnow
from pipeline.reconcile import LOST_MESSAGE_AGE, reconcile_ledger
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import (embedded_settings, migrated_resources, queue_run,
                                while_another_process_holds)
from tests.infra.services import redis_client, take_requested_reports
from tests.support.gitlab_standin import DEVELOPER, REPORTER
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture


# Long past the report task's giving up (report_patience_seconds, minutes), within a day.
REPORTING_GAVE_UP = dt.timedelta(hours=1)


def _ended(resources, status, reported, finished_ago, commented=True, **fields):
    run = queue_run(resources, commit_sha="d" * 40, **fields)
    with transaction(resources.sessions) as session:
        row = session.get(TestRun, run.id)
        row.status, row.reported_status = status, reported
        row.finished_at = utcnow() - finished_ago
        row.commented_at = row.finished_at if commented else None
    return run.id


def test_ended_runs_gitlab_never_heard_of_are_reported_again(
        service_settings, redis_db, gitlab_standin):  # noqa: F811
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token}})
    resources = migrated_resources(settings)
    long_ago = REPORTING_GAVE_UP
    lost = _ended(resources, RunStatus.FAILED, None, long_ago)
    half_shown = _ended(resources, RunStatus.PASSED, "running", long_ago)
    withdrawn = _ended(resources, RunStatus.SUPERSEDED, "pending", long_ago)
    uncommented = _ended(resources, RunStatus.PASSED, "success", long_ago, commented=False)
    _ended(resources, RunStatus.FAILED, "failed", long_ago)             # reported: done
    _ended(resources, RunStatus.SUPERSEDED, "canceled", long_ago, commented=False)  # done
    _ended(resources, RunStatus.FAILED, None, dt.timedelta(seconds=5))  # its worker may yet
    _ended(resources, RunStatus.SUPERSEDED, None, long_ago)             # never shown

    report = reconcile_ledger(resources, create_celery(settings))

    assert report.reports_requested == 4
    [message] = [json.loads(m) for m in redis_client(redis_db).lrange("notify", 0, -1)]
    assert message["headers"]["task"] == "report_runs"
    args, _, _ = json.loads(base64.b64decode(message["body"]))
    assert sorted(args[0]) == sorted([lost, half_shown, withdrawn, uncommented])


def test_runs_gitlab_keeps_failing_leave_newer_runs_their_turn(
        service_settings, redis_db, gitlab_standin):  # noqa: F811
    """Before, each sweep asked again for the 200 runs that ended first: more than 200 runs
    GitLab never takes (their project deleted) kept every newer run out for a day."""
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token}})
    resources = migrated_resources(settings)
    celery = create_celery(settings)
    long_ago = REPORTING_GAVE_UP + dt.timedelta(minutes=30)
    stuck = {_ended(resources, RunStatus.FAILED, None, long_ago - dt.timedelta(seconds=index))
             for index in range(200)}
    newer = _ended(resources, RunStatus.PASSED, None, REPORTING_GAVE_UP)

    assert reconcile_ledger(resources, celery).reports_requested == 200
    assert set(*take_requested_reports(redis_db)) == stuck
    assert reconcile_ledger(resources, celery).reports_requested == 1
    assert take_requested_reports(redis_db) == [[newer]]


def test_a_run_gitlab_refuses_for_good_is_not_asked_for_again(
        service_settings, redis_db, gitlab_standin):  # noqa: F811
    """Before, a run whose project was deleted (GitLab answers 404) or whose project the
    token lost (403) was asked for again on every sweep for a day."""
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token}})
    resources = migrated_resources(settings)
    celery = create_celery(settings)
    celery.loader.import_default_modules()
    long_ago = REPORTING_GAVE_UP
    gone = _ended(resources, RunStatus.FAILED, None, long_ago, project_id=404404)
    assert reconcile_ledger(resources, celery).reports_requested == 1
    assert take_requested_reports(redis_db) == [[gone]]

    celery.tasks["report_runs"].apply(args=[[gone]]).get()

    with transaction(resources.sessions) as session:
        run = session.get(TestRun, gone)
        assert run.report_refused.startswith("GitLab refused the run's update for good: ")
        assert "404" in run.report_refused
        run.report_due_at = utcnow() - dt.timedelta(seconds=1)  # due again
    assert reconcile_ledger(resources, celery).reports_requested == 0


def test_runs_refused_while_the_token_lacked_its_role_are_asked_for_again_once_it_has_it(
        service_settings, redis_db, gitlab_standin):  # noqa: F811
    """Before, a run GitLab refused as staff had given gradehook's user too low a role in its
    project (403; 404 where it was no member) was never asked for again once staff gave it the
    role: students saw its pipeline pending or running for good."""
    bot = gitlab_standin.add_user("grading-bot")
    project = gitlab_standin.add_project("students/bob", members={bot.id: REPORTER})
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url, "token": bot.token}})
    resources = migrated_resources(settings)
    celery = create_celery(settings)
    celery.loader.import_default_modules()
    refused = _ended(resources, RunStatus.FAILED, None, REPORTING_GAVE_UP,
                     project_id=project["id"], project_path="students/bob")
    celery.tasks["report_runs"].apply(args=[[refused]]).get()
    with transaction(resources.sessions) as session:
        assert "403" in session.get(TestRun, refused).report_refused

    gitlab_standin.add_member(project["id"], bot.id, DEVELOPER)
    taken = _ended(resources, RunStatus.PASSED, None, REPORTING_GAVE_UP,
                   project_id=project["id"], project_path="students/bob")
    celery.tasks["report_runs"].apply(args=[[taken]]).get()

    assert reconcile_ledger(resources, celery).reports_requested == 1
    assert take_requested_reports(redis_db) == [[refused]]


def test_runs_whose_message_is_gone_are_found_behind_a_backlog_still_waiting(
        service_settings, redis_db, monkeypatch):
    monkeypatch.setattr(reconcile, "RESENDS_PER_SWEEP", 3)
    _, settings = service_settings()
    resources, celery = migrated_resources(settings), create_celery(settings)
    broker_forgot(settings)  # the broker's data is known: waiting messages are still there
    long_ago = utcnow() - LOST_MESSAGE_AGE - dt.timedelta(minutes=5)
    waiting = [queue_run(resources, commit_sha="e" * 40, queued_at=long_ago + dt.timedelta(
        seconds=n), sent_at=long_ago) for n in range(3)]
    assert len(send_runs(celery, resources.sessions,
                         [(run.id, run.celery_task_id) for run in waiting])) == 3
    lost = queue_run(resources, commit_sha="f" * 40, queued_at=long_ago + dt.timedelta(
        seconds=10), sent_at=long_ago)          # its message is gone: never marked here
    never_sent = queue_run(resources, commit_sha="a" * 40, sent_at=None)

    report = reconcile_ledger(resources, celery)

    assert (report.resent, report.still_unsent) == (2, 0)
    with resources.sessions() as session:
        task_ids = {run.id: session.get(TestRun, run.id).celery_task_id
                    for run in (*waiting, lost, never_sent)}
    # The waiting runs keep their place; the lost one is sent with a fresh task id.
    assert [task_ids[run.id] for run in waiting] == [run.celery_task_id for run in waiting]
    assert task_ids[lost.id] != lost.celery_task_id
    assert task_ids[never_sent.id] == never_sent.celery_task_id
    sent = [json.loads(m)["headers"]["id"] for m in redis_client(redis_db).lrange(
        "high_priority", 0, -1)]
    assert sorted(sent) == sorted([*(run.celery_task_id for run in waiting), task_ids[lost.id],
                                   never_sent.celery_task_id])


def test_after_the_broker_lost_its_data_runs_sent_since_are_not_sent_twice(
        service_settings, redis_db):
    """Redis came back empty (the test's database is fresh: no marker) and the web process sent
    a run to it before the first sweep since: that run's message waits there, marked; only the
    run whose message was lost is sent again. Sent again under its kept task id, the waiting
    run would have two messages, and two worker processes would both claim it."""
    _, settings = service_settings()
    resources, celery = migrated_resources(settings), create_celery(settings)
    lost = queue_run(resources, commit_sha="a" * 40, sent_at=utcnow() - dt.timedelta(minutes=1))
    since = queue_run(resources, commit_sha="b" * 40)
    assert send_runs(celery, resources.sessions, [(since.id, since.celery_task_id)])

    report = reconcile_ledger(resources, celery)

    assert report.resent == 1
    sent = [json.loads(m)["headers"]["id"] for m in redis_client(redis_db).lrange(
        "high_priority", 0, -1)]
    assert sorted(sent) == sorted([lost.celery_task_id, since.celery_task_id])


def test_one_courses_failing_discovery_leaves_the_other_courses_refreshed(
        service_settings, git_server, monkeypatch, caplog):
    courses = [{"name": name, "student_projects": [f"{name}/students/"],
                "reference_project": f"{name}/reference"} for name in ("algo", "prog1")]
    _, settings = service_settings({"courses": courses})
    resources = migrated_resources(settings)
    for name in ("algo", "prog1"):
        git_server.commit(f"{name}/reference", {"week1/hello/test.yaml": ONE_TEST})
    real_discover = reconcile.discover

    def discover(repositories, sessions, course):
        if course.name == "algo":
            raise RuntimeError("a failure nobody foresaw")
        return real_discover(repositories, sessions, course)
    monkeypatch.setattr(reconcile, "discover", discover)

    report = reconcile_ledger(resources, create_celery(settings))

    assert report.assignments_found == 1
    with resources.sessions() as session:
        assert session.execute(select(CourseAssignment.course, CourseAssignment.directory)) \
            .all() == [("prog1", "week1/hello")]
    [failed] = [r for r in caplog.records
                if r.name == "pipeline.reconcile" and r.levelname == "ERROR"]
    assert failed.getMessage() == "reconcile: assignments of course algo not refreshed"
    assert failed.exc_info[0] is RuntimeError


def _swept_while_another_sweep_sends(settings, resources, celery, unsent):
    """Sweep while another sweep sends the unsent run under the task id it has: sent now, in
    its transaction (its message follows the commit). Return the sweep's report."""
    _, report = while_another_process_holds(
        settings, resources.engine,
        lambda connection: connection.execute(update(TestRun).where(TestRun.id == unsent.id)
                                              .values(sent_at=utcnow())),
        lambda: reconcile_ledger(resources, celery))
    return report


def test_a_run_another_sweep_sends_meanwhile_is_not_sent_twice_under_its_task_id(
        service_settings, redis_db):
    """Two sweeps at once (the beat's and a starting worker's), one of them the first since
    the broker lost its data: a run whose publish had failed is sent by the other sweep while
    this one looks. Two messages of one task id would both claim the run: graded twice."""
    _, settings = service_settings()
    resources, celery = migrated_resources(settings), create_celery(settings)
    unsent = queue_run(resources, commit_sha="a" * 40, sent_at=None)
    report = _swept_while_another_sweep_sends(settings, resources, celery, unsent)
    assert send_runs(celery, resources.sessions, [(unsent.id, unsent.celery_task_id)])

    assert report.resent == 0
    sent = [json.loads(m)["headers"]["id"] for m in redis_client(redis_db).lrange(
        "high_priority", 0, -1)]
    assert sent == [unsent.celery_task_id]


def test_on_the_embedded_ledger_a_run_another_sweep_sends_meanwhile_is_not_sent_again(
        tmp_path, monkeypatch):
    """SQLite has no row locks: the sweep becomes the ledger's writer before it reads the run,
    so it sees the other sweep's send once that commits."""
    settings = embedded_settings(tmp_path, monkeypatch)
    resources, celery = migrated_resources(settings), create_celery(settings)
    unsent = queue_run(resources, commit_sha="a" * 40, sent_at=None)
    report = _swept_while_another_sweep_sends(settings, resources, celery, unsent)
    assert report.resent == 0
