"""Keep each course's student projects, as GitLab lists them in its groups, in the ledger, for
gradebooks to show without asking GitLab: read on an interval and by `gradehook submissions`.

A read GitLab fails for the whole course (unreachable, or no token) keeps the listing read
before; a group GitLab refuses keeps its projects of the listing read before. Each problem
kept says since when its projects are those of an older listing (or that none was ever read).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from gitlab_client import GitLabError
from pipeline.config import CourseSettings
from pipeline.context import Resources
from pipeline.ledger.db import transaction
from pipeline.ledger.locks import lock_name_for_ledger_work
from pipeline.ledger.models import CourseRoster, RosterProject, utcnow
from pipeline.student_projects import CourseProjects, listed_projects, lists_groups

log = logging.getLogger(__name__)

NO_GITLAB_TOKEN = "no GitLab token is configured (gitlab.token, GITLAB_TOKEN)"


def refresh_rosters(resources: Resources, course: str | None = None) -> None:
    """List from GitLab the student projects of a configured course (None: of each) whose
    entries name groups, and keep them with what could not be listed."""
    for each in resources.settings.courses:
        if (course is None or each.name == course) and lists_groups(each):
            _refresh(resources, each)


def _refresh(resources: Resources, course: CourseSettings) -> None:
    """Read one course's student projects from GitLab and keep them."""
    read_at = utcnow()
    listed, reason = None, NO_GITLAB_TOKEN
    if resources.gitlab is not None:
        try:
            listed = listed_projects(resources.gitlab, course)
        except GitLabError as exc:  # unreachable: nothing of the course was listed
            reason = str(exc)
    if listed is None:
        log.warning("roster: student projects of course %s not listed: %s", course.name, reason)
    else:
        for group, refused in sorted(listed.unlisted_groups.items()):
            log.warning("roster: projects of group %s of course %s not listed: %s", group,
                        course.name, refused)
    with transaction(resources.sessions) as session:
        # Two reads at once (the beat's and the command's): one keeps its listing, then the
        # other, each from the rows the one before left; the one begun first keeps nothing
        # once the other's is kept.
        lock_name_for_ledger_work(session, "roster", course.name)
        before = session.get(CourseRoster, course.name)
        if before is not None and before.read_at > read_at:
            return
        if listed is None:
            _keep_unlisted(session, course.name, before, read_at, reason)
        else:
            _keep_listed(session, course.name, before, read_at, listed)


def _keep_unlisted(session: Session, course: str, before: CourseRoster | None,
                   read_at: dt.datetime, reason: str) -> None:
    """Keep a read GitLab failed as a whole: the projects listed before stay, with what the read
    before could not list."""
    listed_at = before.listed_at if before else None
    problems = [_problem(None, reason, listed_at)] + \
        [problem for problem in (before.problems if before else []) if problem["group"]]
    _keep_read(session, course, before, read_at, listed_at, problems)


def _keep_listed(session: Session, course: str, before: CourseRoster | None,
                 read_at: dt.datetime, listed: CourseProjects) -> None:
    """Keep a course's listing in place of the one before; a group GitLab refused keeps its
    projects of the one before."""
    refused_before = {problem["group"]: problem
                      for problem in (before.problems if before else []) if problem["group"]}
    listed_before = before.listed_at if before else None
    previous = dict(session.execute(
        select(RosterProject.project_path, RosterProject.project_id)
        .where(RosterProject.course == course)).all())
    projects, problems = dict(listed.projects), []
    for group, reason in sorted(listed.unlisted_groups.items()):
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


def kept_since(problem: dict) -> dt.datetime | None:
    """Return when the projects kept for what a read could not list were listed; None: none
    ever were."""
    return dt.datetime.fromisoformat(problem["kept_from"]) if problem["kept_from"] else None
