"""The courses' rosters the ledger keeps: each course's student projects as GitLab last listed
them in its groups, and when and how the last read of them went.

A read GitLab fails for the whole course (unreachable, or no token) keeps the listing read
before; a group GitLab refuses keeps its projects of the listing read before. Each problem
kept says since when its projects are those of an older listing (or that none was ever read).
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Mapping

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.ledger.db import transaction
from pipeline.ledger.locks import lock_name_for_ledger_work
from pipeline.ledger.models import CourseRoster, RosterProject


def keep_listing(sessions: sessionmaker[Session], course: str, read_at: dt.datetime,
                 projects: Mapping[str, int | None], unlisted_groups: Mapping[str, str]) -> None:
    """Keep a course's student projects GitLab listed in a read begun at `read_at`, in place of
    those kept before; a group GitLab refused (group -> its answer) keeps its projects kept
    before."""
    _keep(sessions, course, read_at, lambda session, before: _keep_listed(
        session, course, before, read_at, projects, unlisted_groups))


def keep_failure(sessions: sessionmaker[Session], course: str, read_at: dt.datetime,
                 reason: str) -> None:
    """Keep that a read of a course's student projects begun at `read_at` listed nothing, and
    why: the projects kept before stay."""
    _keep(sessions, course, read_at, lambda session, before: _keep_unlisted(
        session, course, before, read_at, reason))


def kept_since(problem: dict) -> dt.datetime | None:
    """Return when the projects kept for what a read could not list were listed; None: none
    ever were."""
    return dt.datetime.fromisoformat(problem["kept_from"]) if problem["kept_from"] else None


def _keep(sessions: sessionmaker[Session], course: str, read_at: dt.datetime,
          keep: Callable[[Session, CourseRoster | None], None]) -> None:
    """Keep a read of a course's roster unless a read begun later was kept meanwhile."""
    with transaction(sessions) as session:
        # Two reads at once (the beat's and the command's): one keeps its listing, then the
        # other, each from the rows the one before left; the one begun first keeps nothing
        # once the other's is kept.
        lock_name_for_ledger_work(session, "roster", course)
        before = session.get(CourseRoster, course)
        if before is None or before.read_at <= read_at:
            keep(session, before)


def _keep_unlisted(session: Session, course: str, before: CourseRoster | None,
                   read_at: dt.datetime, reason: str) -> None:
    """Keep a read GitLab failed as a whole: the projects listed before stay, with what the read
    before could not list."""
    listed_at = before.listed_at if before else None
    problems = [_problem(None, reason, listed_at)] + \
        [problem for problem in (before.problems if before else []) if problem["group"]]
    _keep_read(session, course, before, read_at, listed_at, problems)


def _keep_listed(session: Session, course: str, before: CourseRoster | None,
                 read_at: dt.datetime, listed: Mapping[str, int | None],
                 unlisted_groups: Mapping[str, str]) -> None:
    """Keep a course's listing in place of the one before; a group GitLab refused keeps its
    projects of the one before."""
    refused_before = {problem["group"]: problem
                      for problem in (before.problems if before else []) if problem["group"]}
    listed_before = before.listed_at if before else None
    previous = dict(session.execute(
        select(RosterProject.project_path, RosterProject.project_id)
        .where(RosterProject.course == course)).all())
    projects, problems = dict(listed), []
    for group, reason in sorted(unlisted_groups.items()):
        since = kept_since(refused_before[group]) if group in refused_before \
            else listed_before
        if since is not None:
            projects.update({path: project_id for path, project_id in previous.items()
                             if path.startswith(group + "/") and path not in projects})
        problems.append(_problem(group, reason, since))
    session.execute(delete(RosterProject).where(RosterProject.course == course))
    if projects:
        session.execute(insert(RosterProject), [
            {"course": course, "project_path": path, "project_id": project_id}
            for path, project_id in sorted(projects.items())])
    _keep_read(session, course, before, read_at, read_at, problems)


def _keep_read(session: Session, course: str, before: CourseRoster | None,
               read_at: dt.datetime, listed_at: dt.datetime | None, problems: list[dict]) -> None:
    """Keep when a course's student projects were read and listed, and what was not listed."""
    if before is None:
        session.add(CourseRoster(course=course, read_at=read_at, listed_at=listed_at,
                                 problems=problems))
        return
    before.read_at, before.listed_at, before.problems = read_at, listed_at, problems


def _problem(group: str | None, reason: str, kept_from: dt.datetime | None) -> dict:
    """Return what a read could not list, as the ledger keeps it."""
    return {"group": group, "reason": reason,
            "kept_from": kept_from.isoformat() if kept_from else None}
