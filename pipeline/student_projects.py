"""A course's student projects: those with runs in the ledger and those GitLab lists in groups,
its listing kept as the course's roster."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gitlab_client import GitLabClient, GitLabError, TransientGitLabError
from pipeline.config import CourseSettings
from pipeline.ledger.models import TestRun, utcnow
from pipeline.roster_ledger import keep_failure, keep_listing

WILDCARDS = frozenset("*?[")


@dataclass
class CourseProjects:
    """Student projects by path (their id when known), and the groups GitLab did not list."""

    projects: dict[str, int | None] = field(default_factory=dict)
    unlisted_groups: dict[str, str] = field(default_factory=dict)  # group -> GitLab's answer


def course_projects(sessions: sessionmaker[Session], gitlab: GitLabClient,
                    course: CourseSettings) -> CourseProjects:
    """Return a course's student projects, the ledger's and GitLab's; GitLab's listing is kept
    as the course's roster.

    A group GitLab refuses to list is named in the answer; GitLab being unreachable raises
    TransientGitLabError.
    """
    with sessions() as session:
        found = dict(session.execute(
            select(TestRun.project_path, func.max(TestRun.project_id))
            .where(TestRun.course == course.name).group_by(TestRun.project_path)).all())
    listed = listed_and_kept(sessions, gitlab, course)
    for path, project_id in listed.projects.items():
        if project_id is not None or path not in found:  # a path alone tells no id
            found[path] = project_id
    return CourseProjects(found, listed.unlisted_groups)


def listed_and_kept(sessions: sessionmaker[Session], gitlab: GitLabClient,
                    course: CourseSettings) -> CourseProjects:
    """Return the student projects of a course listed_projects finds, and keep them (or that
    GitLab was unreachable, which raises TransientGitLabError) as the roster of a course whose
    entries name groups."""
    read_at = utcnow()
    try:
        listed = listed_projects(gitlab, course)
    except TransientGitLabError as exc:
        if lists_groups(course):
            keep_failure(sessions, course.name, read_at, str(exc))
        raise
    if lists_groups(course):
        keep_listing(sessions, course.name, read_at, listed.projects, listed.unlisted_groups)
    return listed


def listed_projects(gitlab: GitLabClient, course: CourseSettings) -> CourseProjects:
    """Return the student projects a course's student_projects name (an exact path) or GitLab
    lists in their groups and they claim.

    A group GitLab refuses to list is named in the answer; GitLab being unreachable raises
    TransientGitLabError.
    """
    found = CourseProjects(dict.fromkeys(named_projects(course)))
    for group in listed_groups(course):
        try:
            listed = gitlab.list_group_projects(group)
        except TransientGitLabError:
            raise
        except GitLabError as exc:
            found.unlisted_groups[group] = str(exc)
            continue
        for project in listed:
            if course.claims(project.path_with_namespace):
                found.projects[project.path_with_namespace] = project.id
    return found


def named_projects(course: CourseSettings) -> list[str]:
    """Return the paths of the student projects a course names one by one: no GitLab needed."""
    return [exact for _, exact in map(_group_of, course.student_projects) if exact]


def listed_groups(course: CourseSettings) -> list[str]:
    """Return the groups GitLab lists a course's student projects in, each once: entries
    starting with one group share its listing."""
    return list(dict.fromkeys(group for group, _ in map(_group_of, course.student_projects)
                              if group))


def lists_groups(course: CourseSettings) -> bool:
    """Tell whether a course's student projects are found by listing groups in GitLab: an
    entry is a group or a pattern, not one project's path."""
    return bool(listed_groups(course))


def _group_of(pattern: str) -> tuple[str | None, str | None]:
    """Split a student_projects pattern into (group to list, exact project path)."""
    if pattern.endswith("/"):
        return pattern.rstrip("/") or None, None
    segments = pattern.split("/")
    if not any(WILDCARDS & set(segment) for segment in segments):
        return None, pattern
    leading = []
    for segment in segments:
        if WILDCARDS & set(segment):
            break
        leading.append(segment)
    return "/".join(leading) or None, None
