"""Apply the ledger's Alembic migrations to a database; safe to run again."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
NOT_UPGRADED = "the ledger's tables are at revision {at}, not {head}: run `gradehook db upgrade`"
NO_TABLES = "none (no tables)"
UNREADABLE_REVISION = "the ledger's revision could not be read from alembic_version: {error}"
# What SQLite and PostgreSQL say of a table or column the ledger's schema lacks.
MISSING_SCHEMA_MESSAGES = ("no such table", "no such column")
MISSING_SCHEMA_ERRORS = ("UndefinedTable", "UndefinedColumn")


def alembic_config() -> Config:
    """Return an Alembic configuration pointing at gradehook's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str:
    """Return the newest revision of the migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the revision a database is at, or None for an empty one."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_problem(connection: Connection) -> str | None:
    """Say why a database's tables are not those of this code's newest revision; None when
    they are."""
    try:  # read as Alembic keeps it, without its context, which logs each time it is made
        at = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError as exc:
        if not lacks_schema(exc):  # the table is there but was not read: a privilege lacking
            return UNREADABLE_REVISION.format(error=_first_line(exc.orig))
        at = None  # a database never upgraded
    head = head_revision()
    if at == head or (at is not None and at not in _known_revisions()):
        return None  # a newer gradehook's revision: it keeps the tables this code reads
    return NOT_UPGRADED.format(at=at or NO_TABLES, head=head)


@functools.cache
def _known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


def _first_line(error: BaseException) -> str:
    """Return the first line of a driver's error: its message, without the statement or the
    link to SQLAlchemy's documentation that follow."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def lacks_schema(exc: DBAPIError) -> bool:
    """Tell whether a database error says a table or column of the ledger is missing."""
    return any(message in str(exc.orig) for message in MISSING_SCHEMA_MESSAGES) \
        or type(exc.orig).__name__ in MISSING_SCHEMA_ERRORS


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; return the revisions before and after."""
    before = current_revision(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, current_revision(engine)
