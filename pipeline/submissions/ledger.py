"""Submission rows in the ledger: record requests once, count, lock, and read what judging needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from pipeline.dispatch import new_task_id
from pipeline.ledger.db import conflict_insert, transaction
from pipeline.ledger.locks import lock_name, lock_name_for_ledger_work
from pipeline.ledger.models import RunStatus, Submission, TestRun, new_id, utcnow
from pipeline.submissions.notices import record_notices
from pipeline.submissions.verdict import ACCEPTED, ERROR, PENDING, REFUSED

SUBMISSIONS = Submission.__table__
API_SOURCE, MERGE_REQUEST_SOURCE = "api", "merge_request"
GRADED_STATUSES = (RunStatus.PASSED, RunStatus.FAILED)
UNIQUE_COLUMNS = ("project_path", "assignment", "commit_sha")
SUBMISSION_LOCK = "submission"
# When gradehook first received a submission's commit: what a student's submissions go by.
COUNTED_AT = func.coalesce(Submission.counted_at, Submission.received_at)


def submission_row(run: TestRun | dict, *, source: str, received_at: dt.datetime,
                   requested_by: int | None = None, branch: str | None = None,
                   merge_request_iid: int | None = None) -> dict:
    """Return the values of a new pending submission of a run's commit and assignment."""
    field = run.get if isinstance(run, dict) else (lambda name: getattr(run, name))
    return dict(id=new_id(), run_id=field("id"), course=field("course"),
                assignment=field("assignment"), project_id=field("project_id"),
                project_path=field("project_path"), commit_sha=field("commit_sha"),
                branch=branch, merge_request_iid=merge_request_iid, received_at=received_at,
                outcome=PENDING, late=False, celery_task_id=new_task_id(), source=source,
                requested_by_user_id=requested_by)


@dataclass(frozen=True)
class RecordedSubmissions:
    """What record_submissions did: each row's submission id, and the rows (their positions)
    whose merge request handed in a commit already decided through another one (or the API):
    that merge request's comment is to say so."""

    ids: list[str]
    decided_elsewhere: list[int]


def record_submissions(connection: Connection, rows: Sequence[dict]) -> RecordedSubmissions:
    """Insert submissions; a commit already submitted keeps its first row.

    The same (project, assignment, commit) is one submission. A repeat leaves an accepted or
    refused submission as it is; one that ended in error (a failure of ours or of the course,
    never the student's), or was withdrawn with its merge request and comes again through a
    merge request (that one reopened or pointed back at the submission branch, or a new one), is
    processed again with the repeat's run and a new task id. A repeat through another merge
    request that makes it so takes it over: it is handed in through that one, received when
    that one's hand-in was. One that finds it waiting to be processed leaves it to the merge
    request (or the API) holding it, whatever the order of their hooks; its processing hands it
    over to the first later one still handing the commit in if that one no longer does
    (pipeline.submissions.succession). A repeat through the API takes
    a withdrawn one over the same way: it is handed in through the API, received when the API
    was asked. One accepted or refused through another merge request (or the API) stays so:
    that repeat is returned among the decided elsewhere, handing nothing in. Every repeat
    through a merge request that does not hold the submission gets a notice (its comment is to
    say where and how the commit was decided): to be sent now when it is decided, else told once
    it is, by its publishing.

    The webhook intake records here: nothing may hold a submission's row while it calls GitLab
    (publishing leaves the row unlocked, and leaves one made pending again to its new task), so
    these statements wait for others' ledger work at most, never for GitLab.
    """
    if not rows:
        return RecordedSubmissions([], [])
    connection.execute(conflict_insert(connection, SUBMISSIONS).on_conflict_do_nothing(
        index_elements=list(UNIQUE_COLUMNS)), list(rows))
    ids, decided_elsewhere, to_tell, waiting = [], [], [], []
    for position, row in enumerate(rows):
        key = [SUBMISSIONS.c[name] == row[name] for name in UNIQUE_COLUMNS]
        handed_in = SUBMISSIONS.c.hand_ins + 1
        through_merge_request = row["merge_request_iid"] is not None
        # A pending one first: a judge holding its row now (it may be withdrawing it) is waited
        # for, and once it has committed the next statement sees its decision. A judge yet to
        # lock the row waits for this transaction and finds the hand-in counted.
        connection.execute(update(SUBMISSIONS).where(*key, SUBMISSIONS.c.outcome == PENDING)
                           .values(hand_ins=handed_in))
        withdrawn = and_(SUBMISSIONS.c.outcome == REFUSED, SUBMISSIONS.c.withdrawn)
        again = [SUBMISSIONS.c.outcome == ERROR, *([withdrawn] if through_merge_request else [])]
        handed_in_again = dict(**pending_again(), run_id=row["run_id"], hand_ins=handed_in,
                               failing_since=None)
        connection.execute(update(SUBMISSIONS).where(*key, or_(*again))
                           .values(**handed_in_again))
        if not through_merge_request:
            # Withdrawn with its merge request: the API hands it in instead, as a new merge
            # request would, through the submission branch once it is accepted.
            connection.execute(update(SUBMISSIONS).where(*key, withdrawn).values(
                **handed_in_again, source=API_SOURCE, branch=None, merge_request_iid=None,
                previous_merge_request_iid=SUBMISSIONS.c.merge_request_iid,
                requested_by_user_id=row["requested_by_user_id"],
                received_at=row["received_at"]))
        else:
            # Made pending again just now, by this hand-in through another merge request: this
            # one takes it over. One already pending stays with the merge request holding it.
            connection.execute(update(SUBMISSIONS).where(
                *key, SUBMISSIONS.c.celery_task_id == handed_in_again["celery_task_id"],
                SUBMISSIONS.c.source == MERGE_REQUEST_SOURCE,
                SUBMISSIONS.c.merge_request_iid != row["merge_request_iid"]).values(
                previous_merge_request_iid=SUBMISSIONS.c.merge_request_iid,
                merge_request_iid=row["merge_request_iid"], branch=row["branch"],
                received_at=row["received_at"]))
        submission_id, outcome, merge_request_iid = connection.execute(
            select(SUBMISSIONS.c.id, SUBMISSIONS.c.outcome, SUBMISSIONS.c.merge_request_iid)
            .where(*key)).one()
        ids.append(submission_id)
        if through_merge_request and merge_request_iid != row["merge_request_iid"]:
            notice = (submission_id, row["merge_request_iid"])
            if outcome in (ACCEPTED, REFUSED):
                decided_elsewhere.append(position)
                to_tell.append(notice)
            else:
                waiting.append(notice)
    record_notices(connection, to_tell, waiting)
    return RecordedSubmissions(ids, decided_elsewhere)


def pending_again() -> dict:
    """Return the values that make a decided submission pending, to be processed anew under a
    new task id; it keeps its receipt time, so the deadline is judged as before."""
    return dict(outcome=PENDING, reason=None, late=False, withdrawn=False, retry_at=None,
                celery_task_id=new_task_id(), decided_at=None, finished_at=None, sent_at=None,
                submission_limit=None, submissions_used=None)


def request_submission(sessions: sessionmaker[Session], run_id: str, *,
                       requested_by: int | None = None) -> Submission:
    """Record the hand-in of a run's commit through the API and return its one submission."""
    with transaction(sessions) as session:
        run = session.get(TestRun, run_id)
        row = submission_row(run, source=API_SOURCE, received_at=utcnow(),
                             requested_by=requested_by)
        submission_id, = record_submissions(session.connection(), [row]).ids
        return session.get(Submission, submission_id)


def lock_student_assignment(session: Session, project_path: str, assignment: str) -> None:
    """Serialise the processing of one student's assignment until the transaction ends.

    PostgreSQL takes a transaction-scoped advisory lock; the embedded SQLite ledger (one host)
    takes none here: see lock_for_judging for the step that must not run twice at once.
    """
    lock_name(session, SUBMISSION_LOCK, project_path, assignment)


def lock_for_judging(session: Session, project_path: str, assignment: str) -> None:
    """Lock as lock_student_assignment does before counting a student's submissions.

    Call it first in a transaction that touches nothing but the ledger: on SQLite a second
    judge then waits instead of counting figures this one is about to change.
    """
    lock_name_for_ledger_work(session, SUBMISSION_LOCK, project_path, assignment)


def counted_time(session: Session, submission: Submission) -> dt.datetime:
    """Return when gradehook first received the commit: its earliest run, else the request."""
    earliest = session.scalar(select(func.min(TestRun.received_at))
                              .where(TestRun.project_path == submission.project_path,
                                     TestRun.commit_sha == submission.commit_sha))
    requested = submission.received_at
    return requested if earliest is None else min(earliest, requested)


def earlier_pending(session: Session, submission: Submission) -> Submission | None:
    """Return a pending submission of the student's assignment whose commit gradehook received
    before this one's, if there is one: a limit counts submissions in the order received."""
    counted = counted_time(session, submission)
    others = session.scalars(select(Submission).where(
        Submission.project_path == submission.project_path,
        Submission.assignment == submission.assignment, Submission.outcome == PENDING,
        Submission.id != submission.id))
    return next((other for other in others if counted_time(session, other) < counted), None)


def pending_runs(session: Session, submission: Submission) -> list[str]:
    """Return the runs of the student's other pending submissions of the submission's
    assignment (its decision lets the later ones go on)."""
    return list(session.scalars(select(Submission.run_id).where(
        Submission.project_path == submission.project_path,
        Submission.assignment == submission.assignment, Submission.id != submission.id,
        Submission.outcome == PENDING, Submission.run_id.is_not(None))))


def graded_commit_number(session: Session, submission: Submission) -> int:
    """Return how many distinct commits of the assignment were graded up to this commit's first."""
    firsts = dict(session.execute(
        select(TestRun.commit_sha, func.min(TestRun.received_at))
        .where(TestRun.project_path == submission.project_path,
               TestRun.assignment == submission.assignment,
               TestRun.status.in_(GRADED_STATUSES))
        .group_by(TestRun.commit_sha)).all())
    own = firsts.get(submission.commit_sha)
    if own is None:
        return len(firsts) + 1
    return sum(1 for first in firsts.values() if first <= own)


def accepted_count(session: Session, submission: Submission) -> int:
    """Return how many other submissions of the student's assignment were accepted."""
    return session.scalar(select(func.count()).select_from(Submission).where(
        Submission.project_path == submission.project_path,
        Submission.assignment == submission.assignment, Submission.outcome == ACCEPTED,
        Submission.id != submission.id))


def merge_request_history(session: Session, submission: Submission,
                          merge_request_iid: int) -> list[Submission]:
    """Return the decided submissions of the assignment through one merge request and
    `submission`, oldest first."""
    return _oldest_first([*others_through(session, submission, merge_request_iid), submission])


def others_through(session: Session, submission: Submission,
                   merge_request_iid: int) -> list[Submission]:
    """Return the other decided submissions of the assignment through one merge request,
    oldest first."""
    return _oldest_first(session.scalars(select(Submission).where(
        Submission.project_path == submission.project_path,
        Submission.assignment == submission.assignment,
        Submission.merge_request_iid == merge_request_iid,
        Submission.outcome != PENDING, Submission.id != submission.id)))


def _oldest_first(submissions: Iterable[Submission]) -> list[Submission]:
    return sorted(submissions, key=lambda s: (s.decided_at or utcnow(), s.id))


@dataclass(frozen=True)
class CommitHandIns:
    """What the ledger holds of the hand-ins of a commit: how many (of all its assignments),
    and whether a submission of it was withdrawn with its merge request."""

    hand_ins: int
    withdrawn: bool


def commit_hand_ins(session: Session, project_path: str,
                    shas: Iterable[str]) -> dict[str, CommitHandIns]:
    """Return the hand-ins of those of a project's commits that have submissions."""
    found: dict[str, CommitHandIns] = {}
    for sha, hand_ins, withdrawn in session.execute(
            select(Submission.commit_sha, Submission.hand_ins, Submission.withdrawn)
            .where(Submission.project_path == project_path,
                   Submission.commit_sha.in_(set(shas)))):
        before = found.get(sha, CommitHandIns(0, False))
        found[sha] = CommitHandIns(before.hand_ins + hand_ins, before.withdrawn or withdrawn)
    return found


def waiting_on(session: Session, run_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Return (submission id, task id) of the pending submissions of some runs."""
    return list(session.execute(
        select(Submission.id, Submission.celery_task_id)
        .where(Submission.run_id.in_(list(run_ids)), Submission.outcome == PENDING)).all())


def gradings_of(project_path, commit_sha, assignment):
    """Select the runs that graded a commit for an assignment (passed or failed), newest first;
    of a submission's columns, correlated, or of plain values."""
    return (select(TestRun.id)
            .where(TestRun.project_path == project_path, TestRun.commit_sha == commit_sha,
                   TestRun.assignment == assignment, TestRun.status.in_(GRADED_STATUSES))
            .order_by(TestRun.finished_at.desc(), TestRun.id.desc()))


# The run whose grade a submission shows: the newest that graded its commit for its assignment
# (a regrade after a fix of the tests, say), else the run it was decided on.
SHOWN_RUN_ID = func.coalesce(
    gradings_of(Submission.project_path, Submission.commit_sha, Submission.assignment)
    .limit(1).correlate(Submission).scalar_subquery(),
    Submission.run_id)


def shown_run(session: Session, submission: Submission) -> TestRun | None:
    """Return the run whose grade a submission shows (SHOWN_RUN_ID), None if it has none."""
    latest = session.scalar(gradings_of(submission.project_path, submission.commit_sha,
                                        submission.assignment).limit(1))
    run_id = latest or submission.run_id
    return session.get(TestRun, run_id) if run_id else None


def regraded_by(session: Session, run_id: str) -> list[str]:
    """Return the decided submissions of a run's commit and assignment that another run was
    decided on: the run graded them again."""
    run = session.get(TestRun, run_id)
    return list(session.scalars(select(Submission.id).where(
        Submission.project_path == run.project_path, Submission.commit_sha == run.commit_sha,
        Submission.assignment == run.assignment, Submission.finished_at.is_not(None),
        Submission.run_id.is_distinct_from(run.id))))


def last_accepted(chosen, *, late: bool | None = None):
    """Keep, of the submissions `chosen` (a select of their ids), the accepted ones that are
    each project's last of each assignment (a gradebook's); only those late (or on time) when
    `late` is given."""
    ranked = chosen.where(Submission.outcome == ACCEPTED).add_columns(
        Submission.late,
        func.row_number().over(partition_by=(Submission.project_path, Submission.assignment),
                               order_by=(COUNTED_AT.desc(), Submission.id.desc())).label("rank")
    ).subquery()
    final = select(ranked.c.id).where(ranked.c.rank == 1)
    return final if late is None else final.where(ranked.c.late == late)
