"""Resolve what a test request names: the project (by id or path), its course and backend."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gitlab_client import GitLabClient, GitLabError, NotFoundGitLabError
from pipeline.config import EXECUTION_BACKEND_TYPES, CourseSettings, Settings
from pipeline.ledger.models import ExecutionBackend, TestRun
from webhooks.api.auth import PROJECT_FORBIDDEN, Caller
from webhooks.api.errors import ApiError

log = logging.getLogger(__name__)

PROJECT_FIELD = "project"
NO_PROJECT_REACHABLE = "{who} has Developer access to no student project"
PROJECT_REQUIRED_FOR_STAFF = "project: required with a staff token"
PROJECT_REQUIRED_OF_MANY = "project: required, as {who} reaches {count} student projects"
NOT_A_STUDENT_PROJECT = "project {project} is not a student project of any configured course"
UNKNOWN_ASSIGNMENT = "directory: {directory} is not an assignment of course {course}"
PROJECT_ID_UNKNOWN = ("project: no project has id {project_id} here; give its path, or set "
                      "gitlab.token so that ids can be looked up on GitLab")
PROJECT_ID_NOT_ON_GITLAB = "project: GitLab has no project with id {project_id}"
PROJECT_PATH_NOT_ON_GITLAB = "project: GitLab has no project {project}"
GITLAB_LOOKUP_FAILED = "GitLab could not be asked for project {project_id}; try again shortly"
BACKEND_UNSUPPORTED = ("course {course} uses execution backend type {kind!r}, which gradehook "
                       "does not run: it runs 'celery' (workers) and 'local' (in the web "
                       "process). To migrate, set execution_backend of the course in "
                       "config.toml and update or delete the execution_backends row "
                       "{course!r}.")


def resolve_project(caller: Caller, reference: int | str | None, settings: Settings,
                    sessions: sessionmaker[Session],
                    gitlab: GitLabClient | None) -> tuple[str, int | None]:
    """Return (path, id if known) of the project a request names, checking the caller may."""
    if reference is None:
        return _only_project(caller, settings)
    if isinstance(reference, str):
        caller.require_project(reference)
        known = caller.projects.get(reference) or _known_id(sessions, reference)
        return (reference, known) if known is not None else _on_gitlab(gitlab, reference)
    if not caller.staff:
        path = next((p for p, i in caller.projects.items() if i == reference), None)
        if path is None:
            raise ApiError(403, PROJECT_FORBIDDEN.format(who=caller.describe(),
                                                         project=f"id {reference}"))
        return path, reference
    return _path_of_id(sessions, gitlab, reference), reference


def course_of(settings: Settings, project_path: str) -> CourseSettings:
    """Return the course claiming a project, or raise 422."""
    course = settings.course_for(project_path)
    if course is None:
        raise ApiError(422, NOT_A_STUDENT_PROJECT.format(project=project_path),
                       field=PROJECT_FIELD)
    return course


def check_assignment(known: tuple[str, ...], course: CourseSettings, directory: str) -> None:
    """Raise 422 unless a directory is a known assignment of the course."""
    if directory not in known:
        raise ApiError(422, UNKNOWN_ASSIGNMENT.format(directory=directory, course=course.name),
                       field="directory")


def execution_backend(sessions: sessionmaker[Session], course: CourseSettings) -> str:
    """Return the course's execution backend type; 422 for a type gradehook does not run.

    A row of `execution_backends` whose slug is the course's name (kept from older
    installations) names the type; without one, the course's configuration does.
    """
    with sessions() as session:
        recorded = session.scalar(select(ExecutionBackend.type)
                                  .where(ExecutionBackend.slug == course.name))
    kind = recorded or course.execution_backend
    if kind not in EXECUTION_BACKEND_TYPES:
        raise ApiError(422, BACKEND_UNSUPPORTED.format(course=course.name, kind=kind))
    return kind


def _only_project(caller: Caller, settings: Settings) -> tuple[str, int | None]:
    if caller.staff:
        raise ApiError(400, PROJECT_REQUIRED_FOR_STAFF, field=PROJECT_FIELD)
    students = {p: i for p, i in caller.projects.items() if settings.course_for(p)}
    if not students:
        raise ApiError(403, NO_PROJECT_REACHABLE.format(who=caller.describe()))
    if len(students) > 1:
        raise ApiError(400, PROJECT_REQUIRED_OF_MANY.format(who=caller.describe(),
                                                            count=len(students)),
                       field=PROJECT_FIELD)
    return next(iter(students.items()))


def _known_id(sessions: sessionmaker[Session], project_path: str) -> int | None:
    with sessions() as session:
        return session.scalar(select(func.max(TestRun.project_id))
                              .where(TestRun.project_path == project_path))


def _on_gitlab(gitlab: GitLabClient | None, project_path: str) -> tuple[str, int | None]:
    """Return a project's path and id as GitLab knows them: runs by id and score badges find
    its runs, and a path spelt in other letter case (GitLab finds it all the same) does not
    make a second project of the ledger.

    Without GitLab, or while it cannot answer, the run is made as named and without an id (the
    path is what it is fetched and reported by); a project GitLab does not have is refused.
    """
    if gitlab is None:
        return project_path, None
    try:
        project = gitlab.get_project(project_path)
    except NotFoundGitLabError:
        raise ApiError(422, PROJECT_PATH_NOT_ON_GITLAB.format(project=project_path),
                       field=PROJECT_FIELD) from None
    except GitLabError as exc:
        log.warning("the id of project %s was not looked up on GitLab: %s", project_path, exc)
        return project_path, None
    return project.path_with_namespace, project.id


def _path_of_id(sessions: sessionmaker[Session], gitlab: GitLabClient | None,
                project_id: int) -> str:
    with sessions() as session:
        path = session.scalar(select(TestRun.project_path)
                              .where(TestRun.project_id == project_id).limit(1))
    if path is not None:
        return path
    if gitlab is None:
        raise ApiError(422, PROJECT_ID_UNKNOWN.format(project_id=project_id),
                       field=PROJECT_FIELD)
    try:
        return gitlab.get_project(project_id).path_with_namespace
    except NotFoundGitLabError:
        raise ApiError(422, PROJECT_ID_NOT_ON_GITLAB.format(project_id=project_id),
                       field=PROJECT_FIELD) from None
    except GitLabError:
        raise ApiError(503, GITLAB_LOOKUP_FAILED.format(project_id=project_id)) from None
