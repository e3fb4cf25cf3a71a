"""Named locks held while a transaction runs: PostgreSQL's advisory locks, files beside SQLite."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from pathlib import Path
from typing import Iterable, Iterator

from sqlalchemy import false, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from pipeline.ledger.models import TestRun
from pipeline.lock_files import open_lock_file

# Locks taken in ascending key order: two transactions wanting overlapping sets of names then
# wait for each other instead of deadlocking.
_LOCKS = text("SELECT count(pg_advisory_xact_lock(key)) FROM "
              "(SELECT unnest(CAST(:keys AS bigint[])) AS key ORDER BY key) AS keys")
# A write of no row: enough for SQLite to make the transaction its writer.
_NOTHING_WRITTEN = update(TestRun).where(false()).values(status=TestRun.status)
# Names share this many lock files beside an embedded ledger: two names on one file take turns
# needlessly, which is rare with a few reporters at a time and costs a wait, never a result.
EMBEDDED_LOCK_FILES = 256


def lock_name(executor: Session | Connection, *name: str) -> None:
    """Wait for the lock of a name (its parts) and hold it until the transaction ends.

    Only PostgreSQL has such locks; on the embedded SQLite ledger nothing is taken (see
    embedded_turn). The key is lock_key's.
    """
    lock_names(executor, [name])


def lock_names(executor: Session | Connection, names: Iterable[tuple[str, ...]]) -> None:
    """Wait for the locks of several names, in one round trip, and hold them as lock_name."""
    if _dialect_name(executor) != "postgresql":
        return
    keys = sorted({lock_key(name) for name in names})
    if keys:
        executor.execute(_LOCKS, {"keys": keys})


def lock_key(name: tuple[str, ...]) -> int:
    """Return the PostgreSQL advisory lock key of a name (its parts): its SHA-256's first 64
    bits."""
    return int.from_bytes(_digest(name)[:8], "big", signed=True)


def lock_name_for_ledger_work(session: Session, *name: str) -> None:
    """Lock a name (its parts) until the transaction ends, in one that touches only the ledger.

    On PostgreSQL that is lock_name's advisory lock. The embedded SQLite ledger has one writer
    at a time: a write that changes nothing makes this transaction that writer before it reads
    anything, so a second transaction waits (its busy timeout) instead of reading what this
    one is about to change. Call it first, and never where the transaction waits on GitLab:
    every other writer of the host would wait too.
    """
    lock_names_for_ledger_work(session, [name])


def lock_names_for_ledger_work(executor: Session | Connection,
                               names: Iterable[tuple[str, ...]]) -> None:
    """Lock several names as lock_name_for_ledger_work does one."""
    if not write_first(executor):
        lock_names(executor, names)


def write_first(executor: Session | Connection) -> bool:
    """On the embedded SQLite ledger, make this transaction its writer before it reads; tell
    whether it did (PostgreSQL needs no such thing: lock rows or names instead).

    A read that decides a write then sees every write committed before it, and none until this
    transaction ends: SQLite has no row locks. Never where the transaction waits on GitLab.
    """
    if _dialect_name(executor) != "sqlite":
        return False
    executor.execute(_NOTHING_WRITTEN)
    return True


def _dialect_name(executor: Session | Connection) -> str:
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    return bind.dialect.name


@contextlib.contextmanager
def embedded_turn(engine: Engine, *name: str) -> Iterator[None]:
    """On the embedded SQLite ledger, hold the turn of a name across the host's processes.

    SQLite has no lock a transaction can hold while it calls GitLab without holding up every
    other writer, so work that reads the ledger, calls GitLab and records what it did takes
    turns under an exclusive lock on a file beside the database, shared by every process of
    the host (the embedded ledger is one host's) and dropped by the kernel if its holder dies.
    Open the transaction inside the block: it has committed before the next holder reads. On
    PostgreSQL nothing is taken here; lock the name inside the transaction (lock_name).
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    folder = Path(f"{engine.url.database}.locks")
    folder.mkdir(exist_ok=True)
    number = _digest(name)[0] % EMBEDDED_LOCK_FILES
    with open_lock_file(folder / f"turn-{number:03d}.lock") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # closing the file drops the lock
        yield


def _digest(name: tuple[str, ...]) -> bytes:
    return hashlib.sha256("\0".join(name).encode()).digest()
