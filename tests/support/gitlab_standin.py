"""A local HTTP server on 127.0.0.1 that answers as GitLab's REST API v4, with fault injection.

Covers what gradehook uses, as GitLab's docs describe it (spec/gitlab.md): projects, commit
statuses with their transition rules, merge requests (from forks too) and their diff versions,
MR notes, branches, project badges,
project members, group projects and the current user; token auth (PRIVATE-TOKEN or
Authorization: Bearer); offset pagination headers; 404 for unknown or invisible objects. Tests
seed users, projects, branches, merge requests and badges, read the state back, inspect every
recorded request, and make chosen requests fail deterministically (429 with Retry-After, 5xx,
409, or a slow answer).

    with GitLabStandIn() as gl:
        project = gl.add_project("course/alice", branches={"main": SHA})
        client = GitLabClient(gl.url, gl.bot.token, timeout=5)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import itertools
import json
import logging
import math
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import pytest

log = logging.getLogger(__name__)

API_PREFIX = "/api/v4"
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_NOTE_CHARS = 1_000_000
# The longest a held request (FaultPlan.hold) waits: a test that forgets to release it ends.
HOLD_LIMIT_SECONDS = 60.0
GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
COMMIT_STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
MR_STATES = ("opened", "closed", "locked", "merged")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_BAD_BRANCH_NAME = re.compile(r"(^[-/.])|(\.\.)|([\s~^:?*\[\\])|(/$)|(\.lock$)|(@\{)")
BADGE_KINDS = ("project", "group")

# Commit-status events and the states each may leave (GitLab's CommitStatus state machine).
_STATE_EVENT = {"pending": "enqueue", "running": "run", "success": "success", "failed": "drop",
                "canceled": "cancel", "skipped": "skip"}
_EVENT_FROM = {
    "enqueue": ("created",),
    "run": ("pending",),
    "success": ("created", "pending", "running"),
    "drop": ("created", "pending", "running"),
    "cancel": ("created", "pending", "running"),
    "skip": ("created", "pending"),
}
_FINAL_STATES = ("success", "failed", "canceled", "skipped")


@dataclass(frozen=True)
class StandInUser:
    """A seeded GitLab user and the personal access token that authenticates as it."""

    id: int
    username: str
    name: str
    token: str
    admin: bool


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received and the status it answered with."""

    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    time: float
    status: int
    username: str | None


@dataclass
class FaultPlan:
    """Which requests fail and how: every `every`-th matching request, at most `limit` times.

    `status` is the HTTP status to answer instead (429 carries Retry-After: `retry_after`);
    `status=None` with `delay_seconds` answers normally but late (for client timeouts). With
    `hold`, a struck request sets `arrived` and waits for `hold` to be set (at most
    HOLD_LIMIT_SECONDS) before it is answered: a GitLab call held in flight while a test acts.
    """

    status: int | None = 429
    every: int = 3
    limit: int | None = None
    retry_after: int = 0
    delay_seconds: float = 0.0
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    method: str | None = None
    path_pattern: str | None = None
    seen: int = field(default=0, init=False)
    injected: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        """Tell whether a request is one this plan counts."""
        if self.method and method != self.method.upper():
            return False
        return not self.path_pattern or re.search(self.path_pattern, path) is not None

    def strikes(self) -> bool:
        """Count one matching request; tell whether it gets the fault."""
        self.seen += 1
        if self.seen % self.every or (self.limit is not None and self.injected >= self.limit):
            return False
        self.injected += 1
        return True


class ApiError(Exception):
    """An error answer, shaped as GitLab sends it."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def _iso(moment: dt.datetime) -> str:
    """Format a time as GitLab does: `2024-05-01T10:00:00.000Z`."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def _not_found(what: str) -> ApiError:
    return ApiError(404, {"message": f"404 {what} Not Found"})


def _missing(param: str) -> ApiError:
    return ApiError(400, {"error": f"{param} is missing"})


def _invalid(param: str) -> ApiError:
    return ApiError(400, {"error": f"{param} is invalid"})


_FORBIDDEN = ApiError(403, {"message": "403 Forbidden"})
_UNAUTHORIZED = ApiError(401, {"message": "401 Unauthorized"})


class GitLabState:
    """Users, projects, branches, merge requests, notes and commit statuses, behind one lock."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.users: dict[int, StandInUser] = {}
        self.projects: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[int, int]] = {}
        self.branches: dict[int, dict[str, str]] = {}
        self.merge_requests: dict[int, dict[int, dict[str, Any]]] = {}
        self.notes: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.statuses: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self.badges: dict[int, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """Return a fresh id, unique across all object kinds."""
        return next(self._ids)

    def user_json(self, user: StandInUser) -> dict[str, Any]:
        """Return the basic user JSON GitLab embeds as `author`."""
        return {"id": user.id, "username": user.username, "name": user.name, "state": "active",
                "avatar_url": None, "web_url": f"http://gitlab.invalid/{user.username}"}

    def access_level(self, project_id: int, user: StandInUser) -> int:
        """Return the user's role in a project; admins act as owners."""
        return OWNER if user.admin else self.members.get(project_id, {}).get(user.id, 0)

    def project_for(self, key: str, user: StandInUser, min_level: int = GUEST) -> dict[str, Any]:
        """Find a project by id or path as the user may see it, else 404 (or 403 for writes).

        GitLab finds a path whatever its letters' case (its routes compare lower-cased paths).
        """
        if key.isdigit():
            project = self.projects.get(int(key))
        else:
            project = next((p for p in self.projects.values()
                            if p["path_with_namespace"].lower() == key.lower()), None)
        if project is None or self.access_level(project["id"], user) < GUEST:
            raise _not_found("Project")
        if self.access_level(project["id"], user) < min_level:
            raise _FORBIDDEN
        return project

    def branch_json(self, project_id: int, name: str) -> dict[str, Any]:
        """Return a branch as the Branches API shows it."""
        sha = self.branches[project_id][name]
        project = self.projects[project_id]
        return {"name": name, "merged": False, "protected": name == project["default_branch"],
                "default": name == project["default_branch"], "developers_can_push": False,
                "developers_can_merge": False, "can_push": True,
                "web_url": f"{project['web_url']}/-/tree/{name}",
                "commit": {"id": sha, "short_id": sha[:8], "title": "commit", "message": "commit",
                           "parent_ids": [], "created_at": _iso(self.clock())}}

    def badge_json(self, project_id: int, badge: dict[str, Any]) -> dict[str, Any]:
        """Return a badge as the Project badges API shows it, its placeholders rendered."""
        project = self.projects[project_id]
        values = {"project_path": project["path_with_namespace"], "project_id": str(project_id),
                  "project_name": project["name"], "project_title": project["name"],
                  "project_namespace": project["namespace"]["full_path"],
                  "default_branch": project["default_branch"] or ""}

        def render(url: str) -> str:
            return re.sub(r"%\{(\w+)\}", lambda m: values.get(m[1], m[0]), url)
        return {**badge, "rendered_link_url": render(badge["link_url"]),
                "rendered_image_url": render(badge["image_url"])}

    def merge_request_json(self, mr: dict[str, Any]) -> dict[str, Any]:
        """Return a merge request with `sha` taken from its source branch's current head."""
        shown = {k: v for k, v in mr.items() if not k.startswith("_")}
        heads = self.branches.get(mr["source_project_id"], {})
        shown["sha"] = heads.get(mr["source_branch"], mr["sha"])
        for key in ("created_at", "updated_at"):
            shown[key] = _iso(mr[key])
        return shown


class GitLabApi:
    """The REST endpoints: each takes the caller, path arguments and parameters."""

    def __init__(self, state: GitLabState) -> None:
        self.state = state
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = []
        for method, pattern, handler in (
            ("GET", r"/user", self.get_user),
            ("GET", r"/projects", self.list_projects),
            ("GET", r"/projects/(?P<project>[^/]+)", self.get_project),
            ("GET", r"/projects/(?P<project>[^/]+)/members/all/(?P<user_id>\d+)",
             self.get_member),
            ("GET", r"/groups/(?P<group>[^/]+)/projects", self.list_group_projects),
            ("POST", r"/projects/(?P<project>[^/]+)/statuses/(?P<sha>[^/]+)",
             self.post_status),
            ("GET", r"/projects/(?P<project>[^/]+)/repository/commits/(?P<sha>[^/]+)/statuses",
             self.list_statuses),
            ("GET", r"/projects/(?P<project>[^/]+)/repository/branches", self.list_branches),
            ("POST", r"/projects/(?P<project>[^/]+)/repository/branches", self.create_branch),
            ("GET", r"/projects/(?P<project>[^/]+)/repository/branches/(?P<branch>[^/]+)",
             self.get_branch),
            ("DELETE", r"/projects/(?P<project>[^/]+)/repository/branches/(?P<branch>[^/]+)",
             self.delete_branch),
            ("GET", r"/projects/(?P<project>[^/]+)/merge_requests", self.list_merge_requests),
            ("POST", r"/projects/(?P<project>[^/]+)/merge_requests", self.create_merge_request),
            ("GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)",
             self.get_merge_request),
            ("PUT", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)",
             self.update_merge_request),
            ("GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/versions",
             self.list_versions),
            ("GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes",
             self.list_notes),
            ("POST", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes",
             self.create_note),
            ("GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes/"
                    r"(?P<note_id>\d+)", self.get_note),
            ("PUT", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes/"
                    r"(?P<note_id>\d+)", self.update_note),
            ("DELETE", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes/"
                       r"(?P<note_id>\d+)", self.delete_note),
            ("GET", r"/projects/(?P<project>[^/]+)/badges", self.list_badges),
            ("POST", r"/projects/(?P<project>[^/]+)/badges", self.create_badge),
            ("GET", r"/projects/(?P<project>[^/]+)/badges/(?P<badge_id>\d+)", self.get_badge),
            ("PUT", r"/projects/(?P<project>[^/]+)/badges/(?P<badge_id>\d+)",
             self.update_badge),
            ("DELETE", r"/projects/(?P<project>[^/]+)/badges/(?P<badge_id>\d+)",
             self.delete_badge),
        ):
            self.routes.append((method, re.compile(pattern + "$"), handler))

    def dispatch(self, method: str, path: str, user: StandInUser,
                 params: dict[str, Any]) -> tuple[int, Any]:
        """Route a request under /api/v4 to its endpoint; return (status, JSON body or list)."""
        known_path = False
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if not match:
                continue
            known_path = True
            if route_method == method:
                args = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                with self.state.lock:
                    return handler(user, params, **args)
        if known_path:
            raise ApiError(405, {"message": "405 Method Not Allowed"})
        raise ApiError(404, {"error": "404 Not Found"})

    # Users and projects

    def get_user(self, user: StandInUser, params: dict[str, Any]) -> tuple[int, Any]:
        body = self.state.user_json(user)
        body["is_admin"] = user.admin
        return 200, body

    def list_projects(self, user: StandInUser, params: dict[str, Any]) -> tuple[int, Any]:
        membership = _flag(params.get("membership"))
        min_level = _int(params, "min_access_level", GUEST)
        visible = [p for p in self.state.projects.values()
                   if self.state.access_level(p["id"], user) >= GUEST]
        if membership or "min_access_level" in params:
            visible = [p for p in visible
                       if self.state.members.get(p["id"], {}).get(user.id, 0) >= min_level]
        return 200, sorted(visible, key=lambda p: -p["id"])

    def get_project(self, user: StandInUser, params: dict[str, Any],
                    project: str) -> tuple[int, Any]:
        return 200, self.state.project_for(project, user)

    def get_member(self, user: StandInUser, params: dict[str, Any], project: str,
                   user_id: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user)
        level = self.state.members.get(found["id"], {}).get(int(user_id))
        member = self.state.users.get(int(user_id))
        if level is None or member is None:
            raise ApiError(404, {"message": "404 Not found"})
        return 200, {**self.state.user_json(member), "access_level": level,
                     "expires_at": None, "membership_state": "active"}

    def list_group_projects(self, user: StandInUser, params: dict[str, Any],
                            group: str) -> tuple[int, Any]:
        """List a group's projects the user sees, its subgroups' with include_subgroups."""
        subgroups = _flag(params.get("include_subgroups"))
        inside = [p for p in self.state.projects.values()
                  if p["namespace"]["full_path"] == group
                  or (subgroups and p["namespace"]["full_path"].startswith(group + "/"))]
        if not inside:
            raise _not_found("Group")
        return 200, [p for p in inside if self.state.access_level(p["id"], user) >= GUEST]

    # Commit statuses (spec/gitlab.md §4)

    def post_status(self, user: StandInUser, params: dict[str, Any], project: str,
                    sha: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user, DEVELOPER)
        if not _SHA.fullmatch(sha):
            raise _not_found("Commit")
        state = params.get("state")
        if state is None:
            raise _missing("state")
        if state not in COMMIT_STATES:
            raise ApiError(400, {"error": "state does not have a valid value"})
        name = str(params.get("name") or params.get("context") or "default")
        ref = str(params.get("ref") or found["default_branch"] or "")
        for key in ("ref", "target_url", "description"):
            if len(str(params.get(key) or "")) > 255:
                raise ApiError(400, {"message": {key: ["is too long (maximum is 255 "
                                                       "characters)"]}})
        jobs = self.state.statuses.setdefault((found["id"], sha), [])
        job = next((j for j in reversed(jobs)
                    if j["name"] == name and j["ref"] == ref and j["_user_id"] == user.id
                    and not j["_retried"] and j["status"] in ("pending", "running")), None)
        event = _STATE_EVENT[state]
        if job is None:
            start = "pending" if state == "running" else "created"  # "running" enqueues first
        else:
            start = "pending" if state == "running" and job["status"] == "pending" \
                else job["status"]
        if start not in _EVENT_FROM[event]:
            raise ApiError(400, {"message": f"Cannot transition status via :{event} from "
                                            f":{start} (Reason(s): Status cannot transition "
                                            f"via \"{event}\")"})
        now = self.state.clock()
        if job is None:
            for older in jobs:
                if older["name"] == name and older["ref"] == ref:
                    older["_retried"] = True
            job = {"id": self.state.next_id(), "sha": sha, "ref": ref, "name": name,
                   "created_at": _iso(now), "started_at": None, "finished_at": None,
                   "allow_failure": False, "author": self.state.user_json(user),
                   "pipeline_id": _pipeline_id(jobs, ref, self.state), "_user_id": user.id,
                   "_retried": False}
            jobs.append(job)
        job.update(status=state, target_url=params.get("target_url"),
                   description=params.get("description"),
                   coverage=_float_or_none(params.get("coverage")))
        if state == "running":
            job["started_at"] = _iso(now)
        if state in _FINAL_STATES:
            job["finished_at"] = _iso(now)
        return 201, _public(job)

    def list_statuses(self, user: StandInUser, params: dict[str, Any], project: str,
                      sha: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user)
        jobs = self.state.statuses.get((found["id"], sha), [])
        if not _flag(params.get("all")):
            jobs = [j for j in jobs if not j["_retried"]]
        for key in ("name", "ref"):
            if params.get(key):
                jobs = [j for j in jobs if j[key] == params[key]]
        return 200, [_public(j) for j in jobs]

    # Branches (spec/gitlab.md §7)

    def list_branches(self, user: StandInUser, params: dict[str, Any],
                      project: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user)
        names = sorted(self.state.branches[found["id"]])
        if params.get("search"):
            names = [n for n in names if str(params["search"]) in n]
        return 200, [self.state.branch_json(found["id"], n) for n in names]

    def get_branch(self, user: StandInUser, params: dict[str, Any], project: str,
                   branch: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user)
        if branch not in self.state.branches[found["id"]]:
            raise _not_found("Branch")
        return 200, self.state.branch_json(found["id"], branch)

    def create_branch(self, user: StandInUser, params: dict[str, Any],
                      project: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user, DEVELOPER)
        branch, ref = params.get("branch"), params.get("ref")
        if not branch:
            raise _missing("branch")
        if not ref:
            raise _missing("ref")
        heads = self.state.branches[found["id"]]
        if _BAD_BRANCH_NAME.search(branch):
            raise ApiError(400, {"message": "Branch name is invalid"})
        if branch in heads:
            raise ApiError(400, {"message": "Branch already exists"})
        clash = next((name for name in heads if _refs_clash(name, branch)), None)
        if clash is not None:  # git keeps refs as paths: `a` and `a/b` cannot both exist
            raise ApiError(400, {"message": f"Failed to create branch '{branch}': "
                                            f"'refs/heads/{clash}' exists; cannot create "
                                            f"'refs/heads/{branch}'"})
        sha = heads.get(ref) or (ref if _SHA.fullmatch(ref) else None)
        if sha is None:
            raise ApiError(400, {"message": f"Invalid reference name: {ref}"})
        heads[branch] = sha
        return 201, self.state.branch_json(found["id"], branch)

    def delete_branch(self, user: StandInUser, params: dict[str, Any], project: str,
                      branch: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user, DEVELOPER)
        heads = self.state.branches[found["id"]]
        if branch not in heads:
            raise _not_found("Branch")
        if branch == found["default_branch"]:
            raise ApiError(400, {"message": "The default branch of a project cannot be "
                                            "deleted."})
        del heads[branch]
        # GitLab closes the open merge requests whose source branch is gone.
        now = self.state.clock()
        for mr in self.state.merge_requests.get(found["id"], {}).values():
            if mr["source_branch"] == branch and mr["state"] == "opened":
                mr.update(state="closed", closed_at=_iso(now), updated_at=now)
        return 204, None

    # Merge requests (spec/gitlab.md §7)

    def list_merge_requests(self, user: StandInUser, params: dict[str, Any],
                            project: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user)
        mrs = list(self.state.merge_requests.get(found["id"], {}).values())
        state = params.get("state", "all")
        if state != "all":
            mrs = [mr for mr in mrs if mr["state"] == state]
        for key in ("source_branch", "target_branch"):
            if params.get(key):
                mrs = [mr for mr in mrs if mr[key] == params[key]]
        if params.get("author_username"):
            mrs = [mr for mr in mrs if mr["author"]["username"] == params["author_username"]]
        for key, keep in (("updated_after", lambda a, b: a >= b),
                          ("updated_before", lambda a, b: a <= b),
                          ("created_after", lambda a, b: a >= b),
                          ("created_before", lambda a, b: a <= b)):
            if params.get(key):
                bound = _time_param(params, key)
                column = key.split("_")[0] + "_at"
                mrs = [mr for mr in mrs if keep(mr[column], bound)]
        order_by = params.get("order_by", "created_at")
        if order_by not in ("created_at", "updated_at"):
            raise ApiError(400, {"error": "order_by does not have a valid value"})
        mrs.sort(key=lambda mr: (mr[order_by], mr["iid"]),
                 reverse=params.get("sort", "desc") != "asc")
        return 200, [self.state.merge_request_json(mr) for mr in mrs]

    def get_merge_request(self, user: StandInUser, params: dict[str, Any], project: str,
                          iid: str) -> tuple[int, Any]:
        mr = self._merge_request(user, project, iid)
        # Only the single merge request's answer has diff_refs. Its base is the target's head
        # when the merge request was opened (GitLab's is their merge base: the same for a
        # source branch made from the target's head).
        shown = self.state.merge_request_json(mr)
        return 200, {**shown, "diff_refs": {"base_sha": mr["_base_sha"],
                                            "start_sha": mr["_base_sha"],
                                            "head_sha": shown["sha"]}}

    def create_merge_request(self, user: StandInUser, params: dict[str, Any],
                             project: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user, DEVELOPER)
        for required in ("source_branch", "target_branch", "title"):
            if not params.get(required):
                raise _missing(required)
        mr = add_merge_request(self.state, found["id"], str(params["source_branch"]),
                               str(params["target_branch"]), title=str(params["title"]),
                               description=str(params.get("description") or ""), author=user)
        return 201, self.state.merge_request_json(mr)

    def update_merge_request(self, user: StandInUser, params: dict[str, Any], project: str,
                             iid: str) -> tuple[int, Any]:
        self.state.project_for(project, user, DEVELOPER)
        mr = self._merge_request(user, project, iid)
        event = params.get("state_event")
        if event not in (None, "close", "reopen"):
            raise ApiError(400, {"error": "state_event does not have a valid value"})
        now = self.state.clock()
        for key in ("title", "description"):
            if params.get(key) is not None:
                mr[key] = str(params[key])
        if params.get("target_branch"):
            mr["target_branch"] = str(params["target_branch"])
        if event == "close" and mr["state"] == "opened":
            mr.update(state="closed", closed_at=_iso(now))
        elif event == "reopen" and _reopenable(self.state, mr):
            mr.update(state="opened", closed_at=None)
        mr["updated_at"] = now
        return 200, self.state.merge_request_json(mr)

    def list_versions(self, user: StandInUser, params: dict[str, Any], project: str,
                      iid: str) -> tuple[int, Any]:
        """List a merge request's diff versions newest first, as GitLab orders them."""
        mr = self._merge_request(user, project, iid)
        return 200, list(reversed(mr["_versions"]))

    def _merge_request(self, user: StandInUser, project: str, iid: str) -> dict[str, Any]:
        found = self.state.project_for(project, user)
        mr = self.state.merge_requests.get(found["id"], {}).get(int(iid))
        if mr is None:
            raise _not_found("Merge Request")
        return mr

    # Merge request notes (spec/gitlab.md §6)

    def list_notes(self, user: StandInUser, params: dict[str, Any], project: str,
                   iid: str) -> tuple[int, Any]:
        mr = self._merge_request(user, project, iid)
        notes = list(self.state.notes.get((mr["project_id"], mr["iid"]), []))
        order_by = params.get("order_by", "created_at")
        if order_by not in ("created_at", "updated_at"):
            raise ApiError(400, {"error": "order_by does not have a valid value"})
        notes.sort(key=lambda n: (n["_" + order_by], n["id"]),
                   reverse=params.get("sort", "desc") != "asc")
        return 200, [_public(n) for n in notes]

    def get_note(self, user: StandInUser, params: dict[str, Any], project: str, iid: str,
                 note_id: str) -> tuple[int, Any]:
        return 200, _public(self._note(user, project, iid, note_id))

    def create_note(self, user: StandInUser, params: dict[str, Any], project: str,
                    iid: str) -> tuple[int, Any]:
        mr = self._merge_request(user, project, iid)
        body = _note_body(params)
        return 201, _public(add_note(self.state, mr, body, user))

    def update_note(self, user: StandInUser, params: dict[str, Any], project: str, iid: str,
                    note_id: str) -> tuple[int, Any]:
        note = self._note(user, project, iid, note_id)
        if note["author"]["id"] != user.id and not user.admin:
            raise _FORBIDDEN
        now = self.state.clock()
        note.update(body=_note_body(params), updated_at=_iso(now), _updated_at=now)
        return 200, _public(note)

    def delete_note(self, user: StandInUser, params: dict[str, Any], project: str, iid: str,
                    note_id: str) -> tuple[int, Any]:
        note = self._note(user, project, iid, note_id)
        mr = self._merge_request(user, project, iid)
        if note["author"]["id"] != user.id and \
                self.state.access_level(mr["project_id"], user) < MAINTAINER:
            raise _FORBIDDEN
        self.state.notes[(mr["project_id"], mr["iid"])].remove(note)
        return 204, None

    def _note(self, user: StandInUser, project: str, iid: str, note_id: str) -> dict[str, Any]:
        mr = self._merge_request(user, project, iid)
        note = next((n for n in self.state.notes.get((mr["project_id"], mr["iid"]), [])
                     if n["id"] == int(note_id)), None)
        if note is None:
            raise _not_found("Note")
        return note

    # Project badges (spec/gitlab.md §5)

    def list_badges(self, user: StandInUser, params: dict[str, Any],
                    project: str) -> tuple[int, Any]:
        """List the project's badges and its group's; `name` filters case-sensitively."""
        found = self.state.project_for(project, user)
        badges = self.state.badges.get(found["id"], [])
        if params.get("name"):
            badges = [b for b in badges if b["name"] == params["name"]]
        return 200, [self.state.badge_json(found["id"], b) for b in badges]

    def get_badge(self, user: StandInUser, params: dict[str, Any], project: str,
                  badge_id: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user)
        return 200, self.state.badge_json(found["id"], self._badge(found, badge_id))

    def create_badge(self, user: StandInUser, params: dict[str, Any],
                     project: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user, MAINTAINER)
        for required in ("link_url", "image_url"):
            if not params.get(required):
                raise _missing(required)
        badge = {"id": self.state.next_id(), "name": str(params.get("name") or ""),
                 "kind": "project"}
        badge.update(_badge_urls(params))
        self.state.badges.setdefault(found["id"], []).append(badge)
        return 201, self.state.badge_json(found["id"], badge)

    def update_badge(self, user: StandInUser, params: dict[str, Any], project: str,
                     badge_id: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user, MAINTAINER)
        badge = self._badge(found, badge_id)
        badge.update(_badge_urls(params))
        if params.get("name") is not None:
            badge["name"] = str(params["name"])
        return 200, self.state.badge_json(found["id"], badge)

    def delete_badge(self, user: StandInUser, params: dict[str, Any], project: str,
                     badge_id: str) -> tuple[int, Any]:
        found = self.state.project_for(project, user, MAINTAINER)
        self.state.badges[found["id"]].remove(self._badge(found, badge_id))
        return 204, None

    def _badge(self, project: dict[str, Any], badge_id: str) -> dict[str, Any]:
        """Find a project badge by id; the project's group badges are not reached here."""
        badge = next((b for b in self.state.badges.get(project["id"], [])
                      if b["id"] == int(badge_id) and b["kind"] == "project"), None)
        if badge is None:
            raise _not_found("Badge")
        return badge


def _badge_urls(params: dict[str, Any]) -> dict[str, str]:
    """Return the badge URLs given, refusing any that is not http(s) as GitLab does."""
    urls = {key: str(params[key]) for key in ("link_url", "image_url") if params.get(key)}
    for key, url in urls.items():
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ApiError(400, {"message": {key: ["is blocked: Only allowed schemes are "
                                                   "http, https"]}})
    return urls


def add_merge_request(state: GitLabState, project_id: int, source_branch: str,
                      target_branch: str, *, title: str, author: StandInUser,
                      description: str = "", mr_state: str = "opened",
                      source_project_id: int | None = None) -> dict[str, Any]:
    """Open a merge request in the state as GitLab would, enforcing its branch rules; its source
    branch is in another project (a fork) when `source_project_id` names one."""
    heads = state.branches[project_id]
    source_project_id = project_id if source_project_id is None else source_project_id
    source_heads = state.branches[source_project_id]
    if source_project_id == project_id and source_branch == target_branch:
        raise ApiError(422, {"message": ["You can't use same project/branch for source and "
                                         "target"]})
    for branch, branches in ((source_branch, source_heads), (target_branch, heads)):
        if branch not in branches:
            raise ApiError(422, {"message": [f"Branch \"{branch}\" does not exist"]})
    mrs = state.merge_requests.setdefault(project_id, {})
    duplicate = next((mr for mr in mrs.values() if mr["state"] == "opened"
                      and mr["source_project_id"] == source_project_id
                      and mr["source_branch"] == source_branch
                      and mr["target_branch"] == target_branch), None)
    if mr_state == "opened" and duplicate is not None:
        raise ApiError(409, {"message": ["Another open merge request already exists for this "
                                         f"source branch: !{duplicate['iid']}"]})
    iid = max(mrs, default=0) + 1
    now = state.clock()
    project = state.projects[project_id]
    mr = {"id": state.next_id(), "iid": iid, "project_id": project_id, "title": title,
          "description": description, "state": mr_state, "created_at": now, "updated_at": now,
          "merged_at": None, "closed_at": None, "source_branch": source_branch,
          "target_branch": target_branch, "source_project_id": source_project_id,
          "target_project_id": project_id, "author": state.user_json(author),
          "sha": source_heads[source_branch], "draft": False, "work_in_progress": False,
          "merge_status": "can_be_merged", "detailed_merge_status": "mergeable",
          "web_url": f"{project['web_url']}/-/merge_requests/{iid}",
          "references": {"short": f"!{iid}", "full": f"{project['path_with_namespace']}!{iid}"},
          "_base_sha": heads[target_branch], "_versions": []}
    if mr_state == "merged":
        mr["merged_at"] = _iso(now)
    add_version(state, mr)
    mrs[iid] = mr
    return mr


def add_version(state: GitLabState, mr: dict[str, Any]) -> None:
    """Record a diff version of a merge request at its source branch's head, as GitLab does
    when it is opened and at each push to that branch."""
    head = state.branches[mr["source_project_id"]].get(mr["source_branch"], mr["sha"])
    start = state.branches[mr["project_id"]].get(mr["target_branch"], mr["_base_sha"])
    mr["_versions"].append({
        "id": state.next_id(), "head_commit_sha": head, "base_commit_sha": mr["_base_sha"],
        "start_commit_sha": start, "created_at": _iso(state.clock()),
        "merge_request_id": mr["id"], "state": "collected", "real_size": "1",
        "patch_id_sha": hashlib.sha1(f"{mr['_base_sha']}..{head}".encode()).hexdigest()})


def _refs_clash(existing: str, new: str) -> bool:
    """Tell whether two branch names cannot coexist because one is a folder of the other."""
    return existing.startswith(new + "/") or new.startswith(existing + "/")


def _reopenable(state: GitLabState, mr: dict[str, Any]) -> bool:
    """Tell whether GitLab would reopen a merge request: closed, both branches there, no twin.

    GitLab answers a refused reopen with the merge request unchanged, not with an error.
    """
    heads = state.branches[mr["project_id"]]
    twin = any(other["state"] == "opened" and other["source_branch"] == mr["source_branch"]
               and other["target_branch"] == mr["target_branch"]
               for other in state.merge_requests[mr["project_id"]].values())
    return (mr["state"] == "closed" and mr["source_branch"] in heads
            and mr["target_branch"] in heads and not twin)


def add_note(state: GitLabState, mr: dict[str, Any], body: str,
             author: StandInUser) -> dict[str, Any]:
    """Add a note to a merge request as its author would post it."""
    now = state.clock()
    note = {"id": state.next_id(), "type": None, "body": body, "attachment": None,
            "author": state.user_json(author), "created_at": _iso(now),
            "updated_at": _iso(now), "system": False, "noteable_id": mr["id"],
            "noteable_type": "MergeRequest", "noteable_iid": mr["iid"],
            "project_id": mr["project_id"], "resolvable": False, "confidential": False,
            "internal": False, "_created_at": now, "_updated_at": now}
    state.notes.setdefault((mr["project_id"], mr["iid"]), []).append(note)
    return note


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """Drop the stand-in's bookkeeping keys (leading underscore) from a record."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _pipeline_id(jobs: list[dict[str, Any]], ref: str, state: GitLabState) -> int:
    """Return the external pipeline of a (commit, ref): the one its earlier jobs joined."""
    earlier = next((j["pipeline_id"] for j in jobs if j["ref"] == ref), None)
    return earlier if earlier is not None else state.next_id()


def _note_body(params: dict[str, Any]) -> str:
    body = params.get("body")
    if not body:
        raise _missing("body")
    if len(str(body)) > MAX_NOTE_CHARS:
        raise ApiError(400, {"message": {"note": [f"is too long (maximum is {MAX_NOTE_CHARS} "
                                                  "characters)"]}})
    return str(body)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def _int(params: Mapping[str, Any], key: str, default: int) -> int:
    try:
        return int(params.get(key, default))
    except (TypeError, ValueError):
        raise _invalid(key) from None


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        raise _invalid("coverage") from None


def _time_param(params: Mapping[str, Any], key: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(params[key]))
    except ValueError:
        raise _invalid(key) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def paginate(items: list[Any], params: Mapping[str, Any], page_url: Callable[[int, int], str],
             with_totals: bool) -> tuple[list[Any], dict[str, str]]:
    """Cut one page out of a list and return it with GitLab's offset-pagination headers."""
    per_page = min(max(_int(params, "per_page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
    page = max(_int(params, "page", 1), 1)
    pages = max(math.ceil(len(items) / per_page), 1)
    headers = {"X-Page": str(page), "X-Per-Page": str(per_page),
               "X-Next-Page": str(page + 1) if page < pages else "",
               "X-Prev-Page": str(page - 1) if page > 1 else ""}
    links = []
    if page < pages:
        links.append(f'<{page_url(page + 1, per_page)}>; rel="next"')
    if page > 1:
        links.append(f'<{page_url(page - 1, per_page)}>; rel="prev"')
    links.append(f'<{page_url(1, per_page)}>; rel="first"')
    if with_totals:
        headers.update({"X-Total": str(len(items)), "X-Total-Pages": str(pages)})
        links.append(f'<{page_url(pages, per_page)}>; rel="last"')
    headers["Link"] = ", ".join(links)
    return items[(page - 1) * per_page:page * per_page], headers


class _Handler(http.server.BaseHTTPRequestHandler):
    """Parse one HTTP request, let the stand-in answer it, write the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in two writes
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gitlab stand-in: " + format, *args)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body, headers = self.server.standin.answer(
            self.command, self.path, dict(self.headers.items()), raw)
        if isinstance(body, bytes):
            payload, content_type = body, headers.pop("Content-Type", "text/plain")
        else:
            payload = b"" if body is None else json.dumps(body).encode()
            content_type = "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("gitlab stand-in: client went away before the answer")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    standin: GitLabStandIn


class GitLabStandIn:
    """Serve the stand-in API on 127.0.0.1 at a random port; use as a context manager.

    A bot user (admin, so it reaches every project) exists from the start: `self.bot`.
    """

    def __init__(self, bot_username: str = "gradehook",
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.state = GitLabState(clock or (lambda: dt.datetime.now(dt.timezone.utc)))
        self.api = GitLabApi(self.state)
        self.requests: list[RecordedRequest] = []
        self._faults: list[FaultPlan] = []
        self._answered = threading.Condition(self.state.lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.bot = self.add_user(bot_username, admin=True)

    # Lifecycle

    def __enter__(self) -> GitLabStandIn:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and answer in a background thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="gitlab-standin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and release the port."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """Return the base URL to give a GitLab client (without /api/v4)."""
        if self._server is None:
            raise RuntimeError("the GitLab stand-in is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # Seeding and reading state

    def add_user(self, username: str, *, admin: bool = False, name: str | None = None,
                 token: str | None = None) -> StandInUser:
        """Create a user with a personal access token."""
        with self.state.lock:
            user = StandInUser(id=self.state.next_id(), username=username,
                               name=name or username.title(),
                               token=token or f"glpat-{secrets.token_urlsafe(15)}", admin=admin)
            self.state.users[user.id] = user
            return user

    def add_project(self, path_with_namespace: str, *, default_branch: str | None = "main",
                    branches: Mapping[str, str] | None = None,
                    members: Mapping[int, int] | None = None) -> dict[str, Any]:
        """Create a project with branches (name -> head SHA) and members (user id -> role)."""
        namespace, _, path = path_with_namespace.rpartition("/")
        with self.state.lock:
            project_id = self.state.next_id()
            web_url = f"http://gitlab.invalid/{path_with_namespace}"
            project = {"id": project_id, "name": path, "path": path,
                       "path_with_namespace": path_with_namespace,
                       "name_with_namespace": path_with_namespace.replace("/", " / "),
                       "namespace": {"name": namespace, "path": namespace.rpartition("/")[2],
                                     "full_path": namespace, "kind": "group"},
                       "default_branch": default_branch if branches else None,
                       "visibility": "private", "web_url": web_url,
                       "http_url_to_repo": f"{web_url}.git",
                       "created_at": _iso(self.state.clock())}
            self.state.projects[project_id] = project
            self.state.branches[project_id] = dict(branches or {})
            self.state.members[project_id] = dict(members or {})
            return dict(project)

    def add_member(self, project_id: int, user_id: int, access_level: int) -> None:
        """Give a user a role in a project."""
        with self.state.lock:
            self.state.members[project_id][user_id] = access_level

    def set_branch(self, project_id: int, branch: str, sha: str) -> None:
        """Create or move a branch (a push), touching merge requests from it: an open one gets a
        diff version at the new head."""
        with self.state.lock:
            self.state.branches[project_id][branch] = sha
            now = self.state.clock()
            for mrs in self.state.merge_requests.values():
                for mr in mrs.values():
                    if (mr["source_project_id"], mr["source_branch"]) != (project_id, branch):
                        continue
                    moved = mr["sha"] != sha
                    mr.update(sha=sha, updated_at=now)
                    if moved and mr["state"] == "opened":
                        add_version(self.state, mr)

    def add_merge_request(self, project_id: int, source_branch: str, target_branch: str, *,
                          title: str = "Submission", author: StandInUser | None = None,
                          state: str = "opened",
                          source_project_id: int | None = None) -> dict[str, Any]:
        """Create a merge request (state opened, closed or merged) and return its JSON; from a
        fork's branch when `source_project_id` names the fork."""
        if state not in MR_STATES:
            raise ValueError(f"merge request state must be one of {MR_STATES}")
        with self.state.lock:
            mr = add_merge_request(self.state, project_id, source_branch, target_branch,
                                   title=title, author=author or self.bot, mr_state=state,
                                   source_project_id=source_project_id)
            return self.state.merge_request_json(mr)

    def set_merge_request_state(self, project_id: int, iid: int, state: str) -> None:
        """Close, merge or reopen a merge request (merging records when)."""
        if state not in MR_STATES:
            raise ValueError(f"merge request state must be one of {MR_STATES}")
        with self.state.lock:
            now = self.state.clock()
            mr = self.state.merge_requests[project_id][iid]
            mr.update(state=state, updated_at=now)
            if state == "merged":
                mr["merged_at"] = _iso(now)

    def add_note(self, project_id: int, mr_iid: int, body: str,
                 author: StandInUser) -> dict[str, Any]:
        """Post a note on a merge request as another user would."""
        with self.state.lock:
            return _public(add_note(self.state, self.state.merge_requests[project_id][mr_iid],
                                    body, author))

    def notes(self, project_id: int, mr_iid: int) -> list[dict[str, Any]]:
        """Return a merge request's notes, oldest first."""
        with self.state.lock:
            return [_public(n) for n in self.state.notes.get((project_id, mr_iid), [])]

    def add_badge(self, project_id: int, *, name: str, link_url: str, image_url: str,
                  kind: str = "project") -> dict[str, Any]:
        """Give a project a badge as staff would in its settings (kind project), or show it
        one of its group's (kind group)."""
        if kind not in BADGE_KINDS:
            raise ValueError(f"badge kind must be one of {BADGE_KINDS}")
        with self.state.lock:
            badge = {"id": self.state.next_id(), "name": name, "link_url": link_url,
                     "image_url": image_url, "kind": kind}
            self.state.badges.setdefault(project_id, []).append(badge)
            return self.state.badge_json(project_id, badge)

    def badges(self, project_id: int) -> list[dict[str, Any]]:
        """Return a project's badges, its group's included, oldest first."""
        with self.state.lock:
            return [self.state.badge_json(project_id, b)
                    for b in self.state.badges.get(project_id, [])]

    def commit_statuses(self, project_id: int, sha: str,
                        include_retried: bool = False) -> list[dict[str, Any]]:
        """Return the commit status jobs of a commit, oldest first."""
        with self.state.lock:
            jobs = self.state.statuses.get((project_id, sha), [])
            return [{**_public(j), "retried": j["_retried"]} for j in jobs
                    if include_retried or not j["_retried"]]

    def merge_request_versions(self, project_id: int, iid: int) -> list[dict[str, Any]]:
        """Return a merge request's diff versions, oldest first."""
        with self.state.lock:
            return [dict(v) for v in self.state.merge_requests[project_id][iid]["_versions"]]

    def merge_requests(self, project_id: int) -> list[dict[str, Any]]:
        """Return a project's merge requests by iid."""
        with self.state.lock:
            return [self.state.merge_request_json(mr) for _, mr in
                    sorted(self.state.merge_requests.get(project_id, {}).items())]

    def branches(self, project_id: int) -> dict[str, str]:
        """Return a project's branches as name -> head SHA."""
        with self.state.lock:
            return dict(self.state.branches[project_id])

    # Faults and recording

    def inject_faults(self, plan: FaultPlan) -> FaultPlan:
        """Add a fault plan (plans are checked in order, the first striking one applies)."""
        if plan.every < 1:
            raise ValueError("FaultPlan.every must be at least 1")
        with self.state.lock:
            self._faults.append(plan)
        return plan

    def clear_faults(self) -> None:
        """Answer every request normally again."""
        with self.state.lock:
            self._faults.clear()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until `condition()` holds after some answer (checked under the state lock).

        Return False if it still does not hold at the deadline. The condition may call the
        reading methods (`commit_statuses`, `notes`, `requests_to`, ...).
        """
        with self._answered:
            return self._answered.wait_for(condition, timeout)

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Return the recorded requests of a method whose path matches a regular expression."""
        with self.state.lock:
            return [r for r in self.requests
                    if r.method == method and re.search(path_pattern, r.path)]

    # Answering

    def answer(self, method: str, raw_path: str, headers: Mapping[str, str],
               raw_body: bytes) -> tuple[int, Any, dict[str, str]]:
        """Answer one HTTP request: (status, JSON body or bytes, extra headers)."""
        split = urllib.parse.urlsplit(raw_path)
        path = split.path
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        body = _decode_body(headers, raw_body)
        user = self._authenticate(headers)
        with self.state.lock:
            fault = next((plan for plan in self._faults
                          if plan.matches(method, path) and plan.strikes()), None)
        if fault is not None and fault.delay_seconds:
            self._stopping.wait(fault.delay_seconds)
        if fault is not None and fault.hold is not None:
            fault.arrived.set()
            fault.hold.wait(HOLD_LIMIT_SECONDS)
        if fault is not None and fault.status is not None:
            status, payload, extra = _fault_answer(fault)
        else:
            status, payload, extra = self._api_answer(method, path, query, body, user,
                                                      headers.get("Host", ""))
        with self._answered:
            self.requests.append(RecordedRequest(
                method=method, path=path, query=query,
                json=body if isinstance(body, (dict, list)) else None, time=time.time(),
                status=status, username=user.username if user else None))
            self._answered.notify_all()
        return status, payload, extra

    def _authenticate(self, headers: Mapping[str, str]) -> StandInUser | None:
        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get("private-token")
        bearer = lowered.get("authorization", "")
        if token is None and bearer.lower().startswith("bearer "):
            token = bearer[7:].strip()
        with self.state.lock:
            return next((u for u in self.state.users.values()
                         if token and secrets.compare_digest(u.token, token)), None)

    def _api_answer(self, method: str, path: str, query: dict[str, list[str]], body: Any,
                    user: StandInUser | None, host: str) -> tuple[int, Any, dict[str, str]]:
        if not path.startswith(API_PREFIX + "/"):
            return 404, {"error": "404 Not Found"}, {}
        if user is None:
            return _UNAUTHORIZED.status, _UNAUTHORIZED.body, {}
        params: dict[str, Any] = {k: v[-1] for k, v in query.items()}
        if isinstance(body, dict):
            params.update(body)
        try:
            status, payload = self.api.dispatch(method, path[len(API_PREFIX):], user, params)
            if method != "GET" or not isinstance(payload, list):
                return status, payload, {}

            def page_url(page: int, per_page: int) -> str:
                wanted = {**query, "page": [str(page)], "per_page": [str(per_page)]}
                return (f"http://{host}{path}?"
                        + urllib.parse.urlencode(wanted, doseq=True))

            # The Commits API (statuses included) sends no totals (spec/gitlab.md §4).
            page, headers = paginate(payload, params, page_url,
                                     with_totals="/repository/commits/" not in path)
            return status, page, headers
        except ApiError as exc:
            return exc.status, exc.body, {}


def _decode_body(headers: Mapping[str, str], raw: bytes) -> Any:
    if not raw:
        return None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _fault_answer(fault: FaultPlan) -> tuple[int, Any, dict[str, str]]:
    """Answer as GitLab (or its proxy) does when rate limiting, failing or busy."""
    if fault.status == 429:
        reset = int(time.time()) + fault.retry_after
        return 429, b"Retry later\n", {
            "Content-Type": "text/plain", "Retry-After": str(fault.retry_after),
            "RateLimit-Name": "throttle_authenticated_api", "RateLimit-Limit": "60",
            "RateLimit-Observed": "61", "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                 time.gmtime(reset))}
    if fault.status == 409:
        return 409, {"message": "Another update to this commit status is in progress"}, {}
    if fault.status in (502, 503, 504):
        page = f"<html><body><h1>{fault.status}</h1>GitLab is not responding</body></html>"
        return fault.status, page.encode(), {"Content-Type": "text/html"}
    return fault.status, {"message": f"{fault.status} Internal Server Error"}, {}


@pytest.fixture
def gitlab_standin() -> Iterator[GitLabStandIn]:
    """Pytest fixture: a running stand-in; import it into a conftest or test module to use it."""
    with GitLabStandIn() as standin:
        yield standin
