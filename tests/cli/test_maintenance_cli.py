"""`gradehook results`, `regrade`, `reconcile` and `token-hash` on real PostgreSQL and Redis."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess

import pytest

from pipeline.ledger.db import transaction
from pipeline.ledger import models
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.broker_marker import broker_forgot
from pipeline.celery_app import create_celery
from pipeline.dispatch import send_runs
from pipeline.reconcile import LOST_MESSAGE_AGE, ReconcileReport
from gradehook.cli import NO_LEDGER_TABLES
from tests.cli.commands import ASSIGNMENT, COURSE, TEST_YAML, gradehook
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.processes import gradehook_argv
from tests.infra.services import redis_client

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


def finish(resources, run_id, status, **values):
    with transaction(resources.sessions) as session:
        run = session.get(TestRun, run_id)
        run.status, run.stage, run.progress = status, "done", 100
        for name, value in values.items():
            setattr(run, name, value)


def test_results_lists_runs_newest_first_with_filters(service_settings):
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    older = queue_run(resources, commit_sha="a" * 40, received_at=T0)
    newer = queue_run(resources, commit_sha="b" * 40, project_path="students/bob",
                      received_at=T0 + dt.timedelta(hours=1))
    finish(resources, older.id, RunStatus.PASSED, score=1.0, tests_passed=2, tests_total=2,
           finished_at=T0 + dt.timedelta(minutes=3))
    partial = queue_run(resources, commit_sha="d" * 40, project_path="students/carol",
                        received_at=T0 + dt.timedelta(minutes=30))
    finish(resources, partial.id, RunStatus.FAILED, score=1 / 3, tests_passed=1, tests_total=5,
           finished_at=T0 + dt.timedelta(minutes=33))

    everything = gradehook(config, "results")
    passed = gradehook(config, "results", "--status", "passed", "--project", "students/alice")
    none = gradehook(config, "results", "--commit", "c" * 7)

    assert [line.split() for line in everything.output.splitlines()] == [
        ["RUN", "PROJECT", "ASSIGNMENT", "COMMIT", "STATUS", "SCORE", "TESTS", "FINISHED",
         "(UTC)"],
        [newer.id, "students/bob", ASSIGNMENT, "b" * 12, "queued", "-", "-", "-"],
        [partial.id, "students/carol", ASSIGNMENT, "d" * 12, "failed", "33%", "1/5",
         "2026-03-01", "10:33"],
        [older.id, "students/alice", ASSIGNMENT, "a" * 12, "passed", "100%", "2/2", "2026-03-01",
         "10:03"],
        ["3", "of", "3", "run(s)"]]
    assert passed.output.splitlines()[1].split()[0] == older.id
    assert passed.output.splitlines()[-1] == "1 of 1 run(s)"
    assert none.output.splitlines()[-1] == "0 of 0 run(s)"
    # A course that is not configured is said to be none, not listed as one without runs.
    misspelt = gradehook(config, "results", "--course", "prgo1")
    assert misspelt.stdout.splitlines()[-1] == "0 of 0 run(s)"
    assert misspelt.stderr == ("gradehook: no course named 'prgo1' is configured; did you mean "
                               "prog1?\n")
    assert everything.stderr == none.stderr == ""


def test_results_leave_out_the_runs_that_graded_nothing_unless_asked_for(service_settings):
    """Before, `gradehook results` listed every run the diff found unchanged among the graded
    ones (in a deadline drill 93 cancelled against 63 graded), and --status took one status."""
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    runs = {}
    for minute, (name, status, reason) in enumerate((
            ("passed", RunStatus.PASSED, None), ("failed", RunStatus.FAILED, None),
            ("unchanged", RunStatus.CANCELLED, f"this push did not change {ASSIGNMENT}"),
            ("superseded", RunStatus.SUPERSEDED, "superseded by a newer push (bbbbbbbbbbbb)"),
            ("queued", RunStatus.QUEUED, None))):
        run = queue_run(resources, commit_sha=f"{minute:x}" * 40,
                        received_at=T0 + dt.timedelta(minutes=minute))
        if status.final:
            finish(resources, run.id, status, status_reason=reason)
        runs[name] = run.id

    listed = gradehook(config, "results")
    everything = gradehook(config, "results", "--with-ungraded")
    several = gradehook(config, "results", "--status", "passed", "--status", "cancelled")
    cancelled = gradehook(config, "results", "--status", "cancelled")

    def listed_ids(result):
        assert result.exit_code == 0, result.output
        return [line.split()[0] for line in result.output.splitlines()[1:]
                if line.split()[0] in runs.values()]

    assert listed_ids(listed) == [runs["queued"], runs["failed"], runs["passed"]]
    assert listed.output.splitlines()[-2:] == [
        "3 of 3 run(s)", "2 run(s) that graded nothing (superseded or cancelled) not listed: "
                         "--with-ungraded lists them"]
    assert listed_ids(everything) == [runs[name] for name in (
        "queued", "superseded", "unchanged", "failed", "passed")]
    assert everything.output.splitlines()[-1] == "5 of 5 run(s)"
    assert listed_ids(several) == [runs["unchanged"], runs["passed"]]
    assert several.output.splitlines()[-1] == "2 of 2 run(s)"
    assert listed_ids(cancelled) == [runs["unchanged"]]


REFUSED_PROJECT = ("--project", "alice",
                   "must be a project id (a positive whole number) or a path like group/project")
REFUSED_ASSIGNMENT = ("--assignment", "../week1", "not an assignment directory: '../week1'")


@pytest.mark.parametrize("command, option, value, reason", [
    ("results", "--commit", "zz",
     "must be a commit SHA or its first 7 or more characters, got 'zz'"),
    ("results", *REFUSED_PROJECT), ("results", *REFUSED_ASSIGNMENT),
    ("submissions", *REFUSED_PROJECT), ("submissions", *REFUSED_ASSIGNMENT)])
def test_a_listing_option_no_row_could_match_is_refused_in_the_apis_words(
        service_settings, command, option, value, reason):
    """Before, `gradehook results --commit zz` (or --project alice) listed '0 of 0 run(s)'
    where GET /api/runs refuses the value saying why. The option is named as click names its
    own ('--limit'); it was named unquoted, --commit."""
    config, settings = service_settings()
    migrated_resources(settings)

    done = gradehook(config, command, option, value)

    assert done.exit_code == 2
    assert done.output.splitlines()[-1] == f"Error: Invalid value for '{option}': {reason}"


def test_results_of_a_project_by_its_id_lists_its_runs(service_settings):
    """Before, --project 3 was taken for a path '3', listing no run, where GET /api/runs takes
    it for project id 3."""
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    alice = queue_run(resources, commit_sha="a" * 40, project_id=3)
    queue_run(resources, commit_sha="b" * 40, project_path="students/bob", project_id=4)

    listed = gradehook(config, "results", "--project", "3")

    assert [line.split()[0] for line in listed.output.splitlines()[1:-1]] == [alice.id]


def test_results_show_when_runs_finished_in_utc_whatever_postgresqls_time_zone(
        service_settings, monkeypatch):
    config, settings = service_settings({"courses": [COURSE]})
    run = queue_run(migrated_resources(settings), commit_sha="a" * 40, received_at=T0)
    finish(migrated_resources(settings), run.id, RunStatus.PASSED,
           finished_at=T0 + dt.timedelta(minutes=3))
    monkeypatch.setenv("PGTZ", "Asia/Kathmandu")  # libpq's session time zone: UTC+05:45

    listed = gradehook(config, "results")

    assert listed.output.splitlines()[1].split()[-2:] == ["2026-03-01", "10:03"]


def test_a_new_id_never_begins_with_a_dash(monkeypatch):
    """Before, one id in 64 began with `-` (secrets.token_urlsafe), and `gradehook regrade run
    <id>` took it for an option: "Error: No such option '-v'" (seen in CI)."""
    drawn = iter(["-vQ2wZ8", "_kP0aZ9"])
    monkeypatch.setattr(models.secrets, "token_urlsafe", lambda nbytes: next(drawn))

    assert models.new_id() == "_kP0aZ9"


def test_a_run_id_beginning_with_a_dash_is_regraded_after_a_double_dash(
        service_settings, redis_db):
    """An id an earlier release made can begin with `-`: the command's help says to put it after
    `--`, and then it is taken as the run's id."""
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    source = queue_run(resources, id="-vOldRunIdFromBefore", commit_sha="a" * 40)
    finish(resources, source.id, RunStatus.FAILED)

    regraded = gradehook(config, "regrade", "run", "--", source.id)
    helped = gradehook(config, "regrade", "run", "--help")

    assert regraded.output.startswith("queued 1 run(s) on low_priority: "), regraded.output
    assert "gradehook regrade run -- -vX3" in " ".join(helped.output.split())


def test_regrade_run_queues_once_on_low_priority(service_settings, redis_db):
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    source = queue_run(resources, commit_sha="a" * 40)
    finish(resources, source.id, RunStatus.FAILED)

    first = gradehook(config, "regrade", "run", source.id)
    second = gradehook(config, "regrade", "run", source.id)
    unknown = gradehook(config, "regrade", "run", "nope")

    new_id = first.output.split(": ")[1].strip()
    assert first.output == f"queued 1 run(s) on low_priority: {new_id}\n"
    assert second.output == ("queued 0 run(s) on low_priority: -\n"
                             f"already queued or running: {new_id}\n")
    assert unknown.exit_code == 1 and unknown.output == "Error: no run nope\n"
    messages = [json.loads(m) for m in redis_client(redis_db).lrange("low_priority", 0, -1)]
    assert [m["headers"]["argsrepr"] for m in messages] == [repr([new_id])]


def test_regrade_student_and_assignment(service_settings):
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    for project in ("students/alice", "students/bob"):
        finish(resources, queue_run(resources, commit_sha="a" * 40, project_path=project).id,
               RunStatus.PASSED)

    student = gradehook(config, "regrade", "student", "--project", "students/bob",
                        "--assignment", ASSIGNMENT)
    assignment = gradehook(config, "regrade", "assignment", "--assignment", ASSIGNMENT,
                           "--course", "prog1")

    assert student.output.startswith("queued 1 run(s) on low_priority: ")
    assert assignment.output.splitlines()[0].startswith("queued 1 run(s) on low_priority: ")
    assert assignment.output.splitlines()[1] == \
        "already queued or running: " + student.output.split(": ")[1].strip()


def test_regrade_branch_heads_needs_a_gitlab_token(service_settings):
    config, settings = service_settings({"courses": [COURSE]})
    migrated_resources(settings)

    result = gradehook(config, "regrade", "branch-heads")

    assert result.exit_code == 1
    assert result.output == \
        "Error: regrading branch heads reads GitLab: set gitlab.token (GITLAB_TOKEN)\n"


def test_reconcile_resends_a_run_the_broker_never_got(service_settings, redis_db):
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    run = queue_run(resources, commit_sha="a" * 40, sent_at=None)

    result = gradehook(config, "reconcile")

    expected = ReconcileReport(resent=1).as_dict()
    assert result.stdout == "".join(f"{name}: {count}\n" for name, count in expected.items())
    with resources.sessions() as session:
        resent = session.get(TestRun, run.id)
    assert resent.sent_at is not None and resent.sent_at <= utcnow()
    [message] = [json.loads(m) for m in redis_client(redis_db).lrange("high_priority", 0, -1)]
    # The broker cannot hold a message of a run whose publish failed: the task id stays.
    assert message["headers"]["id"] == resent.celery_task_id == run.celery_task_id


def test_reconcile_names_the_problems_it_found_with_a_reference(service_settings, git_server):
    """Before, it printed its counts alone: staff who fixed a reference and ran it, as the
    command line's own refusals advise, learnt nothing of whether the course was now well."""
    config, settings = service_settings({"courses": [COURSE]})
    migrated_resources(settings)
    sha = git_server.commit("staff/reference", {f"{ASSIGNMENT}/test.yaml": "properties: {}\n"})

    broken = gradehook(config, "reconcile")
    git_server.commit("staff/reference", {f"{ASSIGNMENT}/test.yaml": TEST_YAML})
    fixed = gradehook(config, "reconcile")

    assert broken.exit_code == fixed.exit_code == 0
    assert re.fullmatch(
        f"gradehook: course prog1: its reference staff/reference \\(branch main, commit "
        f"{sha[:12]}\\) holds assignments whose runs all end as course errors: in {ASSIGNMENT}, "
        r"test.yaml: properties.tests: lists no test collections, so there is nothing to grade "
        r"\(seen \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)\n", broken.stderr)
    assert fixed.stderr == ""


def test_reconcile_gives_a_long_queued_run_a_fresh_task_id(service_settings, redis_db):
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    broker_forgot(settings)  # the broker's data is known: its old message may still be there
    run = queue_run(resources, commit_sha="a" * 40,
                    sent_at=utcnow() - LOST_MESSAGE_AGE - dt.timedelta(minutes=1))

    result = gradehook(config, "reconcile")

    assert "resent: 1\n" in result.output
    with resources.sessions() as session:
        resent = session.get(TestRun, run.id)
    [message] = [json.loads(m) for m in redis_client(redis_db).lrange("high_priority", 0, -1)]
    assert message["headers"]["id"] == resent.celery_task_id != run.celery_task_id


def test_reconcile_leaves_a_long_queued_run_whose_message_still_waits(
        service_settings, redis_db):
    # A backlog longer than LOST_MESSAGE_AGE: sending the run again would put it at the back.
    config, settings = service_settings({"courses": [COURSE]})
    resources = migrated_resources(settings)
    broker_forgot(settings)
    run = queue_run(resources, commit_sha="a" * 40,
                    sent_at=utcnow() - LOST_MESSAGE_AGE - dt.timedelta(minutes=1))
    assert send_runs(create_celery(settings), resources.sessions,
                     [(run.id, run.celery_task_id)]) == [run.id]

    result = gradehook(config, "reconcile")

    assert "resent: 0\n" in result.output
    with resources.sessions() as session:
        assert session.get(TestRun, run.id).celery_task_id == run.celery_task_id
    [message] = [json.loads(m) for m in redis_client(redis_db).lrange("high_priority", 0, -1)]
    assert message["headers"]["id"] == run.celery_task_id


def test_token_hash_prints_the_digest_to_configure(tmp_path):
    result = gradehook(tmp_path / "absent.toml", "token-hash", stdin="s3cret-staff-token\n")
    empty = gradehook(tmp_path / "absent.toml", "token-hash", stdin="\n")

    assert result.output == hashlib.sha256(b"s3cret-staff-token").hexdigest() + "\n"
    assert empty.exit_code == 1 and empty.output == "Error: no token on stdin\n"


@pytest.mark.parametrize("command", ["results", "submissions"])
def test_a_page_beyond_any_listing_is_refused_naming_the_option(service_settings, command):
    """Before, a page past what the database counts to ended in its traceback ('bigint out of
    range'; on SQLite 'Python int too large to convert to SQLite INTEGER')."""
    config, settings = service_settings()
    migrated_resources(settings)

    done = gradehook(config, command, "--page", "100000000000000000000")

    assert done.exit_code == 2
    assert done.output.splitlines()[-1] == ("Error: Invalid value for '--page': "
                                            "100000000000000000000 is not in the range "
                                            "1<=x<=1000000.")


def test_a_ledger_without_tables_is_one_line_naming_the_fix(service_settings):
    """A command run against a database never migrated (the wrong config, say): no traceback."""
    config, _ = service_settings()  # a fresh PostgreSQL database: no tables

    done = subprocess.run(gradehook_argv(config, "results"), capture_output=True, text=True,
                          timeout=60)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [NO_LEDGER_TABLES]


def test_a_ledger_missing_a_newer_column_says_to_upgrade(service_settings):
    """Deployed without `db upgrade`: the code knows a column the database lacks yet."""
    config, settings = service_settings()
    resources = migrated_resources(settings)
    with resources.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE test_runs DROP COLUMN commented_at")

    done = subprocess.run(gradehook_argv(config, "results"), capture_output=True, text=True,
                          timeout=60)

    assert (done.returncode, done.stderr.splitlines()) == (2, [NO_LEDGER_TABLES])
