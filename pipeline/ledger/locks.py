"""Named locks that last until the transaction ends: PostgreSQL's advisory locks."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def lock_name(executor: Session | Connection, *name: str) -> None:
    """Wait for the lock of a name (its parts) and hold it until the transaction ends.

    Only PostgreSQL has such locks; on the embedded SQLite ledger nothing is taken. The key is
    the first 64 bits of the name's SHA-256.
    """
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    if bind.dialect.name != "postgresql":
        return
    digest = hashlib.sha256("\0".join(name).encode()).digest()
    executor.execute(_LOCK, {"key": int.from_bytes(digest[:8], "big", signed=True)})
