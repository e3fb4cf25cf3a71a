"""GitLabClient: the domain verbs gradehook needs, over python-gitlab, raising our own errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import re
import time
from typing import Any, Callable, Iterator, Mapping, TypeVar

import gitlab
import requests

from gitlab_client.errors import (GitLabError, RejectedGitLabError, TransientGitLabError,
                                  NotFoundGitLabError, UnansweredGitLabError, error_for_status,
                                  answer_text, safe_message)
from gitlab_client.models import (BadgeChange, Branch, MergeRequest, MergeRequestVersion,
                                  Project, User)

log = logging.getLogger(__name__)

COMMIT_STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
MAX_STATUS_FIELD_CHARS = 255  # ref, target_url and description (spec/gitlab.md §4)
DEVELOPER_ACCESS = 30
_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
# GitLab's answer to re-posting a pending/running state (spec/gitlab.md §4): a no-op for us.
_CANNOT_TRANSITION = "Cannot transition status"
_PAGE_SIZE = 100

T = TypeVar("T")


def _session_for(url: str) -> requests.Session:
    """Return an HTTP session with the environment's proxy settings for `url` read once.

    requests reads proxies and CA bundles from os.environ on every request (`trust_env`),
    which costs more CPU than building the request; a process's environment stays as it was
    started, so it is read here, once.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.trust_env = False
    return session


def _ca_bundle_from_environment() -> str | bool:
    """Return the CA bundle requests would take from the environment, else True (the default)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class GitLabClient:
    """Talk to one GitLab instance with one token; every call has a timeout and maps errors.

    Retries: python-gitlab waits out a 429 (Retry-After) up to `max_rate_limit_retries` times;
    other transient failures raise TransientGitLabError for the caller's task queue to retry.
    Only the commit-status 409 ("in progress") is retried here, briefly, with jitter.
    """

    def __init__(self, url: str, token: str, *, timeout: float,
                 bot_username: str | None = None, max_rate_limit_retries: int = 3,
                 conflict_retries: int = 3, conflict_backoff: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._url = url
        self._token = token
        self._timeout = timeout
        self._bot_username = bot_username
        self._max_rate_limit_retries = max_rate_limit_retries
        self._conflict_retries = conflict_retries
        self._conflict_backoff = conflict_backoff
        self._sleep = sleep
        # retry_transient_errors=False: 5xx and timeouts go to the caller's retry layer.
        self._gl = gitlab.Gitlab(url, private_token=token, timeout=timeout,
                                 retry_transient_errors=False, session=_session_for(url),
                                 ssl_verify=_ca_bundle_from_environment())

    def __repr__(self) -> str:
        return f"GitLabClient({self._url!r})"

    def __enter__(self) -> GitLabClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session."""
        self._gl.session.close()

    def with_token(self, token: str) -> GitLabClient:
        """Return a client for the same GitLab acting as another token's owner."""
        return GitLabClient(self._url, token, timeout=self._timeout,
                            max_rate_limit_retries=self._max_rate_limit_retries,
                            conflict_retries=self._conflict_retries,
                            conflict_backoff=self._conflict_backoff, sleep=self._sleep)

    # Commit statuses (spec/gitlab.md §4)

    def set_commit_status(self, project_id: int | str, sha: str, *, state: str,
                          ref: str | None, name: str, description: str | None = None,
                          target_url: str | None = None, coverage: float | None = None) -> bool:
        """Post a commit status; return False when GitLab says it is already in that state.

        Send the ref whenever it is known (spec/gitlab.md §4); without one (a commit graded
        through the API, on no known branch) GitLab picks the first branch holding the commit.
        """
        if state not in COMMIT_STATES:
            raise RejectedGitLabError(f"commit status state {state!r} is not one of "
                                      f"{', '.join(COMMIT_STATES)}")
        _check_sha(sha)
        if ref is not None and (not ref or len(ref) > MAX_STATUS_FIELD_CHARS):
            raise RejectedGitLabError("commit status ref must have 1 to 255 characters")
        data: dict[str, Any] = {"state": state, "name": name}
        if ref is not None:
            data["ref"] = ref
        if description:
            data["description"] = _shorten(description, MAX_STATUS_FIELD_CHARS)
        if target_url and len(target_url) <= MAX_STATUS_FIELD_CHARS:
            data["target_url"] = target_url
        elif target_url:
            log.warning("commit status target_url longer than %d characters left out",
                        MAX_STATUS_FIELD_CHARS)
        if coverage is not None:
            if isinstance(coverage, bool) or not isinstance(coverage, (int, float)):
                raise RejectedGitLabError("commit status coverage must be a number")
            data["coverage"] = round(float(coverage), 2)
        path = f"{_project_path(project_id)}/statuses/{sha}"
        attempt = 0
        while True:
            try:
                with self._translated("set commit status"):
                    self._gl.http_post(path, post_data=data, **self._limits)
                return True
            except RejectedGitLabError as exc:
                if _CANNOT_TRANSITION not in str(exc):
                    raise
                log.info("commit status %s already %s for %s", name, state, sha[:12])
                return False
            except TransientGitLabError as exc:
                if exc.status_code != 409 or attempt >= self._conflict_retries:
                    raise
                self._sleep(self._conflict_backoff * 2 ** attempt * random.uniform(0.5, 1.5))
                attempt += 1

    # Merge request notes (spec/gitlab.md §6)

    def upsert_mr_note(self, project_id: int | str, mr_iid: int, body: str, *,
                       marker: str) -> int:
        """Update the bot's note carrying `marker` on an MR, else create it; return its id."""
        if not marker or marker not in body:
            raise RejectedGitLabError("the note body must contain its marker, "
                                      "or the next update would post a second note")
        bot = self._bot_username_or_lookup().casefold()
        notes_path = f"{_project_path(project_id)}/merge_requests/{int(mr_iid)}/notes"
        with self._translated("list merge request notes"):
            notes = self._gl.http_list(notes_path, query_data={"sort": "asc",
                                                               "order_by": "created_at"},
                                       iterator=True, per_page=_PAGE_SIZE, **self._limits)
            ours = next((note for note in notes if _is_marked_by(note, bot, marker)), None)
        if ours is not None:
            if ours.get("body") == body:
                return int(ours["id"])
            try:
                with self._translated("update merge request note"):
                    self._gl.http_put(f"{notes_path}/{int(ours['id'])}", post_data={"body": body},
                                      **self._limits)
                return int(ours["id"])
            except NotFoundGitLabError:
                log.info("note %s vanished before its update; posting a new one", ours["id"])
        with self._translated("create merge request note"):
            return int(self._gl.http_post(notes_path, post_data={"body": body},
                                          **self._limits)["id"])

    # Project badges (spec/gitlab.md §5)

    def set_project_badge(self, project_id: int | str, *, name: str, link_url: str,
                          image_url: str) -> BadgeChange:
        """Point the project's badge called `name` at these URLs, adding it if there is none.

        GitLab lists a project's group badges with its own: only a project badge is ours.
        """
        badges_path = f"{_project_path(project_id)}/badges"
        data = {"name": name, "link_url": link_url, "image_url": image_url}
        with self._translated("list project badges"):
            badges = self._gl.http_list(badges_path, query_data={"name": name}, iterator=True,
                                        per_page=_PAGE_SIZE, **self._limits)
            ours = next((badge for badge in badges
                         if badge.get("kind") == "project" and badge.get("name") == name), None)
        if ours is not None:
            if (ours.get("link_url"), ours.get("image_url")) == (link_url, image_url):
                return BadgeChange.UNCHANGED
            try:
                with self._translated("update project badge"):
                    self._gl.http_put(f"{badges_path}/{int(ours['id'])}", post_data=data,
                                      **self._limits)
                return BadgeChange.UPDATED
            except NotFoundGitLabError:
                log.info("badge %s vanished before its update; adding it again", ours["id"])
        with self._translated("add project badge"):
            self._gl.http_post(badges_path, post_data=data, **self._limits)
        return BadgeChange.ADDED

    # Merge requests and branches (spec/gitlab.md §7)

    def get_merge_request(self, project_id: int | str, mr_iid: int) -> MergeRequest:
        """Return one merge request by its project-scoped iid."""
        with self._translated("get merge request"):
            data = self._project(project_id).mergerequests.get(mr_iid, **self._limits)
            return _record(MergeRequest, data.attributes)

    def find_open_merge_requests(self, project_id: int | str, source_branch: str,
                                 target_branch: str | None = None) -> list[MergeRequest]:
        """Return the open merge requests from a source branch (optionally into one target)."""
        filters = {"state": "opened", "source_branch": source_branch}
        if target_branch is not None:
            filters["target_branch"] = target_branch
        return _from_own_branch(self._merge_requests(project_id, filters))

    def find_merge_requests(self, project_id: int | str, source_branch: str,
                            target_branch: str, state: str) -> list[MergeRequest]:
        """Return the merge requests from one branch into another in a state (or `all`)."""
        return _from_own_branch(self._merge_requests(
            project_id, {"state": state, "source_branch": source_branch,
                         "target_branch": target_branch}))

    def reopen_merge_request(self, project_id: int | str, mr_iid: int) -> MergeRequest:
        """Reopen a closed merge request and return it."""
        with self._translated("reopen merge request"):
            mr = self._project(project_id).mergerequests.get(mr_iid, lazy=True)
            mr.state_event = "reopen"
            mr.save(**self._limits)
            return _record(MergeRequest, mr.attributes)

    def list_merge_requests_into(self, project_id: int | str, target_branch: str, *,
                                 updated_after: dt.datetime | None = None) -> list[MergeRequest]:
        """Return the merge requests from the project's own branches into a branch, in every
        state; with `updated_after` (timezone-aware), only those GitLab updated since then."""
        filters = {"state": "all", "target_branch": target_branch}
        if updated_after is not None:
            if updated_after.tzinfo is None:
                raise RejectedGitLabError("updated_after must carry a time zone")
            filters["updated_after"] = updated_after.isoformat()
        return _from_own_branch(self._merge_requests(project_id, filters))

    def merge_request_versions(self, project_id: int | str,
                               mr_iid: int) -> list[MergeRequestVersion]:
        """Return the diff versions of a merge request, newest first (GitLab's order)."""
        path = f"{_project_path(project_id)}/merge_requests/{int(mr_iid)}/versions"
        with self._translated("list merge request versions"):
            versions = self._gl.http_list(path, iterator=True, per_page=_PAGE_SIZE,
                                          **self._limits)
            return [_record(MergeRequestVersion, version) for version in versions]

    def open_merge_request(self, project_id: int | str, source_branch: str, target_branch: str,
                           title: str, description: str = "") -> MergeRequest:
        """Create a merge request and return it."""
        data = {"source_branch": source_branch, "target_branch": target_branch, "title": title}
        if description:
            data["description"] = description
        with self._translated("open merge request"):
            created = self._project(project_id).mergerequests.create(data, **self._limits)
            return _record(MergeRequest, created.attributes)

    def get_branch(self, project_id: int | str, branch: str) -> Branch:
        """Return one branch and its head commit."""
        with self._translated("get branch"):
            data = self._project(project_id).branches.get(branch, **self._limits)
            return _record(Branch, data.attributes)

    def list_branches(self, project_id: int | str) -> list[Branch]:
        """Return every branch of a project."""
        with self._translated("list branches"):
            branches = self._project(project_id).branches.list(
                iterator=True, per_page=_PAGE_SIZE, **self._limits)
            return [_record(Branch, b.attributes) for b in branches]

    def create_branch(self, project_id: int | str, branch: str, ref: str) -> Branch:
        """Create a branch at `ref` (a branch name or commit SHA) and return it."""
        with self._translated("create branch"):
            created = self._project(project_id).branches.create(
                {"branch": branch, "ref": ref}, **self._limits)
            return _record(Branch, created.attributes)

    def delete_branch(self, project_id: int | str, branch: str) -> None:
        """Delete a branch; GitLab closes the open merge requests from it."""
        with self._translated("delete branch"):
            self._project(project_id).branches.delete(branch, **self._limits)

    # Projects and users

    def get_project(self, id_or_path: int | str) -> Project:
        """Return a project by numeric id or `namespace/path`."""
        with self._translated("get project"):
            return _record(Project, self._gl.projects.get(id_or_path, **self._limits).attributes)

    def is_project_member(self, project_id: int | str, user_id: int,
                          min_access_level: int = DEVELOPER_ACCESS) -> bool:
        """Tell whether a user reaches a project (directly or inherited) at a minimum role."""
        try:
            with self._translated("get project member"):
                member = self._project(project_id).members_all.get(user_id, **self._limits)
        except NotFoundGitLabError:
            return False
        return int(member.attributes.get("access_level") or 0) >= min_access_level

    def current_user(self) -> User:
        """Return the owner of this client's token."""
        with self._translated("get current user"):
            return _record(User, self._gl.http_get("/user", **self._limits))

    def user_projects(self, min_access_level: int | None = None) -> list[Project]:
        """Return the projects the token's owner is a member of, optionally at a minimum role."""
        filters: dict[str, Any] = {"membership": True, "simple": True}
        if min_access_level is not None:
            filters["min_access_level"] = min_access_level
        with self._translated("list user projects"):
            projects = self._gl.projects.list(iterator=True, per_page=_PAGE_SIZE,
                                              **filters, **self._limits)
            return [_record(Project, p.attributes) for p in projects]

    def list_group_projects(self, group_path: int | str) -> list[Project]:
        """Return the projects of a group and its subgroups, archived ones left out."""
        with self._translated("list group projects"):
            projects = self._gl.groups.get(group_path, lazy=True).projects.list(
                iterator=True, per_page=_PAGE_SIZE, include_subgroups=True, archived=False,
                simple=True, **self._limits)
            return [_record(Project, p.attributes) for p in projects]

    # Internals

    @property
    def _limits(self) -> dict[str, Any]:
        """Return per-request options: how often python-gitlab may wait out a 429."""
        return {"max_retries": self._max_rate_limit_retries}

    def _project(self, project_id: int | str) -> Any:
        """Return a lazy project handle (no request) to reach its sub-resources.

        Building one makes python-gitlab set up every manager of a project (milliseconds of
        CPU), so the calls made for every run go through `_project_path` instead.
        """
        return self._gl.projects.get(project_id, lazy=True)

    def _merge_requests(self, project_id: int | str,
                        filters: Mapping[str, str]) -> list[MergeRequest]:
        with self._translated("list merge requests"):
            mrs = self._gl.http_list(f"{_project_path(project_id)}/merge_requests",
                                     query_data=dict(filters), iterator=True,
                                     per_page=_PAGE_SIZE, **self._limits)
            return [_record(MergeRequest, mr) for mr in mrs]

    def _bot_username_or_lookup(self) -> str:
        if self._bot_username is None:
            self._bot_username = self.current_user().username
        return self._bot_username

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Turn python-gitlab and requests exceptions into our error types, token-free."""
        try:
            yield
        except gitlab.exceptions.GitlabError as exc:
            detail = safe_message(answer_text(str(exc.error_message), exc.response_code),
                                  (self._token,))
            raise error_for_status(exc.response_code, f"{action}: {detail}") from exc
        except requests.exceptions.ReadTimeout as exc:
            raise UnansweredGitLabError(f"{action}: {type(exc).__name__}, no answer from GitLab "
                                        "in time") from exc
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientGitLabError(f"{action}: {type(exc).__name__} talking to GitLab") \
                from exc
        except requests.exceptions.RequestException as exc:
            raise GitLabError(f"{action}: {type(exc).__name__} talking to GitLab") from exc


def _from_own_branch(merge_requests: list[MergeRequest]) -> list[MergeRequest]:
    """Keep the merge requests whose source branch is the project's own: GitLab's source_branch
    filter also matches forks' branches of that name, whose commits gradehook never grades."""
    return [mr for mr in merge_requests if mr.source_project_id == mr.target_project_id]


def _record(cls: Callable[..., T], data: Any) -> T:
    """Build a record from API JSON, or raise GitLabError when the shape is unexpected."""
    try:
        return cls.from_api(data)  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GitLabError(f"unexpected answer from GitLab for {cls.__name__}: "
                          f"{type(exc).__name__} {exc}") from exc


def _is_marked_by(note: Mapping[str, Any], bot: str, marker: str) -> bool:
    """Tell whether a note is a user note by the bot that carries the marker."""
    author = note.get("author") or {}
    return (not note.get("system")
            and str(author.get("username", "")).casefold() == bot
            and marker in str(note.get("body", "")))


def id_or_path(project_id: int | None, project_path: str) -> int | str:
    """Return how to name a project to GitLab: its id when known, else its path."""
    return project_id if project_id is not None else project_path


def _project_path(project_id: int | str) -> str:
    """Return the API path of a project, by id or URL-encoded path."""
    return f"/projects/{gitlab.utils.EncodedId(project_id)}"


def _check_sha(sha: str) -> None:
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise RejectedGitLabError("commit SHA must be 7 to 64 hexadecimal characters")


def _shorten(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
