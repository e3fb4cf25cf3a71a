"""Ledger helpers for tests: a migrated database, runs inserted as the receiver would, races."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine

from pipeline.config import Settings, load_settings
from pipeline.context import Resources, build_resources
from pipeline.dispatch import new_task_id
from pipeline.ledger.db import make_engine, transaction
from pipeline.ledger.locks import lock_key
from pipeline.ledger.migrate import upgrade
from pipeline.ledger.models import CourseRoster, RunStatus, Submission, TestRun, utcnow
from pipeline.submissions.verdict import TIME_FORMAT
from tests.infra.processes import wait_for, write_config

T = TypeVar("T")
R = TypeVar("R")


def embedded_settings(folder: Path, monkeypatch, extra: dict[str, Any] | None = None) -> Settings:
    """Return settings of the embedded default (the SQLite ledger, the filesystem broker) with
    data under `folder`: the services' hosts are unset for the test."""
    for name in ("POSTGRES_HOST", "REDIS_HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(write_config(folder, {"data_dir": str(folder / "data"),
                                                   **(extra or {})}))
    assert settings.database_url.startswith("sqlite:")
    return settings


def migrated_resources(settings: Settings) -> Resources:
    """Return fresh resources on a database brought to the newest schema."""
    resources = build_resources(settings)
    upgrade(resources.engine)
    return resources


def roster_read_at(resources: Resources, course: str) -> str:
    """Return when a course's roster was last read from GitLab, as a gradebook says it."""
    with resources.sessions() as session:
        return session.get(CourseRoster, course).read_at.strftime(TIME_FORMAT)


def queue_run(resources: Resources, **fields) -> TestRun:
    """Insert a queued run with a task id, as intake does before sending it."""
    values = {"course": "prog1", "assignment": "week1/hello", "project_path": "students/alice",
              "ref": "main", "reference_project": "staff/reference", "reference_ref": "main",
              "queued_at": utcnow(), "sent_at": utcnow(), "celery_task_id": new_task_id(), **fields}
    with transaction(resources.sessions) as session:
        run = TestRun(**values)
        session.add(run)
    return run


def waiters_for_name(engine: Engine, *name: str) -> int:
    """Return how many sessions of the engine's database wait for the advisory lock of a name
    (its parts, as pipeline.ledger.locks.lock_name takes it)."""
    key = lock_key(name) & 0xFFFFFFFFFFFFFFFF  # PostgreSQL shows a bigint key's two halves
    with engine.connect() as connection:
        return int(connection.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid) AND objsubid = 1"),
            {"high": key >> 32, "low": key & 0xFFFFFFFF}))


def waiters_on(engine: Engine, holder: Connection) -> int:
    """Return how many sessions of the engine's database wait, directly or behind another
    waiter, for a lock that the holder's transaction holds."""
    holder_pid = holder.scalar(text("SELECT pg_backend_pid()"))
    with engine.connect() as connection:
        return int(connection.scalar(text(
            "WITH RECURSIVE held_up(pid) AS ("
            " SELECT pid FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
            " UNION SELECT waiting.pid FROM pg_stat_activity AS waiting JOIN held_up"
            " ON held_up.pid = ANY(pg_blocking_pids(waiting.pid))) "
            "SELECT count(*) FROM held_up"), {"holder": holder_pid}))


def while_another_process_holds(settings: Settings, engine: Engine,
                                hold: Callable[[Connection], T], act: Callable[[], R],
                                *, must_wait: bool = False) -> tuple[T, R]:
    """Run `hold` in a transaction of another engine (another process's), then `act` in a
    thread, committing that transaction once `act` has ended or waits for a lock that
    transaction holds (only the latter when `must_wait`). Return what `hold` and `act` returned.

    SQLite shows no one waiting: there `act` waits once it writes (the other transaction
    holds the one write lock), so the transaction commits as `act` starts its first write.
    """
    other_process = make_engine(settings.database_url)
    acted: list[R] = []
    writing = threading.Event()

    def on_statement(_connection, _cursor, statement, *_args) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writing.set()
    embedded = engine.dialect.name == "sqlite"
    if embedded:
        event.listen(engine, "before_cursor_execute", on_statement)
    try:
        with other_process.begin() as connection:
            held = hold(connection)
            actor = threading.Thread(target=lambda: acted.append(act()))
            actor.start()
            wait_for(lambda: (not must_wait and not actor.is_alive())
                     or (writing.is_set() if embedded else waiters_on(engine, connection)),
                     timeout=30,
                     what="the action to end or to wait for the other process's transaction")
        actor.join(timeout=30)
    finally:
        other_process.dispose()
        if embedded:
            event.remove(engine, "before_cursor_execute", on_statement)
    assert acted, "the action raised or did not end"
    return held, acted[0]


def end_run(resources: Resources, run_id: str, status: RunStatus, **values) -> None:
    """Give a run a final status, as a worker would."""
    with transaction(resources.sessions) as session:
        run = session.get(TestRun, run_id)
        run.status, run.stage, run.progress, run.finished_at = status, "done", 100, utcnow()
        for name, value in values.items():
            setattr(run, name, value)


def add_submission(resources: Resources, *, commit_sha: str, counted_at: dt.datetime,
                   outcome: str = "accepted", score: float | None = None, **fields) -> str:
    """Record a decided submission, with a finished run of the given score if one is given."""
    run_id = None
    if score is not None:
        run = queue_run(resources, commit_sha=commit_sha,
                        **{k: v for k, v in fields.items() if k in ("project_path", "assignment")})
        end_run(resources, run.id, RunStatus.PASSED if score == 1 else RunStatus.FAILED,
                score=score, tests_passed=round(4 * score), tests_total=4)
        run_id = run.id
    values = {"course": "prog1", "assignment": "week1/hello", "project_path": "students/alice",
              "source": "merge_request", "merge_request_iid": 3, "branch": "submission/week1",
              "received_at": counted_at, "decided_at": counted_at + dt.timedelta(minutes=1),
              **fields}
    with transaction(resources.sessions) as session:
        submission = Submission(commit_sha=commit_sha, counted_at=counted_at, outcome=outcome,
                                run_id=run_id, **values)
        session.add(submission)
        session.flush()
        return submission.id


# Nothing listens on port 1: connecting fails at once, with the driver's own error.
UNREACHABLE_DATABASE = "postgresql+psycopg://gradehook@127.0.0.1:1/gradehook"


def query_an_unreachable_database() -> None:
    """Connect to a database nobody serves: raise the driver's error, as a database away does."""
    with create_engine(UNREACHABLE_DATABASE).connect():
        pass


def end_meeting_the_database_away(ends_tried: list[str], times_away: int):
    """Return a task's end (pipeline.tasks.retry.drive's) that notes each reason in ends_tried
    and finds the database unreachable the first times_away times it is called."""
    def end(reason: str) -> str:
        ends_tried.append(reason)
        if len(ends_tried) <= times_away:
            query_an_unreachable_database()
        return reason
    return end
