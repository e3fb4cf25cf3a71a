"""Bearer tokens of API callers: staff tokens by sha256 digest, GitLab tokens checked on GitLab."""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from gitlab_client import DEVELOPER_ACCESS, AuthGitLabError, GitLabClient, GitLabError
from pipeline.config import Settings
from webhooks.api.errors import ApiError

log = logging.getLogger(__name__)

TOKEN_MISSING = ("send Authorization: Bearer <token> with a staff token or a GitLab access "
                 "token")
TOKEN_MALFORMED = "the Authorization header must be 'Bearer <token>' with a printable token"
TOKEN_REJECTED = "the token is neither a staff token nor a GitLab token that GitLab accepts"
GITLAB_UNREACHABLE = "GitLab could not be asked about the token; try again shortly"
PROJECT_FORBIDDEN = "{who} does not have Developer access to project {project}"
STAFF_ONLY = "only a staff token may {action}"
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="gradehook"'}
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
MAX_CACHED_TOKENS = 4096


@dataclass(frozen=True)
class Caller:
    """Who is calling: staff, or a GitLab user with the projects they reach as Developer."""

    staff: bool
    user_id: int | None = None
    username: str | None = None
    projects: Mapping[str, int] = field(default_factory=dict)  # path -> id

    def may_reach(self, project_path: str) -> bool:
        """Tell whether the caller may see and test a project."""
        return self.staff or project_path in self.projects

    def require_project(self, project_path: str) -> None:
        """Raise 403 unless the caller may reach a project."""
        if not self.may_reach(project_path):
            raise ApiError(403, PROJECT_FORBIDDEN.format(who=self.describe(),
                                                         project=project_path))

    def require_staff(self, action: str) -> None:
        """Raise 403 unless the caller holds a staff token."""
        if not self.staff:
            raise ApiError(403, STAFF_ONLY.format(action=action))

    def describe(self) -> str:
        """Return how the caller is named in reasons and logs."""
        return "a staff token" if self.staff else f"GitLab user {self.username}"

    def scope(self, project: int | str | None) -> ProjectScope:
        """Return which projects a listing asked about a project (path, id or none) may show;
        raise 403 when the caller may not reach the project it names."""
        if isinstance(project, str):
            self.require_project(project)
        elif project is not None and not self.staff and project not in self.projects.values():
            raise ApiError(403, PROJECT_FORBIDDEN.format(who=self.describe(),
                                                         project=f"id {project}"))
        return ProjectScope(project_path=project if isinstance(project, str) else None,
                            project_id=project if isinstance(project, int) else None,
                            within=None if self.staff else frozenset(self.projects))


@dataclass(frozen=True)
class ProjectScope:
    """The projects a listing shows: one by path or id, or any; `within` limits them to the
    caller's (None: every project)."""

    project_path: str | None
    project_id: int | None
    within: frozenset[str] | None


class TokenChecker:
    """Authenticate bearer tokens; GitLab's verdict is cached briefly under the token's digest."""

    def __init__(self, settings: Settings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._staff_digests = settings.api.staff_token_digests
        self._ttl = settings.api.gitlab_token_cache_seconds
        self._gitlab_url = settings.gitlab.url
        self._timeout = settings.gitlab.request_timeout_seconds
        self._clock = clock
        self._cache: collections.OrderedDict[str, tuple[float, Caller | None]] = \
            collections.OrderedDict()
        self._lock = threading.Lock()

    def caller_for(self, authorization: str | None) -> Caller:
        """Return the caller an Authorization header stands for, or raise ApiError 401/503."""
        if not authorization:
            raise ApiError(401, TOKEN_MISSING, headers=WWW_AUTHENTICATE)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
            raise ApiError(401, TOKEN_MALFORMED, headers=WWW_AUTHENTICATE)
        digest = hashlib.sha256(token.encode()).hexdigest()
        if self._is_staff(digest):
            return Caller(staff=True)
        caller = self._cached(digest)
        if caller is _NOT_CACHED:
            caller = self._ask_gitlab(token)
            self._remember(digest, caller)
        if caller is None:
            raise ApiError(401, TOKEN_REJECTED, headers=WWW_AUTHENTICATE)
        return caller

    def _is_staff(self, digest: str) -> bool:
        matched = False
        for staff in self._staff_digests:  # look at every digest: no early exit to time
            matched |= hmac.compare_digest(digest, staff)
        return matched

    def _ask_gitlab(self, token: str) -> Caller | None:
        client = GitLabClient(self._gitlab_url, token, timeout=self._timeout)
        try:
            user = client.current_user()
            projects = client.user_projects(min_access_level=DEVELOPER_ACCESS)
        except AuthGitLabError:
            return None
        except GitLabError as exc:  # transient or unexpected: ask again next time
            log.warning("token check: GitLab unavailable: %s", exc)
            raise ApiError(503, GITLAB_UNREACHABLE) from None
        finally:
            client.close()
        return Caller(staff=False, user_id=user.id, username=user.username,
                      projects={p.path_with_namespace: p.id for p in projects})

    def _cached(self, digest: str):
        with self._lock:
            entry = self._cache.get(digest)
            if entry is None or entry[0] <= self._clock():
                return _NOT_CACHED
            return entry[1]

    def _remember(self, digest: str, caller: Caller | None) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._cache[digest] = (self._clock() + self._ttl, caller)
            self._cache.move_to_end(digest)
            while len(self._cache) > MAX_CACHED_TOKENS:
                self._cache.popitem(last=False)


_NOT_CACHED = object()
