"""`gradehook badges install`: give every student project of a course its keyed score badge."""

from __future__ import annotations

import click

from gitlab_client import BadgeChange, GitLabClient, GitLabError
from gradehook.assignment_checks import unknown_assignment
from gradehook.settings import settings_from
from pipeline.badge_keys import badge_urls
from pipeline.branch_names import is_branch_name
from pipeline.config import CourseSettings, Settings
from pipeline.context import build_resources
from pipeline.directory_names import DIRECTORY_RULE, is_directory_name
from pipeline.student_projects import course_projects

# GitLab finds gradehook's badge of an assignment again by this name.
BADGE_NAME = "gradehook score {assignment}"
# README's section whose step 4 tells public badges from private ones.
BADGE_SETUP_SECTION = "Setting up a course on GitLab"
NO_BADGE_KEY = ("installing badges needs server.badge_key (GRADEHOOK_BADGE_KEY); without it, "
                "badges are public and one group badge with placeholders serves every project "
                f"(README, \"{BADGE_SETUP_SECTION}\", step 4)")
NO_PUBLIC_URL = ("installing badges needs server.public_url (GRADEHOOK_PUBLIC_URL), the address "
                 "where students' browsers reach gradehook")
NO_GITLAB_TOKEN = "installing badges changes GitLab projects: set gitlab.token (GITLAB_TOKEN)"
UNKNOWN_COURSE = "no course named {course!r} is configured"
NOT_AN_ASSIGNMENT = ("{assignment!r} is not an assignment directory: it must be "
                     f"{DIRECTORY_RULE}")
NOT_A_BRANCH = "{ref!r} is not a branch name git accepts"
CHANGES = {BadgeChange.ADDED: "badge added", BadgeChange.UPDATED: "badge updated",
           BadgeChange.UNCHANGED: "badge already up to date"}
DONE = "{project}: {change}"
FAILED = "{project}: failed: {reason}"
GROUP_FAILED = "group {group}: failed: its projects could not be listed: {reason}"
SUMMARY = "{done} project(s) have the badge, {failed} failed"


@click.group("badges")
def badges() -> None:
    """Keyed score badges in the student projects (server.badge_key)."""


@badges.command("install")
@click.option("--course", required=True, help="Course name.")
@click.option("--assignment", required=True, help="Assignment directory.")
@click.option("--ref", help="Branch the badge shows (default: each project's default branch).")
@click.pass_context
def install(ctx: click.Context, course: str, assignment: str, ref: str | None) -> None:
    """Add or update the assignment's badge in every student project of a course."""
    settings = settings_from(ctx)
    chosen, assignment = _checked(settings, course, assignment, ref)
    resources = build_resources(settings)
    # A misspelt assignment would put a badge reading `no result` into every project.
    problem = unknown_assignment(resources.sessions, chosen, assignment)
    if problem is not None:
        raise click.ClickException(problem)
    gitlab = resources.gitlab
    try:
        listed = course_projects(resources.sessions, gitlab, chosen)
    except GitLabError as exc:
        raise click.ClickException(str(exc)) from None
    failed = 0
    for group, reason in sorted(listed.unlisted_groups.items()):
        click.echo(GROUP_FAILED.format(group=group, reason=reason))
        failed += 1
    done = 0
    for path, project_id in sorted(listed.projects.items()):
        try:
            if project_id is None:  # known by path only: look it up
                project_id = gitlab.get_project(path).id
            change = _set_badge(settings, gitlab, project_id, assignment, ref)
        except GitLabError as exc:
            click.echo(FAILED.format(project=path, reason=exc))
            failed += 1
            continue
        click.echo(DONE.format(project=path, change=CHANGES[change]))
        done += 1
    click.echo(SUMMARY.format(done=done, failed=failed))
    if failed:
        ctx.exit(1)


def _checked(settings: Settings, course: str, assignment: str,
             ref: str | None) -> tuple[CourseSettings, str]:
    """Return the course and assignment directory, or stop naming what is missing or wrong."""
    server = settings.server
    for missing, problem in ((not server.badge_key, NO_BADGE_KEY),
                             (not server.public_url, NO_PUBLIC_URL),
                             (not settings.gitlab.token, NO_GITLAB_TOKEN)):
        if missing:
            raise click.ClickException(problem)
    chosen = settings.course_named(course)
    if chosen is None:
        raise click.ClickException(UNKNOWN_COURSE.format(course=course))
    # As in config.toml, slashes around an assignment are dropped.
    directory = assignment.strip("/")
    if not is_directory_name(directory):
        raise click.ClickException(NOT_AN_ASSIGNMENT.format(assignment=assignment))
    if ref is not None and not is_branch_name(ref):
        raise click.ClickException(NOT_A_BRANCH.format(ref=ref))
    return chosen, directory


def _set_badge(settings: Settings, gitlab: GitLabClient, project_id: int, assignment: str,
               ref: str | None) -> BadgeChange:
    """Point one project's badge of the assignment at its keyed URLs."""
    link, image = badge_urls(settings.server.base_url, settings.server.badge_key, project_id,
                             assignment, ref)
    return gitlab.set_project_badge(project_id, name=BADGE_NAME.format(assignment=assignment),
                                    link_url=link, image_url=image)
