"""One student's assignment is judged by one transaction at a time, on PostgreSQL and SQLite."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from pipeline.ledger.db import make_engine, make_sessionmaker, transaction
from pipeline.ledger.migrate import upgrade
from pipeline.submissions.ledger import SUBMISSION_LOCK, lock_for_judging, \
    lock_student_assignment
from tests.infra.ledger import waiters_for_name
from tests.infra.processes import wait_for

ALICE, WEEK1 = "students/alice", "week1/hello"


def _ledger(url: str):
    engine = make_engine(url)
    upgrade(engine)
    return engine, make_sessionmaker(engine)


def test_postgresql_makes_a_second_judge_of_the_same_assignment_wait(service_settings):
    _, settings = service_settings()
    engine, sessions = _ledger(settings.database_url)
    entered = threading.Event()

    def second_judge() -> None:
        with transaction(sessions) as session:
            lock_student_assignment(session, ALICE, WEEK1)
            entered.set()

    try:
        with transaction(sessions) as first:
            lock_student_assignment(first, ALICE, WEEK1)
            with transaction(sessions) as other_assignment:  # another lock, not held
                lock_student_assignment(other_assignment, ALICE, "week2/other")
            waiter = threading.Thread(target=second_judge)
            waiter.start()
            wait_for(lambda: waiters_for_name(engine, SUBMISSION_LOCK, ALICE, WEEK1) == 1,
                     timeout=30, what="the second judge to wait")
            assert not entered.is_set()
        waiter.join(timeout=30)
        assert entered.is_set()
    finally:
        engine.dispose()


def test_sqlite_makes_a_second_judge_wait_for_the_first_to_end(tmp_path):
    engine, sessions = _ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    try:
        with transaction(sessions) as first:
            lock_for_judging(first, ALICE, WEEK1)
            with sessions() as second:
                second.execute(text("PRAGMA busy_timeout = 0"))  # refuse instead of waiting
                with pytest.raises(OperationalError, match="database is locked"):
                    lock_for_judging(second, ALICE, WEEK1)
        with transaction(sessions) as second:
            lock_for_judging(second, ALICE, WEEK1)
        with transaction(sessions) as publishing, transaction(sessions) as other_student:
            # Publishing (GitLab calls inside) takes no database-wide lock on SQLite.
            lock_student_assignment(publishing, ALICE, WEEK1)
            lock_for_judging(other_student, "students/bob", WEEK1)
    finally:
        engine.dispose()
