"""The one retry layer: a passing fault of ours is tried `max_attempts` times, then ended."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import create_engine, text

from gitlab_client import TransientGitLabError
from pipeline.celery_app import REGRADE, REPORT, STUDENT_TESTING, create_celery
from pipeline.grading.staging import copy_tree
from pipeline.ledger.models import RunStatus, TestRun
from pipeline.repos import RepositoryError
from pipeline.tasks.retry import BACKOFF_BASE_SECONDS, BACKOFF_JITTER, DATABASE_FAILED, \
    GAVE_UP_REASON, STORAGE_FAILED, TIME_LIMIT_REASON, UNEXPECTED_REASON, drive, \
    resumes_attempt
from tests.infra.assignments import ONE_TEST
from tests.infra.disks import fill, small_disk
from tests.infra.ledger import end_meeting_the_database_away, migrated_resources, \
    query_an_unreachable_database, queue_run
from tests.support.gitlab_standin import FaultPlan, gitlab_standin  # noqa: F401 (a fixture)

app = Celery("retry-layer-test")
tried: list[int] = []


@app.task(bind=True)
def always_failing(self, max_attempts: int) -> str:
    """Fail with a passing fault every time; end with the reason the retry layer gives."""
    def work() -> str:
        tried.append(self.request.retries)
        raise RepositoryError("git is down")
    return drive(self, work, lambda reason: reason, soft_limit=60, max_attempts=max_attempts,
                 database_wait=0.1, what="always_failing", places={})


@pytest.mark.parametrize("max_attempts", [1, 2, 5, 8])
def test_a_passing_fault_is_tried_max_attempts_times_then_the_run_ends(max_attempts):
    # Celery's own limit (max_retries, 3 by default) must not cut the attempts short: a run
    # left by an error Celery raised past its limit stayed `running` for half an hour.
    tried.clear()
    outcome = always_failing.apply(args=(max_attempts,)).get()
    assert outcome == GAVE_UP_REASON.format(attempts=max_attempts, error="git is down")
    assert tried == list(range(max_attempts))


@app.task(bind=True)
def failing_on_the_disk(self, code: int) -> str:
    """Fail as writing a file does on a disk full, over its quota or read-only."""
    def work() -> str:
        tried.append(self.request.retries)
        raise OSError(code, os.strerror(code), "/srv/gradehook/work/run-1/mark")
    return drive(self, work, lambda reason: reason, soft_limit=60, max_attempts=2,
                 database_wait=0.1, what="failing_on_the_disk", places={})


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_a_disk_refusing_writes_is_tried_again_and_worded_without_the_path(code):
    """Before, such an error ended the run at once as 'unexpected error in gradehook
    (OSError)': a disk full for a moment failed every push it met."""
    tried.clear()
    outcome = failing_on_the_disk.apply(args=(code,)).get()
    assert outcome == GAVE_UP_REASON.format(
        attempts=2, error=STORAGE_FAILED.format(error=os.strerror(code)))
    assert tried == [0, 1]


@app.task(bind=True)
def staging_on_a_full_disk(self, source: str, disk: str) -> str:
    """Copy a solution's folder as staging does, onto a disk with no room left (each attempt
    into a folder of its own, as each attempt of a run has its own workspace)."""
    def work() -> str:
        tried.append(self.request.retries)
        copy_tree(Path(source), Path(disk, f"attempt-{self.request.retries}"))
        return "copied"
    return drive(self, work, lambda reason: reason, soft_limit=60, max_attempts=2,
                 database_wait=0.1, what="staging_on_a_full_disk", places={})


def test_a_folder_copied_onto_a_full_disk_is_tried_again(tmp_path):
    """Before, a full disk met while a folder was copied (staging the solutions) ended the run
    at once as 'unexpected error in gradehook (Error)': shutil's copy keeps each file's error as
    text alone, so it was not known as the disk's."""
    solution = tmp_path / "solution"
    solution.mkdir()
    (solution / "calc.py").write_bytes(b"x = 1\n" * 2 ** 16)
    tried.clear()
    with small_disk(tmp_path / "work") as work:
        fill(work)
        outcome = staging_on_a_full_disk.apply(args=(str(solution), str(work))).get()
    assert outcome == GAVE_UP_REASON.format(
        attempts=2, error=STORAGE_FAILED.format(error=os.strerror(errno.ENOSPC)))
    assert tried == [0, 1]


def query_cut_short_by_the_database(url: str) -> None:
    """Run a query the database, which answers, cancels (its statement timeout)."""
    with create_engine(url).connect() as connection:
        connection.execute(text("SET statement_timeout = 1"))
        connection.execute(text("SELECT pg_sleep(1)"))


@app.task(bind=True)
def failing_on_the_database(self, database_url: str | None) -> str:
    """Fail as a query the database at `database_url` cancels does, or without one, as the
    database unreachable does while the soft time limit is handled."""
    def work() -> str:
        if database_url is not None:
            query_cut_short_by_the_database(database_url)
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded:
            query_an_unreachable_database()  # raised while the limit is handled
        return "finished"
    return drive(self, work, lambda reason: reason, soft_limit=60, max_attempts=1,
                 database_wait=0.1, what="failing_on_the_database", places={})


def test_a_database_error_is_worded_for_students_without_the_drivers_text(service_settings):
    _, settings = service_settings()
    outcome = failing_on_the_database.apply(args=(settings.database_url,)).get()
    assert outcome == GAVE_UP_REASON.format(
        attempts=1, error=DATABASE_FAILED.format(error="OperationalError"))


def test_a_call_the_time_limit_cut_short_ends_by_the_time_limit():
    """Before, the driver's error raised while the limit was handled hid it: the run was
    tried again as after a database outage, and its last attempt named the driver's error."""
    assert failing_on_the_database.apply(args=(None,)).get() == \
        TIME_LIMIT_REASON.format(limit=60)


retry_notes: list[str] = []


@app.task(bind=True)
def meeting_the_database_away(self, times_away: int, then_fail: bool,
                              database_waits: int = 0) -> str:
    """Find the database unreachable `times_away` times, then fail with a passing fault of
    another kind every time (`then_fail`), or finish; note why each retry comes."""
    def work() -> str:
        tried.append(self.request.retries)
        if len(tried) <= times_away:
            query_an_unreachable_database()
        if then_fail:
            raise RepositoryError("git is down")
        return "finished"
    return drive(self, work, lambda reason: reason, soft_limit=60, max_attempts=2,
                 database_wait=0.1, database_waits=database_waits,
                 what="meeting_the_database_away", places={}, retrying=retry_notes.append)


def test_a_database_away_is_waited_for_without_using_up_the_attempts():
    """Before, each try that met the database away was an attempt: an outage longer than the
    attempts' back-off (about 37 s) ended the run as 'gave up after 5 attempts: the database
    failed', or, the database still away, left it running until the stall sweep."""
    tried.clear()
    assert meeting_the_database_away.apply(args=(4, False)).get() == "finished"
    assert tried == [0, 1, 2, 3, 4]


def test_other_faults_still_end_after_the_last_attempt_once_the_database_is_back():
    tried.clear()
    outcome = meeting_the_database_away.apply(args=(3, True)).get()
    assert outcome == GAVE_UP_REASON.format(attempts=2, error="git is down")
    assert tried == [0, 1, 2, 3, 4]


def test_the_attempt_after_waits_for_the_database_comes_as_soon_as_a_first_retry():
    """Before, the back-off counted the waits for the database as attempts: after a minute's
    outage, a git fault's retry came 3 to 8 minutes on, where the reconciler waits about 75 s
    for a retry to start (retry_patience_seconds) before it takes it for lost, queues the run
    again as 'did not start in time', or ends it as error on its last attempt."""
    tried.clear()
    retry_notes.clear()
    meeting_the_database_away.apply(args=(6, True)).get()
    waits = [int(seconds) for seconds in re.findall(
        r"attempt 1 failed \(git is down\); trying again in (\d+) s", " ".join(retry_notes))]
    assert len(waits) == 1
    assert waits[0] <= round(BACKOFF_BASE_SECONDS * (1 + BACKOFF_JITTER))  # as the reason shows it


resumed: list[bool] = []


@app.task(bind=True)
def claiming_then_meeting_faults(self, database_waits: int = 0, resumes: int | None = None
                                 ) -> str:
    """Claim the work each time; find the database unreachable the first time, fail with git
    the next, finish the third; note whether each delivery continues a claimed attempt."""
    resumed.append(resumes_attempt(self, database_waits, resumes))

    def work() -> str:
        if len(resumed) == 1:
            query_an_unreachable_database()
        if len(resumed) == 2:
            raise RepositoryError("git is down")
        return "finished"
    return drive(self, work, lambda reason: reason, soft_limit=60, max_attempts=2,
                 database_wait=0.1, database_waits=database_waits,
                 what="claiming_then_meeting_faults", places={}, claimed=lambda: True)


def test_a_wait_for_the_database_past_the_claim_continues_its_attempt_and_a_retry_does_not():
    """Before, a delivery after a wait for the database could not tell it continued an attempt
    that had claimed its run: the claim counted another attempt in the ledger."""
    resumed.clear()
    assert claiming_then_meeting_faults.apply().get() == "finished"
    assert resumed == [False, True, False]


ends_tried: list[str] = []


@app.task(bind=True)
def ending_while_the_database_is_away(self, times_away: int, database_waits: int = 0,
                                      ending: str | None = None) -> str:
    """Fail with a passing fault of another kind; find the database unreachable the first
    `times_away` times the end is recorded."""
    def work() -> str:
        tried.append(self.request.retries)
        raise RepositoryError("git is down")

    end = end_meeting_the_database_away(ends_tried, times_away)
    return drive(self, work, end, soft_limit=60, max_attempts=1, database_wait=0.1,
                 database_waits=database_waits, ending=ending,
                 what="ending_while_the_database_is_away", places={})


def test_an_end_the_database_was_away_to_record_is_recorded_once_it_is_back():
    """Before, the database away as the last attempt's error was recorded raised out of the
    task: the run stayed running until the stall sweep, half an hour on."""
    tried.clear()
    ends_tried.clear()
    reason = GAVE_UP_REASON.format(attempts=1, error="git is down")
    assert ending_while_the_database_is_away.apply(args=(2,)).get() == reason
    assert tried == [0]  # not graded again
    assert ends_tried == [reason] * 3


@app.task(bind=True)
def failing_unexpectedly_as_the_database_goes_away(self, database_waits: int = 0,
                                                   ending: str | None = None) -> str:
    """Fail with an error of no known kind; find the database unreachable the first time the
    end is recorded."""
    def work() -> str:
        tried.append(self.request.retries)
        raise KeyError("config")

    end = end_meeting_the_database_away(ends_tried, 1)
    return drive(self, work, end, soft_limit=60, max_attempts=2, database_wait=0.1,
                 database_waits=database_waits, ending=ending,
                 what="failing_unexpectedly_as_the_database_goes_away", places={})


def test_an_unexpected_error_the_database_was_away_to_record_is_recorded_once_it_is_back():
    """Before, the database away as an unexpected error was recorded raised out of the task:
    the run stayed running until the stall sweep, half an hour on, which ended it as 'stopped:
    its worker was lost or the hard time limit of 1800 s was exceeded', not as the error it
    was."""
    tried.clear()
    ends_tried.clear()
    reason = UNEXPECTED_REASON.format(error="KeyError")
    assert failing_unexpectedly_as_the_database_goes_away.apply().get() == reason
    assert tried == [0]  # not graded again
    assert ends_tried == [reason] * 2


@app.task(bind=True)
def sending_a_text_the_driver_refuses(self, database_url: str, database_waits: int = 0) -> str:
    """Send the database at `database_url` a text holding a NUL character, which the driver
    refuses without sending it, the first time; finish the next."""
    def work() -> str:
        tried.append(self.request.retries)
        if len(tried) == 1:
            with create_engine(database_url).connect() as connection:
                connection.execute(text("SELECT CAST(:value AS text)"), {"value": "a\x00b"})
        return "finished"

    def end(reason: str) -> str:
        ends_tried.append(reason)
        return reason
    return drive(self, work, end, soft_limit=60, max_attempts=2, database_wait=0.1,
                 database_waits=database_waits, what="sending_a_text_the_driver_refuses",
                 places={})


def test_a_statement_the_driver_refuses_is_not_waited_for_as_the_database_away(
        service_settings):
    """Before, the driver's refusal, which carries no SQLSTATE as its connection failures do,
    was taken for the database away: the task was sent again every database_wait_seconds for
    as long as it kept making that statement, for ever, and its run stayed running."""
    _, settings = service_settings()
    tried.clear()
    ends_tried.clear()
    outcome = sending_a_text_the_driver_refuses.apply(args=(settings.database_url,))
    assert outcome.failed()
    assert tried == [0]
    assert ends_tried == [UNEXPECTED_REASON.format(error="DataError")]


def test_a_report_gitlab_keeps_refusing_is_tried_max_attempts_times(
        service_settings, gitlab_standin):  # noqa: F811 (the fixture)
    project = gitlab_standin.add_project("students/alice", branches={"main": "a" * 40})
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token},
                                    "worker": {"max_attempts": 5}})
    resources = migrated_resources(settings)
    run = queue_run(resources, project_id=project["id"], commit_sha="a" * 40)
    gitlab_standin.inject_faults(FaultPlan(status=503, every=1, method="POST",
                                           path_pattern=r"/statuses/"))

    celery = create_celery(settings)
    celery.loader.import_default_modules()
    outcome = celery.tasks[REPORT].apply(args=[[run.id]]).get()

    assert outcome == {"reported": 0, "failed": [run.id]}
    assert len(gitlab_standin.requests_to("POST", r"/statuses/")) == 5


def test_a_branch_head_sweep_gitlab_keeps_refusing_is_tried_max_attempts_times(
        service_settings, gitlab_standin):  # noqa: F811 (the fixture)
    _, settings = service_settings({"gitlab": {"url": gitlab_standin.url,
                                               "token": gitlab_standin.bot.token},
                                    "worker": {"max_attempts": 5}})
    migrated_resources(settings)
    gitlab_standin.inject_faults(FaultPlan(status=503, every=1, method="GET",
                                           path_pattern=r"/groups/"))
    celery = create_celery(settings)
    celery.loader.import_default_modules()

    with pytest.raises(TransientGitLabError):
        celery.tasks[REGRADE].apply(args=["prog1"]).get()

    assert len(gitlab_standin.requests_to("GET", r"/groups/")) == 5


def test_a_run_that_gave_up_names_no_place_on_the_host_in_its_reason(
        service_settings, git_server, caplog):
    # The course's additional file fills the sandbox's 1 MB work directory on every attempt:
    # the sandbox's error names the folder it copied, in this host's workspace.
    git_server.commit("staff/reference", {
        "week1/hello/hello.py": "greeting = 'hello'\n", "week1/hello/test.yaml": ONE_TEST,
        "week1/hello/meta.yaml": "properties: {additionalFiles: [words.txt]}\n",
        "week1/hello/words.txt": "word\n" * 300_000})
    _, settings = service_settings({"worker": {"max_attempts": 2},
                                    "sandbox": {"workdir_size_mb": 1}})
    resources = migrated_resources(settings)
    run = queue_run(resources, commit_sha=git_server.commit(
        "students/alice", {"week1/hello/hello.py": "greeting = 'hello'\n"}))
    celery = create_celery(settings)
    celery.loader.import_default_modules()

    celery.tasks[STUDENT_TESTING].apply(args=[run.id], task_id=run.celery_task_id).get()

    with resources.sessions() as session:
        ended = session.get(TestRun, run.id)
    assert ended.status == RunStatus.ERROR
    assert re.fullmatch(
        r"gave up after 2 attempts: the sandbox could not run the solutions: work directory "
        rf"<workspace>/run-{re.escape(run.id)}-\w+/grading/gradehook-grade-\w+/student-base "
        r"does not fit into the sandbox's 1 MB work directory", ended.status_reason), \
        ended.status_reason
    # Staff find the place in the worker's log.
    assert f"giving up: the sandbox could not run the solutions: work directory " \
        f"{settings.workspace}/run-{run.id}-" in caplog.text
