"""The ledger's connection pool pings a connection that sat idle, and only such a one."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from pipeline.ledger import db
from pipeline.ledger.models import Delivery, utcnow
from tests.infra.services import admin_connection


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    connection = admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            assert cursor.fetchone()[0] is True
    finally:
        connection.close()


@pytest.fixture
def engine(service_settings):
    _, settings = service_settings()
    engine = db.make_engine(settings.database_url)
    yield engine
    engine.dispose()


def test_an_idle_connection_the_server_cut_is_replaced_on_checkout(engine, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    cut = _backend_pid(engine)
    _terminate(cut)

    assert _backend_pid(engine) != cut


def test_a_connection_back_in_use_at_once_is_not_pinged(engine, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    cut = _backend_pid(engine)
    _terminate(cut)

    # Without a ping the dead connection is handed out, and its first statement fails...
    with pytest.raises(OperationalError):
        _backend_pid(engine)
    # ...which makes the pool drop it: the next checkout gets a live connection.
    assert _backend_pid(engine) != cut


def test_single_statements_refuses_changes_it_would_not_commit(engine):
    sessions = db.make_sessionmaker(engine)
    with pytest.raises(RuntimeError, match="not changes to objects"):
        with db.single_statements(sessions) as session:
            session.add(Delivery(delivery_key="k1", source="webhook", event="Push Hook",
                                 received_at=utcnow()))
