"""Read the courses' student projects from their config and GitLab, for a gradebook to list the
students gradehook never heard from, or say why they could not be read."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

from gitlab_client import GitLabError
from pipeline.config import CourseSettings, Settings
from pipeline.context import Resources
from pipeline.student_projects import listed_projects, lists_groups

log = logging.getLogger(__name__)

NO_GITLAB_TOKEN = "no GitLab token is configured (gitlab.token, GITLAB_TOKEN)"
COURSE_UNREAD = ("the student projects of course {course} could not be listed from GitLab: "
                 "{reason}; students who never pushed are not in this gradebook")
GROUP_UNREAD = ("the projects of group {group} of course {course} could not be listed from "
                "GitLab: {reason}; its students who never pushed are not in this gradebook")


@dataclass
class Roster:
    """Each course's student projects by path (their GitLab id when listed), and what could not
    be read."""

    projects: dict[str, dict[str, int | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_roster(resources: Resources, course: str | None) -> Roster:
    """Return the student projects of a configured course (None: of each), as its
    student_projects name them and GitLab lists their groups."""
    roster = Roster()
    for each in _courses(resources.settings, course):
        if resources.gitlab is None and lists_groups(each):
            roster.problems.append(COURSE_UNREAD.format(course=each.name,
                                                        reason=NO_GITLAB_TOKEN))
            continue
        try:
            # Without a token here, the course names its projects one by one: nothing to list.
            listed = listed_projects(resources.gitlab, each)
        except GitLabError as exc:
            log.warning("gradebook: student projects of course %s not listed: %s",
                        each.name, exc)
            roster.problems.append(COURSE_UNREAD.format(course=each.name, reason=exc))
            continue
        for group, reason in sorted(listed.unlisted_groups.items()):
            log.warning("gradebook: projects of group %s not listed: %s", group, reason)
            roster.problems.append(GROUP_UNREAD.format(group=group, course=each.name,
                                                       reason=reason))
        roster.projects[each.name] = listed.projects
    return roster


def roster_within(settings: Settings, course: str | None,
                  projects: Mapping[str, int]) -> Roster:
    """Return the student projects of a configured course (None: of each) among some projects
    (path -> GitLab id), those a GitLab user reaches: no group of GitLab is listed for them."""
    return Roster({each.name: {path: project_id for path, project_id in projects.items()
                               if each.claims(path)}
                   for each in _courses(settings, course)})


def _courses(settings: Settings, course: str | None) -> list[CourseSettings]:
    """Return the configured course of a name, or each one for None."""
    return [each for each in settings.courses if course is None or each.name == course]
