"""Database engine and sessions of the ledger, for PostgreSQL and the embedded SQLite."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection back in use within this many seconds is used without a ping. A restart
# of PostgreSQL usually takes longer, so a connection it cut has sat idle longer than this. One
# cut within that time (a quick immediate restart, a backend killed on its own) fails its next
# statement instead: SQLAlchemy then drops every connection the pool held before it, and the
# work is retried like any other passing database fault.
PING_AFTER_IDLE_SECONDS = 0.5
_CHECKED_IN = "gradehook_checked_in"


def make_engine(url: str, *, connect_timeout: float = 5.0) -> Engine:
    """Create an engine with timeouts, pool checks and SQLite's concurrency settings."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10,
                           connect_args={"connect_timeout": max(1, int(connect_timeout))})
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection on checkout only when it sat idle, not on every checkout.

    A busy worker takes a connection from the pool several times per run; pinging each time
    (`pool_pre_ping`) is a round trip to PostgreSQL for nothing while the server is up.
    """
    @event.listens_for(engine, "checkin")
    def stamp(_dbapi_connection, record) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out a fresh one.
            raise DisconnectionError("a pooled connection no longer answers") from exc


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit on success, roll back on error, and close it."""
    with factory() as session, session.begin():
        yield session


@contextlib.contextmanager
def single_statements(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session whose every statement commits on its own, and close it.

    For work that is one statement, atomic by itself: it then costs one round trip to the
    database instead of three (BEGIN, the statement, COMMIT).
    """
    with factory() as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
        if session.new or session.dirty or session.deleted:
            # Nothing flushes or commits here: changes to ORM objects would be lost.
            raise RuntimeError("single_statements takes statements, not changes to objects")


def conflict_insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """Return an INSERT into a table that takes ON CONFLICT clauses, in the ledger's dialect."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
