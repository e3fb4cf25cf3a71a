"""Record decided deliveries, a batch per transaction, then hand their runs to the broker."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Sequence

from sqlalchemy import ColumnElement, Select, and_, bindparam, insert, or_, select, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.dispatch import send_delivery
from pipeline.ledger.locks import lock_names_for_ledger_work
from pipeline.ledger.models import Delivery, RunStatus, TestRun
from pipeline.ledger.run_locks import branch_lock, commit_lock, merge_request_lock
from pipeline.publisher import Publisher
from pipeline.regrade import REUSABLE_STATUSES
from pipeline.submissions.ledger import MERGE_REQUEST_SOURCE, record_submissions, submission_row
from webhooks.group_commit import GroupCommit
from webhooks.intake_plan import Answer, BatchPlan, Delivered, KnownRun

log = logging.getLogger(__name__)

# Merge request actions after which GitLab shows a merge request that had no comment yet.
NEW_MERGE_REQUEST_ACTIONS = ("open", "reopen")
DELIVERIES = Delivery.__table__
RUNS = TestRun.__table__
KNOWN_COLUMNS = (RUNS.c.id, RUNS.c.project_path, RUNS.c.ref, RUNS.c.assignment,
                 RUNS.c.commit_sha, RUNS.c.merge_request_iid, RUNS.c.status)
INSERT_DELIVERIES = insert(DELIVERIES)
INSERT_RUNS = insert(RUNS)
END_RUN = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"), RUNS.c.status == RunStatus.QUEUED)
    .values(status=bindparam("end_status"), superseded_by=bindparam("end_superseded_by"),
            status_reason=bindparam("end_reason"), stage="done",
            finished_at=bindparam("end_at")))
# The keys the locking read looks runs up by, named in its bound parameters, in the order the
# batch's groups of keys come: branches, merge requests, commits.
KEY_GROUPS = (("branch", (RUNS.c.project_path, RUNS.c.ref, RUNS.c.assignment)),
              ("merge_request", (RUNS.c.project_path, RUNS.c.merge_request_iid)),
              ("commit", (RUNS.c.project_path, RUNS.c.commit_sha, RUNS.c.assignment)))
SELECT_ANSWERS = select(DELIVERIES.c.delivery_key, DELIVERIES.c.response_status,
                        DELIVERIES.c.response_body)


class Intake:
    """Record deliveries in group commits and publish what each batch asks for.

    Each request thread submits its delivery and waits for its answer; deliveries that arrive
    while a batch is being written share the next transaction and the next broker round trip.
    """

    def __init__(self, engine: Engine, sessions: sessionmaker[Session],
                 publisher: Publisher) -> None:
        self._engine = engine
        self._sessions = sessions
        self._publisher = publisher
        self._batches: GroupCommit[Delivered, Answer] = GroupCommit(self.record)

    def submit(self, delivered: Delivered) -> Answer:
        """Record one delivery (with whatever arrives alongside) and return its answer."""
        return self._batches.submit(delivered)

    def record(self, batch: Sequence[Delivered]) -> list[Answer | BaseException]:
        """Record a batch and publish its runs; a delivery that failed gets its error."""
        try:
            answers: list[Answer | BaseException] = list(record_deliveries(self._engine, batch))
        except (OperationalError, InterfaceError):
            raise
        except SQLAlchemyError:
            if len(batch) == 1:
                raise
            # One delivery the ledger refuses must not fail the others: record each alone.
            log.exception("a batch of %d deliveries failed; recording them one by one",
                          len(batch))
            answers = [self._write_alone(delivered) for delivered in batch]
        recorded = [(delivered, answer) for delivered, answer in zip(batch, answers)
                    if isinstance(answer, Answer)]
        send_delivery(self._publisher, self._sessions,
                      [run for _, answer in recorded for run in answer.to_send],
                      [reported_runs(delivered, answer) for delivered, answer in recorded
                       if not answer.duplicate],
                      [notice for _, answer in recorded if not answer.duplicate
                       for notice in answer.decided_elsewhere])
        return answers

    def _write_alone(self, delivered: Delivered) -> Answer | BaseException:
        try:
            return record_deliveries(self._engine, [delivered])[0]
        except SQLAlchemyError as exc:
            return exc


def reported_runs(delivered: Delivered, answer: Answer) -> list[str]:
    """Return the runs whose new state GitLab should show: queued, superseded or cancelled.

    A merge request just opened (or reopened) whose head commit was graded already names that
    run too: its comment is written when the run is reported. (An update's reused run is the
    push's, still to end: its final report writes the comment.)
    """
    body = answer.body
    event = delivered.event
    reused = body.get("existing_runs", ()) \
        if event.kind == "merge_request" and event.action in NEW_MERGE_REQUEST_ACTIONS else ()
    return [*(run_id for run_id, _ in answer.to_send), *body.get("superseded", ()),
            *body.get("cancelled", ()), *reused]


def record_deliveries(engine: Engine, batch: Sequence[Delivered]) -> list[Answer]:
    """Store deliveries and what they ask for in one transaction; return their answers.

    A delivery whose key is already stored, or appears earlier in the batch, gets the first
    answer and creates nothing. The unique delivery key decides, not luck: when another
    transaction commits the same key first, the insert fails, this transaction rolls back,
    and the batch is written again without the deliveries now answered from the ledger.
    """
    first: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for index, delivered in enumerate(batch):
        repeats_of = first.setdefault(delivered.event.delivery_key, index)
        if repeats_of != index:
            repeats[index] = repeats_of
    answers: dict[int, Answer] = {}
    pending = [index for index in range(len(batch)) if index not in repeats]
    while pending:
        try:
            with engine.begin() as connection:
                answers.update(zip(pending, _record(connection, [batch[i] for i in pending])))
            break
        except IntegrityError:
            stored = _stored_answers(engine, [batch[i].event.delivery_key for i in pending])
            if not stored:
                raise
            for index in pending:
                key = batch[index].event.delivery_key
                if key in stored:
                    log.info("delivery %s repeats a stored one; answering as the first time",
                             key)
                    answers[index] = stored[key]
            pending = [index for index in pending if index not in answers]
    for index, repeated in repeats.items():
        answers[index] = dataclasses.replace(answers[repeated], to_send=(), duplicate=True,
                                             decided_elsewhere=())
    return [answers[index] for index in range(len(batch))]


def _record(connection: Connection, batch: Sequence[Delivered]) -> list[Answer]:
    plan = BatchPlan(_known_runs(connection, batch))
    for delivered in batch:
        plan.add(delivered)
    answers = plan.answers()
    connection.execute(INSERT_DELIVERIES, [recorded.delivery_row for recorded in plan.recorded])
    if plan.new_rows:
        connection.execute(INSERT_RUNS, list(plan.new_rows.values()))
    if plan.ended:
        connection.execute(END_RUN, [
            dict(run_id=run_id, end_status=values["status"],
                 end_superseded_by=values["superseded_by"], end_reason=values["status_reason"],
                 end_at=values["finished_at"]) for run_id, values in plan.ended.items()])
    recorded = record_submissions(connection, [
        submission_row(dict(id=run_id, course=delivered.course.name,
                            assignment=request.assignment, project_id=delivered.event.project_id,
                            project_path=delivered.event.project_path,
                            commit_sha=request.commit_sha),
                       source=MERGE_REQUEST_SOURCE, received_at=received_at,
                       requested_by=request.requested_by_user_id, branch=request.branch,
                       merge_request_iid=request.merge_request_iid)
        for delivered, request, run_id, received_at in plan.submissions])
    positions = {id(delivered): index for index, delivered in enumerate(batch)}
    for row in recorded.decided_elsewhere:
        delivered, request, _, _ = plan.submissions[row]
        index = positions[id(delivered)]
        answers[index] = dataclasses.replace(answers[index], decided_elsewhere=(
            *answers[index].decided_elsewhere,
            (recorded.ids[row], request.merge_request_iid)))
    return answers


def _known_runs(connection: Connection, batch: Sequence[Delivered]) -> list[KnownRun]:
    """Lock the runs the batch may end or reuse and return them, oldest first."""
    # The keys whose runs the batch may end (a push's branch, a closed merge request) or reuse.
    branches, merge_requests, commits = set(), set(), set()
    # The keys of the runs the batch may add, which whoever ends or reuses runs must see: a
    # push superseding its branch's, a close cancelling its merge request's, a request for a
    # commit reusing its runs (a retest's too, though a retest itself reuses none).
    new_branches, new_merge_requests, new_commits = set(), set(), set()
    for delivered in batch:
        event, decision = delivered.event, delivered.decision
        if getattr(decision, "cancel", None):
            merge_requests.add((event.project_path, decision.cancel.merge_request_iid))
        for request in getattr(decision, "requests", ()):
            branch = (event.project_path, request.branch, request.assignment)
            commit = (event.project_path, request.commit_sha, request.assignment)
            new_branches.add(branch)
            new_commits.add(commit)
            if request.merge_request_iid is not None:
                new_merge_requests.add((event.project_path, request.merge_request_iid))
            if request.supersedes:
                branches.add(branch)
            if event.kind != "note":
                commits.add(commit)
    # Another process may be recording a delivery for the same branch, merge request or
    # commit at this moment: whichever locks it first writes first, and the other then reads
    # what it wrote (row locks alone would not show it the other's new runs). Regrades and the
    # reconciler's sweep of unseen branch heads take the same locks, all in one sorted
    # statement as here, so that none of them deadlocks with another.
    names = [*(branch_lock(*key) for key in new_branches),
             *(merge_request_lock(*key) for key in merge_requests | new_merge_requests),
             *(commit_lock(*key) for key in new_commits)]
    if names:
        lock_names_for_ledger_work(connection, names)
    if not (branches or merge_requests or commits):
        return []
    keys = [_padded(sorted(group)) for group in (branches, merge_requests, commits)]
    rows = connection.execute(_select_known(*map(len, keys)), {
        f"{name}{n}_{m}": value for (name, _), group in zip(KEY_GROUPS, keys)
        for n, key in enumerate(group) for m, value in enumerate(key)})
    return [KnownRun(*row[:-1]) for row in sorted(rows, key=_oldest_first)]


def _oldest_first(row) -> tuple:
    queued_at = row[-1]
    return (queued_at is not None, queued_at or 0, row[0])


def _padded(keys: list[tuple]) -> list[tuple]:
    """Repeat the last key up to the next power of two: a few statement shapes serve all."""
    if not keys:
        return keys
    return keys + [keys[-1]] * ((1 << (len(keys) - 1).bit_length()) - len(keys))


def _keys_in(name: str, columns: tuple, count: int) -> ColumnElement[bool]:
    """Return `columns IN (...)` over `count` tuples, a bound parameter per value."""
    return tuple_(*columns).in_([
        tuple_(*(bindparam(f"{name}{n}_{m}", type_=column.type)
                 for m, column in enumerate(columns))) for n in range(count)])


@functools.cache
def _select_known(branches: int, merge_requests: int, commits: int) -> Select:
    """Return the statement that locks the runs a batch may end or reuse.

    Those it may end are the queued runs of pushed branches and closed merge requests; those
    it may reuse grade a requested commit already. Rows are locked in id order, so that two
    batches sharing runs wait for each other instead of deadlocking. Each key value has a
    bound parameter of its own, not an expanding list: a shape's SQL text never changes, so
    SQLAlchemy compiles it once and the driver prepares it once.
    """
    branch_keys, merge_request_keys, commit_keys = (
        _keys_in(name, columns, count) if count else None
        for (name, columns), count in zip(KEY_GROUPS, (branches, merge_requests, commits)))
    ending = [keys for keys in (branch_keys, merge_request_keys) if keys is not None]
    return (select(*KNOWN_COLUMNS, RUNS.c.queued_at)
            .where(or_(*([and_(RUNS.c.status == RunStatus.QUEUED, or_(*ending))]
                         if ending else []),
                       *([and_(or_(*(RUNS.c.status == status for status in REUSABLE_STATUSES)),
                               commit_keys)] if commit_keys is not None else [])))
            .order_by(RUNS.c.id).with_for_update())


def _stored_answers(engine: Engine, keys: list[str]) -> dict[str, Answer]:
    with engine.connect() as connection:
        rows = connection.execute(SELECT_ANSWERS.where(DELIVERIES.c.delivery_key.in_(keys)))
        return {key: Answer(status, body, duplicate=True) for key, status, body in rows}
