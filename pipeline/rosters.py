"""List each course's student projects from GitLab for the ledger to keep (pipeline.roster_ledger),
for gradebooks to show without asking GitLab: on the beat's interval and by `gradehook
submissions`."""

from __future__ import annotations

import logging

from gitlab_client import GitLabError
from pipeline.context import Resources
from pipeline.ledger.models import utcnow
from pipeline.roster_ledger import keep_failure
from pipeline.student_projects import listed_and_kept, lists_groups

log = logging.getLogger(__name__)

NO_GITLAB_TOKEN = "no GitLab token is configured (gitlab.token, GITLAB_TOKEN)"


def refresh_rosters(resources: Resources, course: str | None = None) -> None:
    """List from GitLab the student projects of a configured course (None: of each) whose
    entries name groups, and keep them with what could not be listed."""
    for each in resources.settings.courses:
        if not ((course is None or each.name == course) and lists_groups(each)):
            continue
        if resources.gitlab is None:
            log.warning("roster: student projects of course %s not listed: %s", each.name,
                        NO_GITLAB_TOKEN)
            keep_failure(resources.sessions, each.name, utcnow(), NO_GITLAB_TOKEN)
            continue
        try:
            listed = listed_and_kept(resources.sessions, resources.gitlab, each)
        except GitLabError as exc:  # unreachable: kept as such
            log.warning("roster: student projects of course %s not listed: %s", each.name, exc)
            continue
        for group, refused in sorted(listed.unlisted_groups.items()):
            log.warning("roster: projects of group %s of course %s not listed: %s", group,
                        each.name, refused)
