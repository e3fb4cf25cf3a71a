"""The only code that talks to GitLab's API: domain verbs with gradehook's own error types."""

from gitlab_client.client import COMMIT_STATES, DEVELOPER_ACCESS, GitLabClient, id_or_path
from gitlab_client.errors import (AuthGitLabError, GitLabError, NotFoundGitLabError,
                                  RejectedGitLabError, TransientGitLabError,
                                  UnansweredGitLabError)
from gitlab_client.models import (BadgeChange, Branch, MergeRequest, MergeRequestVersion,
                                  Project, User)

__all__ = [
    "COMMIT_STATES", "DEVELOPER_ACCESS", "GitLabClient", "id_or_path", "AuthGitLabError",
    "GitLabError", "NotFoundGitLabError", "RejectedGitLabError", "TransientGitLabError",
    "UnansweredGitLabError", "BadgeChange", "Branch",
    "MergeRequest", "MergeRequestVersion", "Project", "User",
]
