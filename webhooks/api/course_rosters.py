"""Read the courses' student projects from their config and the roster the ledger keeps of
GitLab's listing, for a gradebook to list the students gradehook never heard from, or say why
they could not all be."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping

from sqlalchemy import select

from pipeline.config import CourseSettings, Settings
from pipeline.context import Resources
from pipeline.ledger.models import CourseRoster, RosterProject
from pipeline.roster_ledger import kept_since
from pipeline.student_projects import listed_groups, named_projects
from pipeline.submissions.verdict import TIME_FORMAT

NEVER_LISTED = ("the student projects of course {course} have not been listed from GitLab yet "
                "(gradehook lists them every {interval:g} s, and `gradehook submissions "
                "--final` does at once); students who never pushed are not in this gradebook")
COURSE_UNREAD = ("the student projects of course {course} could not be listed from GitLab at "
                 "{read_at}: {reason}; {kept}")
GROUP_UNREAD = ("the projects of group {group} of course {course} could not be listed from "
                "GitLab at {read_at}: {reason}; its {kept}")
NONE_KEPT = "students who never pushed are not in this gradebook"
KEPT = "students who never pushed are those GitLab listed at {listed_at}"


@dataclass
class Roster:
    """Each course's student projects by path (their GitLab id when listed), and what could not
    be read."""

    projects: dict[str, dict[str, int | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_roster(resources: Resources, course: str | None) -> Roster:
    """Return the student projects of a configured course (None: of each): those its
    student_projects name by path, and those of its groups as GitLab last listed them."""
    courses = _courses(resources.settings, course)
    names = [each.name for each in courses]
    with resources.sessions() as session:
        reads = {read.course: read for read in session.scalars(
            select(CourseRoster).where(CourseRoster.course.in_(names)))}
        listed: dict[str, dict[str, int | None]] = {name: {} for name in names}
        for listed_course, path, project_id in session.execute(
                select(RosterProject.course, RosterProject.project_path,
                       RosterProject.project_id).where(RosterProject.course.in_(names))):
            listed[listed_course][path] = project_id
    roster = Roster()
    for each in courses:
        projects = dict.fromkeys(named_projects(each))
        groups = listed_groups(each)
        if groups:
            # As its entries claim them now: config.toml may have changed since the listing.
            projects.update({path: project_id for path, project_id in listed[each.name].items()
                             if each.claims(path)})
            roster.problems += _problems(resources.settings, each, groups, reads.get(each.name))
        roster.projects[each.name] = projects
    return roster


def roster_within(settings: Settings, course: str | None,
                  projects: Mapping[str, int]) -> Roster:
    """Return the student projects of a configured course (None: of each) among some projects
    (path -> GitLab id), those a GitLab user reaches: no group of GitLab is listed for them."""
    return Roster({each.name: {path: project_id for path, project_id in projects.items()
                               if each.claims(path)}
                   for each in _courses(settings, course)})


def _problems(settings: Settings, course: CourseSettings, groups: list[str],
              read: CourseRoster | None) -> list[str]:
    """Say why a course's listed student projects are not all GitLab's now: never listed, or
    the last read could not list the course or some of its groups (those it still lists)."""
    if read is None:
        return [NEVER_LISTED.format(course=course.name,
                                    interval=settings.worker.roster_interval_seconds)]
    read_at = _shown(read.read_at)
    return [(COURSE_UNREAD if problem["group"] is None else GROUP_UNREAD).format(
                course=course.name, group=problem["group"], read_at=read_at,
                reason=problem["reason"], kept=_kept(kept_since(problem)))
            for problem in read.problems if problem["group"] in (None, *groups)]


def _kept(listed_at: dt.datetime | None) -> str:
    """Say which students who never pushed a gradebook shows in place of those not listed."""
    return NONE_KEPT if listed_at is None else KEPT.format(listed_at=_shown(listed_at))


def _shown(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def _courses(settings: Settings, course: str | None) -> list[CourseSettings]:
    """Return the configured course of a name, or each one for None."""
    return [each for each in settings.courses if course is None or each.name == course]
