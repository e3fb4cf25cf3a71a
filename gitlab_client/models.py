"""Plain records of the GitLab objects gradehook reads, built from API JSON, and what writes did."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Mapping


def _timestamp(value: Any) -> dt.datetime | None:
    """Parse GitLab's ISO 8601 time (e.g. `2024-05-01T10:00:00.000Z`), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


class BadgeChange(str, enum.Enum):
    """What setting a project badge did: added it, pointed it at new URLs, or nothing."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class User:
    """A GitLab user account."""

    id: int
    username: str
    name: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> User:
        """Build from a user JSON object."""
        return cls(id=int(data["id"]), username=str(data["username"]),
                   name=str(data.get("name") or data["username"]))


@dataclass(frozen=True)
class Project:
    """A GitLab project; `default_branch` is None for an empty repository."""

    id: int
    path_with_namespace: str
    default_branch: str | None
    web_url: str | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Project:
        """Build from a project JSON object."""
        return cls(id=int(data["id"]), path_with_namespace=str(data["path_with_namespace"]),
                   default_branch=data.get("default_branch"), web_url=data.get("web_url"))


@dataclass(frozen=True)
class Branch:
    """A branch and the commit at its head."""

    name: str
    commit_sha: str
    protected: bool
    default: bool

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Branch:
        """Build from a branch JSON object."""
        return cls(name=str(data["name"]), commit_sha=str(data["commit"]["id"]),
                   protected=bool(data.get("protected")), default=bool(data.get("default")))


@dataclass(frozen=True)
class MergeRequest:
    """A merge request; `sha` is the head of its source branch.

    `base_sha` is where its changes start (GitLab's `diff_refs.base_sha`), which stays known
    after the merge; only the single merge request's answer carries it. `merged_at` is when
    GitLab merged it (None unless merged).
    """

    iid: int
    project_id: int
    title: str
    state: str
    source_branch: str
    target_branch: str
    source_project_id: int
    target_project_id: int
    sha: str | None
    author_username: str | None
    web_url: str | None
    updated_at: dt.datetime | None
    base_sha: str | None = None
    merged_at: dt.datetime | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> MergeRequest:
        """Build from a merge request JSON object."""
        author = data.get("author") or {}
        return cls(
            iid=int(data["iid"]), project_id=int(data["project_id"]),
            title=str(data.get("title") or ""), state=str(data["state"]),
            source_branch=str(data["source_branch"]), target_branch=str(data["target_branch"]),
            source_project_id=int(data.get("source_project_id") or data["project_id"]),
            target_project_id=int(data.get("target_project_id") or data["project_id"]),
            sha=data.get("sha"), author_username=author.get("username"),
            web_url=data.get("web_url"), updated_at=_timestamp(data.get("updated_at")),
            base_sha=(data.get("diff_refs") or {}).get("base_sha"),
            merged_at=_timestamp(data.get("merged_at")))


@dataclass(frozen=True)
class MergeRequestVersion:
    """One diff version of a merge request: a head commit GitLab recorded for it, and when.

    GitLab makes a version when the merge request is opened and at each push to its source
    branch; `head_commit_sha` is None for a version GitLab could not make.
    """

    id: int
    head_commit_sha: str | None
    created_at: dt.datetime | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> MergeRequestVersion:
        """Build from a merge request diff version JSON object."""
        return cls(id=int(data["id"]), head_commit_sha=data.get("head_commit_sha"),
                   created_at=_timestamp(data.get("created_at")))
