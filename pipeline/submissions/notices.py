"""Merge requests to be told that their commit's submission is held by another (or the API):
their ledger rows, recorded with the hand-in and kept until their comment is written."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from sqlalchemy import select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from pipeline.ledger.db import conflict_insert
from pipeline.ledger.models import MergeRequestNotice, Submission, new_id, utcnow
from pipeline.submissions.verdict import PENDING

NOTICES = MergeRequestNotice.__table__

Notice = tuple[str, int]  # submission id, merge request iid


def record_notices(connection: Connection, to_send: Sequence[Notice],
                   waiting: Sequence[Notice]) -> None:
    """Record notices of merge requests: those `to_send` now (their submission is decided; the
    caller sends them once committed), and those `waiting` for their pending submission's
    decision, whose publishing tells them. A merge request's notice is recorded once; one
    handed in again is to be told again (its comment may show another commit's submission
    since, its head having moved away and back), keeping when it first handed the commit in."""
    now = utcnow()
    rows = [dict(id=new_id(), submission_id=submission_id, merge_request_iid=iid,
                 created_at=now, sent_at=sent_at)
            for notices, sent_at in ((to_send, now), (waiting, None))
            for submission_id, iid in notices]
    if rows:
        insert = conflict_insert(connection, NOTICES)
        connection.execute(insert.on_conflict_do_update(
            index_elements=["submission_id", "merge_request_iid"],
            set_=dict(sent_at=insert.excluded.sent_at, told_at=None)), rows)


def notices_of(session: Session, submission_id: str) -> list[tuple[int, dt.datetime]]:
    """Return the merge requests with a notice of a submission, with when each handed its
    commit in (the notice's recording), first first."""
    return [tuple(row) for row in session.execute(
        select(MergeRequestNotice.merge_request_iid, MergeRequestNotice.created_at)
        .where(MergeRequestNotice.submission_id == submission_id)
        .order_by(MergeRequestNotice.created_at, MergeRequestNotice.merge_request_iid))]


def mark_told(session: Session, submission_id: str, iids: Sequence[int]) -> None:
    """Record that these merge requests' notices of a submission were told."""
    session.execute(update(MergeRequestNotice).where(
        MergeRequestNotice.submission_id == submission_id,
        MergeRequestNotice.merge_request_iid.in_(list(iids)),
        MergeRequestNotice.told_at.is_(None)).values(told_at=utcnow()))


def mark_sent(connection: Connection, notices: Sequence[Notice],
              sent_at: dt.datetime | None) -> None:
    """Record when notices went to the broker; None for those it did not take, which the
    reconciler sends."""
    if notices:
        connection.execute(update(NOTICES).where(
            tuple_(NOTICES.c.submission_id, NOTICES.c.merge_request_iid).in_(list(notices)))
            .values(sent_at=sent_at))


def lost_notices(session: Session, sent_before: dt.datetime,
                 created_after: dt.datetime, limit: int) -> list[Notice]:
    """Return notices not told yet whose submission is decided, created after a time: never
    sent (the broker refused them, or they waited for the decision), or sent before a time."""
    return [tuple(row) for row in session.execute(
        select(MergeRequestNotice.submission_id, MergeRequestNotice.merge_request_iid)
        .join(Submission, Submission.id == MergeRequestNotice.submission_id)
        .where(MergeRequestNotice.told_at.is_(None),
               MergeRequestNotice.created_at > created_after,
               Submission.outcome != PENDING,
               MergeRequestNotice.sent_at.is_(None) | (MergeRequestNotice.sent_at < sent_before))
        .order_by(MergeRequestNotice.created_at).limit(limit))]
