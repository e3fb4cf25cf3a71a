"""The one retry layer for failures of ours: which errors are worth a retry, and when."""

from __future__ import annotations

import errno
import logging
import os
import random
from collections.abc import Mapping
from typing import Callable, TypeVar

from celery import Task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from gitlab_client import TransientGitLabError
from pipeline.grading.errors import EngineError
from pipeline.host_places import hide_places
from pipeline.repos import InvalidInputError, MissingCommitError, RepositoryError

log = logging.getLogger(__name__)

T = TypeVar("T")
TIME_LIMIT_REASON = "stopped by the time limit of {limit:g} s"
GAVE_UP_REASON = "gave up after {attempts} attempts: {error}"
RETRYING_REASON = "attempt {attempt} failed ({error}); trying again in {seconds:.0f} s"
DATABASE_WAIT_REASON = ("the database did not answer; attempt {attempt} waits for it and starts "
                        "again in {seconds:.0f} s")
UNEXPECTED_REASON = "unexpected error in gradehook ({error}); it has been logged"
# Students read the reason: the driver's text (the statement, the server's address, a link to
# SQLAlchemy's documentation) is for the log.
DATABASE_FAILED = "the database failed ({error}); it has been logged"
STORAGE_FAILED = "the grading server could not write to its disk ({error}); it has been logged"
# The host's disk full, over its quota or read-only: the run's files could not be written, which
# passes once staff make room.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# PostgreSQL's errors of a server that cannot be reached or is going away: a connection
# exception (class 08), or the server shutting down, crashed, or starting up (57P01-57P03).
# The driver's own connection failures carry no code at all, as do the statements it refuses
# before sending them (a NUL character in a text value): only its connection errors
# (OperationalError, InterfaceError) without a code are the database away.
DATABASE_AWAY_CLASS = "08"
DATABASE_AWAY_CODES = frozenset({"57P01", "57P02", "57P03"})

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0
BACKOFF_JITTER = 0.5  # each wait is its base times a random factor in 1 ± this


def is_transient(exc: BaseException) -> bool:
    """Tell whether an error is ours and passing: git, sandbox, database, disk or broker faults."""
    if isinstance(exc, (InvalidInputError, MissingCommitError)):
        return False
    return _is_storage_error(exc) or isinstance(
        exc, (RepositoryError, EngineError, TransientGitLabError, OperationalError,
              InterfaceError, ConnectionError, TimeoutError))


def is_database_away(exc: BaseException) -> bool:
    """Tell whether an error is the ledger's database not answering (stopped, restarting,
    unreachable), as opposed to one query failing on a database that answers."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    # SQLite's errors carry no SQLSTATE: the embedded ledger is a file, never away.
    if not hasattr(exc.orig, "sqlstate"):
        return False
    code = exc.orig.sqlstate
    if code is None:
        return isinstance(exc, (OperationalError, InterfaceError))
    return code.startswith(DATABASE_AWAY_CLASS) or code in DATABASE_AWAY_CODES


def _is_storage_error(exc: BaseException) -> bool:
    """Tell whether an error is the host's disk refusing a write (full, over quota, read-only)."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def drive(task: Task, work: Callable[[], T], end: Callable[[str], T], *, soft_limit: float,
          max_attempts: int, what: str, places: Mapping[str, str | os.PathLike],
          database_wait: float, database_waits: int = 0, ending: str | None = None,
          expected: tuple[type[Exception], ...] = (),
          retrying: Callable[[str], None] | None = None,
          claimed: Callable[[], bool] = lambda: False,
          coming: Callable[[], None] = lambda: None) -> T:
    """Run a task's work under the one retry layer, so that it always ends with a reason.

    At the soft time limit, struck in the work or as its failure is handled (its retry being
    sent included), `end` records why; a database that does not answer is waited for,
    tried again every `database_wait` seconds or so for as long as it stays away, without using
    up an attempt (the task was handed `database_waits`, the waits so far, and is handed one
    more; when it was away as `end` recorded a reason, the task is handed that reason as
    `ending`, and records it without working again; when the work had `claimed` its item, as
    `resumes`, the attempt it continues: see `resumes_attempt`); another passing fault of ours
    is retried with back-off until the last attempt (`retrying` is told why and when), then
    ended; an `expected` error ends with its own message; anything else is ended as an
    unexpected error, logged with its traceback and raised again. Before each retry or wait is
    sent, `coming` notes that the task is alive and tries again soon: neither the reason nor
    the end may be written while the database is away. The reasons name this host's `places`
    by their roles (pipeline.host_places): students read them; the log keeps the error as it
    was.
    """
    def record_end(reason: str) -> T:
        try:
            return end(reason)
        except Exception as exc:
            if not is_database_away(exc):
                raise
            log.warning("%s: recording its end met the database away, waiting for it: %s",
                        what, exc)
            coming()
            raise _wait_for_database(task, exc, _jittered(database_wait), database_waits,
                                     ending=reason)

    def try_work() -> T:
        try:
            return work()
        except Exception as exc:
            if _behind(exc, SoftTimeLimitExceeded):
                raise
            return handle_failure(exc)

    def handle_failure(exc: Exception) -> T:
        attempts = attempt_number(task, database_waits)
        if is_database_away(exc):
            log.warning("%s: attempt %d met the database away, waiting for it: %s", what,
                        attempts, exc)
            countdown = _jittered(database_wait)
            coming()
            # Written only if the database came back meanwhile: the API then shows why.
            _tell_retrying(retrying, DATABASE_WAIT_REASON.format(attempt=attempts,
                                                                 seconds=countdown), what)
            raise _wait_for_database(task, exc, countdown, database_waits,
                                     **({"resumes": attempts} if claimed() else {}))
        if is_transient(exc):
            error = _shown_error(exc, places)
            if attempts < max_attempts:
                log.warning("%s: attempt %d failed, retrying: %s", what, attempts, exc)
                countdown = backoff_seconds(attempts - 1)
                coming()
                _tell_retrying(retrying, RETRYING_REASON.format(attempt=attempts, error=error,
                                                                seconds=countdown), what)
                # This layer counts the attempts: Celery's own limit (max_retries, 3 unless
                # told) would raise the error instead, and leave the run without an end.
                raise task.retry(exc=exc, countdown=countdown,
                                 max_retries=max_attempts + database_waits)
            log.warning("%s: attempt %d failed, giving up: %s", what, attempts, exc)
            return record_end(GAVE_UP_REASON.format(attempts=attempts, error=error))
        if isinstance(exc, expected):
            log.warning("%s: ended by %s: %s", what, type(exc).__name__, exc)
            return record_end(hide_places(str(exc), places))
        log.exception("%s: unexpected error", what)
        record_end(UNEXPECTED_REASON.format(error=type(exc).__name__))
        raise exc

    if ending is not None:
        return record_end(ending)
    try:
        return try_work()
    except Exception as exc:
        # Only a failure the limit is not behind is handled: the limit behind an error out of
        # the handling struck during it.
        if not _behind(exc, SoftTimeLimitExceeded):
            raise
        if not isinstance(exc, SoftTimeLimitExceeded):
            # The limit struck inside a call that then failed on it: a database query cut
            # short raises the driver's error while the limit is handled, and Celery's
            # Task.retry turns a send it cut short into Reject, which drops the task's message.
            log.warning("%s: the time limit struck inside a call that failed on it: %s",
                        what, exc)
        return record_end(TIME_LIMIT_REASON.format(limit=task.soft_time_limit or soft_limit))


def attempt_number(task: Task, database_waits: int) -> int:
    """Return the attempt a task's delivery is in: its retries, less its waits for the
    database, which continue the attempt they interrupted."""
    return task.request.retries + 1 - database_waits


def resumes_attempt(task: Task, database_waits: int, resumes: int | None) -> bool:
    """Tell whether a task's delivery continues an attempt that claimed its item before it
    waited for the database (`resumes`, as `drive` handed it): claiming it again is no new
    attempt."""
    return resumes == attempt_number(task, database_waits)


def _wait_for_database(task: Task, exc: Exception, countdown: float, database_waits: int,
                       **handed: str | int) -> Retry:
    """Send the task again to start in `countdown` seconds, handed one more wait for the
    database (and `handed`, what to do then), as the same attempt; return the retry to raise."""
    return task.retry(kwargs={**task.request.kwargs, "database_waits": database_waits + 1,
                              **handed},
                      exc=exc, countdown=countdown, max_retries=task.request.retries + 1)


def _behind(exc: BaseException, kind: type[BaseException]) -> bool:
    """Tell whether an error is, or was raised while handling or because of, one of a kind."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _shown_error(exc: Exception, places: Mapping[str, str | os.PathLike]) -> str:
    """Word a passing fault for the reason students read: a database or disk error by its kind."""
    if isinstance(exc, DBAPIError):
        return DATABASE_FAILED.format(error=type(exc).__name__)
    if _is_storage_error(exc):
        return STORAGE_FAILED.format(error=os.strerror(exc.errno))
    return hide_places(str(exc), places)


def _tell_retrying(retrying: Callable[[str], None] | None, reason: str, what: str) -> None:
    """Pass on why a retry comes; the fault being retried (a database outage) may stop that
    too, and must not stop the retry."""
    if retrying is None:
        return
    try:
        retrying(reason)
    except Exception as exc:  # whatever keeps the note from being written
        log.warning("%s: could not record the retry: %s", what, exc)


def backoff_seconds(retries: int) -> float:
    """Return the wait before retry number `retries` + 1: exponential, capped, with jitter."""
    return _jittered(_backoff_base(retries))


def longest_backoff_seconds(max_attempts: int, database_wait: float) -> float:
    """Return the longest wait before any retry when a task makes at most `max_attempts`, or
    waits `database_wait` seconds between its tries of a database that does not answer."""
    return max(_backoff_base(max(0, max_attempts - 2)), database_wait) * (1 + BACKOFF_JITTER)


def all_backoffs_seconds(max_attempts: int) -> float:
    """Return the longest a task making at most `max_attempts` waits between them, in all."""
    return sum(_backoff_base(retries) for retries in range(max_attempts - 1)) \
        * (1 + BACKOFF_JITTER)


def _jittered(seconds: float) -> float:
    """Return a wait of about `seconds`: a random factor of 1 ± BACKOFF_JITTER apart."""
    return seconds * random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


def _backoff_base(retries: int) -> float:
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retries)
