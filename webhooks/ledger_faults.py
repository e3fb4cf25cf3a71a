"""Why the ledger cannot serve a web request: down for a moment, or its tables not upgraded."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from pipeline.ledger.migrate import lacks_schema

LEDGER_NOT_UPGRADED = ("the ledger's tables are missing or out of date: the service's operator "
                       "must run `gradehook db upgrade`")
DATABASE_UNAVAILABLE = "database unavailable: {kind}"


@dataclass(frozen=True)
class LedgerFault:
    """A database error no request can help: what the log says of it, and whether it passes
    (a database down for a moment) or waits for the operator (tables not upgraded)."""

    logged: str
    passing: bool


def ledger_fault(exc: DBAPIError) -> LedgerFault | None:
    """Return the fault a database error tells of; None for another error, a fault of ours."""
    if lacks_schema(exc):
        return LedgerFault(LEDGER_NOT_UPGRADED, passing=False)
    if isinstance(exc, (OperationalError, InterfaceError)):
        return LedgerFault(DATABASE_UNAVAILABLE.format(kind=type(exc).__name__), passing=True)
    return None
