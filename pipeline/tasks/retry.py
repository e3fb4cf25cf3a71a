"""The one retry layer for failures of ours: which errors are worth a retry, and when."""

from __future__ import annotations

import random

from sqlalchemy.exc import OperationalError, InterfaceError

from pipeline.grading.errors import EngineError
from pipeline.repos import InvalidInputError, MissingCommitError, RepositoryError

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0


def is_transient(exc: BaseException) -> bool:
    """Tell whether an error is ours and passing: git, sandbox, database or broker trouble."""
    if isinstance(exc, (InvalidInputError, MissingCommitError)):
        return False
    return isinstance(exc, (RepositoryError, EngineError, OperationalError, InterfaceError,
                            ConnectionError, TimeoutError))


def backoff_seconds(retries: int) -> float:
    """Return the wait before retry number `retries` + 1: exponential, capped, with jitter."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retries) * random.uniform(0.5, 1.5)
