"""The one retry layer for failures of ours: which errors are worth a retry, and when."""

from __future__ import annotations

import random

from sqlalchemy.exc import OperationalError, InterfaceError

from pipeline.grading.errors import EngineError
from pipeline.repos import InvalidInputError, MissingCommitError, RepositoryError

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0
BACKOFF_JITTER = 0.5  # each wait is its base times a random factor in 1 ± this


def is_transient(exc: BaseException) -> bool:
    """Tell whether an error is ours and passing: git, sandbox, database or broker trouble."""
    if isinstance(exc, (InvalidInputError, MissingCommitError)):
        return False
    return isinstance(exc, (RepositoryError, EngineError, OperationalError, InterfaceError,
                            ConnectionError, TimeoutError))


def backoff_seconds(retries: int) -> float:
    """Return the wait before retry number `retries` + 1: exponential, capped, with jitter."""
    return _backoff_base(retries) * random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


def longest_backoff_seconds(max_attempts: int) -> float:
    """Return the longest wait before any retry when a task makes at most `max_attempts`."""
    return _backoff_base(max(0, max_attempts - 2)) * (1 + BACKOFF_JITTER)


def _backoff_base(retries: int) -> float:
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retries)
