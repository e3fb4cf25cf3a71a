"""Periodic sweeps: claim one for one process of all, a ledger delivery under the period's key,
and keep in it what the sweep of the next period needs."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gitlab_client import GitLabError, TransientGitLabError
from pipeline.config import Settings
from pipeline.context import Resources
from pipeline.ledger.db import transaction
from pipeline.ledger.models import Delivery, new_id, utcnow

SWEEP_SOURCE = "reconciler"
# A sweep that reads every student project on GitLab runs once per this many reconciler
# intervals.
INTERVALS_PER_GITLAB_SWEEP = 10
# GitLab refuses the token itself: no other project would be read either.
TOKEN_REFUSED = 401


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


def claim_gitlab_sweep(resources: Resources, key: str, event: str, period: int) -> str | None:
    """Claim the sweep over GitLab's student projects of a period (its key a template of
    `period`) and return its delivery id; None when there is nothing to sweep (no GitLab, or no
    course) or another process claimed it."""
    if resources.gitlab is None or not resources.settings.courses:
        return None
    return claim_sweep(resources.sessions, key.format(period=period), event)


def gitlab_sweep_period(settings: Settings) -> int:
    """Return the number of the period that a sweep over GitLab's student projects is in now."""
    length = settings.worker.reconcile_interval_seconds * INTERVALS_PER_GITLAB_SWEEP
    return int(utcnow().timestamp() // length)


def sweep_record(sessions: sessionmaker[Session], key: str) -> dict:
    """Return what the sweep claimed under a key kept for the next one; {} if it kept nothing
    (it failed, is still running, or never ran)."""
    with sessions() as session:
        return session.scalar(select(Delivery.response_body)
                              .where(Delivery.delivery_key == key)) or {}


def keep_sweep_record(sessions: sessionmaker[Session], delivery_id: str, record: dict) -> None:
    """Keep what a sweep leaves the next one in its delivery's answer."""
    with transaction(sessions) as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id)
                        .values(response_body=record))


def stops_the_sweep(exc: GitLabError) -> bool:
    """Tell whether a GitLab error fails a whole sweep over GitLab's student projects (GitLab
    unreachable, or refusing the token), not only the project it came from."""
    return isinstance(exc, TransientGitLabError) or exc.status_code == TOKEN_REFUSED
