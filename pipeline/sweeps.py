"""Claim a periodic sweep for one process of all: a ledger delivery under the period's key."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.ledger.db import transaction
from pipeline.ledger.models import Delivery, new_id, utcnow

SWEEP_SOURCE = "reconciler"


def claim_sweep(sessions: sessionmaker[Session], key: str, event: str) -> str | None:
    """Record a sweep under its key and return its delivery id; None when another process
    already claimed that key (the unique delivery key decides, not timing)."""
    delivery_id = new_id()
    try:
        with transaction(sessions) as session:
            session.execute(insert(Delivery).values(
                id=delivery_id, delivery_key=key, source=SWEEP_SOURCE, event=event,
                received_at=utcnow(), response_status=200, response_body={}))
    except IntegrityError:
        return None
    return delivery_id
