"""A course's assignments: configured ones plus directories holding test.yaml in the reference."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import CourseSettings, SandboxSettings
from pipeline.directory_names import DIRECTORY_RULE, MAX_DIRECTORY_LENGTH, is_directory_name
from pipeline.grading.gradable import Gradability, gradability
from pipeline.ledger.db import transaction
from pipeline.ledger.models import CourseAssignment, utcnow
from pipeline.repos import RepositoryCache

log = logging.getLogger(__name__)

SPEC_FILE = "test.yaml"
# Seconds a web process reuses the list it read; discovery itself runs in the worker.
CACHE_SECONDS = 5.0
SKIPPED = ("course %s: %r holds %s at reference commit %s but is no assignment: %s; rename "
           "the folder to have it graded")
# Reference folders whose check (below) a process keeps: a few commits of every course's
# assignments.
FOLDERS_REMEMBERED = 4096
TOO_LONG = "its path has {length} characters, more than the {most} an assignment's may have"
NOT_A_DIRECTORY = "an assignment directory must be " + DIRECTORY_RULE


def spec_directories(files: Iterable[str]) -> list[str]:
    """Return the directories holding a test.yaml among a commit's files, sorted."""
    return sorted(path.rsplit("/", 1)[0] for path in files if path.endswith("/" + SPEC_FILE))


def folders_without_files(files: Iterable[str], directories: Iterable[str]) -> list[str]:
    """Return the directories, in their order, that hold none of a commit's files."""
    holding = {path.rsplit("/", depth)[0] for path in files
               for depth in range(1, path.count("/") + 1)}
    return [directory for directory in directories if directory not in holding]


@functools.lru_cache(maxsize=FOLDERS_REMEMBERED)
def folder_gradability(tree: Path, directory: str, sandbox: SandboxSettings) -> Gradability:
    """Return what every run of a folder of a reference commit's extracted files meets before a
    student's files matter (pipeline.grading.gradable, its pytest files collected in a sandbox of
    those settings), checked once per commit and folder in a process: the tree's path names the
    commit, whose files never change."""
    return gradability(tree / directory, tree, sandbox)


def discover(repositories: RepositoryCache, sessions: sessionmaker[Session],
             course: CourseSettings) -> list[str]:
    """Fetch the reference and record the directories that hold test.yaml; return them.

    A directory whose path gradehook would refuse to grade is left out, and logged for staff:
    a warning the first time a reference commit is seen, not on every sweep.
    """
    sha = repositories.resolve_branch(course.reference_project, course.reference_branch)
    found = spec_directories(repositories.list_files(course.reference_project, sha))
    with sessions() as session:
        seen = session.scalar(select(CourseAssignment.reference_sha)
                              .where(CourseAssignment.course == course.name).limit(1))
    level = logging.DEBUG if seen == sha else logging.WARNING
    directories = []
    for directory in found:
        refusal = _refusal(directory)
        if refusal is None:
            directories.append(directory)
        else:
            log.log(level, SKIPPED, course.name, directory, SPEC_FILE, sha[:12], refusal)
    record(sessions, course.name, sha, directories)
    return directories


def _refusal(directory: str) -> str | None:
    """Return why a path holding test.yaml cannot be an assignment directory, if it cannot."""
    if len(directory) > MAX_DIRECTORY_LENGTH:
        return TOO_LONG.format(length=len(directory), most=MAX_DIRECTORY_LENGTH)
    if not is_directory_name(directory):
        return NOT_A_DIRECTORY
    return None


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
