"""Two requests to grade one commit at once, on the embedded SQLite ledger, make one run."""

from __future__ import annotations

import threading

from sqlalchemy import event

from pipeline.config import CourseSettings
from pipeline.ledger.db import make_engine, make_sessionmaker, transaction
from pipeline.ledger.locks import lock_name_for_ledger_work
from pipeline.ledger.migrate import upgrade
from pipeline.ledger.models import TestRun
from pipeline.ledger.run_locks import commit_lock
from pipeline.regrade import GradingTarget, request_grading
from tests.infra.processes import wait_for

SHA = "7" * 40
TARGET = GradingTarget(course=CourseSettings(name="prog1", reference_project="staff/reference"),
                       project_path="students/alice", commit_sha=SHA, assignment="week1/hello")


def test_a_second_request_waits_for_the_first_and_finds_its_run(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    writes: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def note_writes(_conn, _cursor, statement, *_):
        if threading.current_thread().name == "second" and not statement.startswith("SELECT"):
            writes.append(statement)

    answer: dict = {}
    second = threading.Thread(name="second", target=lambda: answer.update(
        zip(("run", "created"), request_grading(sessions, TARGET, kind="api"))))
    try:
        with transaction(sessions) as first:
            # The first request has taken its lock, found no run and made one, not committed.
            lock_name_for_ledger_work(first, *commit_lock(TARGET.project_path, SHA,
                                                          TARGET.assignment))
            made = TestRun(course="prog1", assignment=TARGET.assignment,
                           project_path=TARGET.project_path, commit_sha=SHA,
                           reference_project="staff/reference", reference_ref="main")
            first.add(made)
            first.flush()
            second.start()
            # The second waits to write: for the lock (before it reads), or, without one, to
            # insert the run it found missing.
            wait_for(lambda: writes, what="the second request to write")
        second.join(60)
        assert not second.is_alive()
        assert (answer["run"].id, answer["created"]) == (made.id, False)
        with sessions() as session:
            assert session.query(TestRun).count() == 1
    finally:
        engine.dispose()
