"""A course's assignments: configured ones plus directories holding test.yaml in the reference."""

from __future__ import annotations

import logging
import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import CourseSettings
from pipeline.ledger.db import transaction
from pipeline.ledger.models import CourseAssignment, utcnow
from pipeline.repos import RepositoryCache

log = logging.getLogger(__name__)

SPEC_FILE = "test.yaml"
# Seconds a web process reuses the list it read; discovery itself runs in the worker.
CACHE_SECONDS = 5.0


def discover(repositories: RepositoryCache, sessions: sessionmaker[Session],
             course: CourseSettings) -> list[str]:
    """Fetch the reference and record the directories that hold test.yaml; return them."""
    sha = repositories.resolve_branch(course.reference_project, course.reference_branch)
    directories = sorted(path.rsplit("/", 1)[0] for path in
                         repositories.list_files(course.reference_project, sha)
                         if path.endswith("/" + SPEC_FILE))
    record(sessions, course.name, sha, directories)
    return directories


def record(sessions: sessionmaker[Session], course: str, reference_sha: str,
           directories: list[str]) -> None:
    """Replace a course's discovered assignments with the ones seen at a reference commit."""
    with transaction(sessions) as session:
        session.execute(delete(CourseAssignment).where(CourseAssignment.course == course))
        now = utcnow()
        session.add_all(CourseAssignment(course=course, directory=d, reference_sha=reference_sha,
                                         seen_at=now) for d in directories)


class AssignmentDirectory:
    """Known assignments per course for the web process, read from the ledger and cached."""

    def __init__(self, sessions: sessionmaker[Session], max_age: float = CACHE_SECONDS):
        self._sessions = sessions
        self._max_age = max_age
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    def known(self, course: CourseSettings) -> tuple[str, ...]:
        """Return the configured assignments, then the discovered ones, without duplicates."""
        configured = tuple(a.directory for a in course.assignments)
        if not course.discover_assignments:
            return configured
        cached = self._cache.get(course.name)
        if cached is None or time.monotonic() - cached[0] > self._max_age:
            with self._sessions() as session:
                found = tuple(session.scalars(
                    select(CourseAssignment.directory)
                    .where(CourseAssignment.course == course.name)
                    .order_by(CourseAssignment.directory)))
            cached = (time.monotonic(), found)
            self._cache[course.name] = cached
        return tuple(dict.fromkeys(configured + cached[1]))
