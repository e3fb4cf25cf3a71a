"""Parse a GitLab webhook delivery (headers and raw body) into an Event, without I/O."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from pipeline.branch_names import is_branch_name

# GitLab docs, "Webhook events": the X-Gitlab-Event header of each kind we grade from.
# Internal notes (on merge requests since 16.9) come as Confidential Note Hooks, same body.
EVENT_KINDS = {
    "Push Hook": "push",
    "Tag Push Hook": "tag_push",
    "Merge Request Hook": "merge_request",
    "Note Hook": "note",
    "Confidential Note Hook": "note",
}
OTHER_KIND = "other"
# GitLab docs, "System hooks": an instance's system hook sends these kinds with their webhook
# bodies, under one header for every event.
SYSTEM_HOOK = "System Hook"
SYSTEM_HOOK_KINDS = ("push", "tag_push", "merge_request")
ZERO_SHA_LENGTHS = (40, 64)
BRANCH_PREFIX = "refs/heads/"
MAX_PROJECT_PATH_LENGTH = 255
MAX_DELIVERY_KEY_LENGTH = 255
MAX_HEADER_KEY_LENGTH = 200
MAX_EVENT_HEADER_LENGTH = 64
MAX_USERNAME_LENGTH = 255
# GitLab's ids and counts are never negative; the ledger keeps ids in 64-bit columns and
# merge request iids (numbered per project) in 32-bit ones.
MAX_ID = 2**63 - 1
MAX_IID = 2**31 - 1

# Delivery key prefixes: GitLab's own id (webhook-id equals Idempotency-Key, spec §1, so a
# resend seen once with each header still collides), or a key derived from the payload.
GITLAB_KEY_PREFIX = "gitlab:"
PAYLOAD_KEY_PREFIX = "payload:"
BODY_KEY_PREFIX = "body-sha256:"

ERR_CONTENT_TYPE = "Content-Type must be application/json"
ERR_EVENT_HEADER = "X-Gitlab-Event header is missing"
ERR_BAD_EVENT_HEADER = (f"X-Gitlab-Event must be 1 to {MAX_EVENT_HEADER_LENGTH} "
                        "printable ASCII characters")
ERR_NOT_UTF8 = "body is not UTF-8"
ERR_NOT_JSON = "body is not valid JSON"
ERR_NOT_OBJECT = "body must be a JSON object"
ERR_MISSING = "is missing"
ERR_KIND_MISMATCH = "does not match the X-Gitlab-Event header"
ERR_BAD_HEADER_KEY = f"must be 1 to {MAX_HEADER_KEY_LENGTH} printable ASCII characters"
ERR_BAD_UNICODE = "must be valid Unicode text"
ERR_BAD_NUMBER = "must be a whole number from 0 to {maximum}"
ERR_BAD_ACTION = "must be a lowercase word"
ERR_BAD_USERNAME = "is not a GitLab username"
ERR_BAD_SHA = "must be a 40 or 64 character hexadecimal SHA"
ERR_BAD_REF = "is not an acceptable git ref name"
ERR_BAD_PATH = "is not a GitLab project path"

_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}

_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_PATH_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_HEADER_KEY_LENGTH)
_EVENT_HEADER = re.compile(r"[\x20-\x7e]{1,%d}" % MAX_EVENT_HEADER_LENGTH)
_ACTION = re.compile(r"[a-z_]{1,64}")
_USERNAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,%d}" % (MAX_USERNAME_LENGTH - 1))


class DeliveryError(Exception):
    """A delivery cannot be parsed; status is the HTTP answer, field names what was wrong."""

    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class MergeRequest:
    """The merge request of a Merge Request Hook, or the one a note was written on."""

    iid: int
    source_branch: str
    target_branch: str
    last_commit_sha: str | None  # None: GitLab knows no head commit (an empty merge request)
    source_project_id: int | None
    target_project_id: int | None
    state: str | None
    oldrev: str | None
    url: str | None
    updated_at: str | None = None

    @property
    def comes_from_fork(self) -> bool:
        """Tell whether the source branch lives in another project than the target branch."""
        return None not in (self.source_project_id, self.target_project_id) and \
            self.source_project_id != self.target_project_id


@dataclass(frozen=True)
class Note:
    """A comment of a Note Hook; merge_request is set only for notes on merge requests."""

    id: int
    text: str
    noteable_type: str
    merge_request: MergeRequest | None


@dataclass(frozen=True)
class Event:
    """One parsed delivery: what happened, where, by whom, and the key that makes it unique."""

    kind: str
    event_header: str
    delivery_key: str
    action: str | None = None
    project_id: int | None = None
    project_path: str | None = None
    default_branch: str | None = None
    ref: str | None = None
    branch: str | None = None
    before: str | None = None
    after: str | None = None
    checkout_sha: str | None = None
    user_id: int | None = None
    user_username: str | None = None
    changed_paths: frozenset[str] | None = None
    commit_ids: tuple[str, ...] = ()
    merge_request: MergeRequest | None = None
    changes_present: bool = False
    target_branch_changed: bool = False
    note: Note | None = None


def is_zero_sha(sha: str | None) -> bool:
    """Tell whether a SHA is GitLab's all-zeros placeholder for a missing side of a push."""
    return sha is not None and len(sha) in ZERO_SHA_LENGTHS and set(sha) == {"0"}


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Event:
    """Turn a delivery's headers and raw body into an Event, or raise DeliveryError."""
    lowered = {str(name).lower(): value for name, value in headers.items()}
    _check_content_type(lowered.get("content-type"))
    event_header = _event_header(lowered.get("x-gitlab-event"))
    payload = _load_json(body)
    header_key = _header_delivery_key(lowered)
    kind = _kind(event_header, payload)
    if kind == OTHER_KIND:
        key = header_key or BODY_KEY_PREFIX + hashlib.sha256(body).hexdigest()
        return Event(kind=OTHER_KIND, event_header=event_header, delivery_key=key)
    _check_object_kind(payload, kind)
    fields = _PARSERS[kind](payload)
    key = header_key or _derived_key(kind, fields)
    return Event(kind=kind, event_header=event_header, delivery_key=key, **fields)


def _check_content_type(content_type: Any) -> None:
    """Refuse with 415 unless the media type is application/json (parameters allowed)."""
    if not isinstance(content_type, str) or \
            content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise DeliveryError(415, ERR_CONTENT_TYPE, "Content-Type")


def _event_header(value: Any) -> str:
    """Return the X-Gitlab-Event header stripped, refusing a missing or unprintable one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DeliveryError(400, ERR_EVENT_HEADER, "X-Gitlab-Event")
    if not isinstance(value, str) or not _EVENT_HEADER.fullmatch(value.strip()):
        raise DeliveryError(400, ERR_BAD_EVENT_HEADER, "X-Gitlab-Event")
    return value.strip()


def _kind(event_header: str, payload: Mapping[str, Any]) -> str:
    """Return the kind of event a header names; a system hook's body names its own."""
    if event_header == SYSTEM_HOOK:
        object_kind = payload.get("object_kind")
        return object_kind if object_kind in SYSTEM_HOOK_KINDS else OTHER_KIND
    return EVENT_KINDS.get(event_header, OTHER_KIND)


def _load_json(body: bytes) -> dict[str, Any]:
    """Decode the body as one JSON object."""
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise DeliveryError(400, ERR_NOT_UTF8) from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise DeliveryError(400, ERR_NOT_JSON) from None
    if not isinstance(payload, dict):
        raise DeliveryError(400, ERR_NOT_OBJECT)
    return payload


def _header_delivery_key(lowered: Mapping[str, Any]) -> str | None:
    """Return GitLab's delivery id as a key, if a header carries one."""
    # GitLab 19.0 sends webhook-id; 17.4+ sends Idempotency-Key (spec §2, dedup key order).
    for name, shown in (("webhook-id", "webhook-id"), ("idempotency-key", "Idempotency-Key")):
        value = lowered.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not _PRINTABLE_ASCII.fullmatch(value):
            raise DeliveryError(400, f"{shown} {ERR_BAD_HEADER_KEY}", shown)
        return GITLAB_KEY_PREFIX + value
    return None


def _derived_key(kind: str, fields: Mapping[str, Any]) -> str:
    """Derive a delivery key from what makes the payload unique, for GitLab before 17.4."""
    if kind == "merge_request":
        mr = fields["merge_request"]
        # Each change of a merge request saves it anew: a retarget, a second reopen or the
        # update that brought its head share the rest.
        parts = [fields["project_id"], mr.iid, mr.last_commit_sha or "", fields["action"] or "",
                 mr.updated_at or ""]
    elif kind == "note":
        parts = [fields["project_id"], fields["note"].id]
    else:
        parts = [fields["project_id"], fields["ref"], fields["after"]]
    key = PAYLOAD_KEY_PREFIX + ":".join([kind, *map(str, parts)])
    if len(key) > MAX_DELIVERY_KEY_LENGTH:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        key = f"{PAYLOAD_KEY_PREFIX}{kind}:sha256:{digest}"
    return key


def _check_object_kind(payload: Mapping[str, Any], kind: str) -> None:
    """Refuse a body whose object_kind contradicts the X-Gitlab-Event header."""
    object_kind = _get(payload, "object_kind", str)
    if object_kind != kind:
        raise DeliveryError(400, f"object_kind {object_kind!r} {ERR_KIND_MISMATCH}",
                            "object_kind")


def _parse_push(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the Event fields of a push or tag push."""
    ref = _ref(payload, "ref")
    commits = _objects(_get(payload, "commits", list), "commits")
    total = _get(payload, "total_commits_count", int)
    return {
        **_project(payload),
        "ref": ref,
        "branch": ref[len(BRANCH_PREFIX):] if ref.startswith(BRANCH_PREFIX) else None,
        "before": _sha(payload, "before"),
        "after": _sha(payload, "after"),
        "checkout_sha": _sha(payload, "checkout_sha", required=False),
        "user_id": _get(payload, "user_id", int),
        "user_username": _username(payload, "user_username"),
        "commit_ids": tuple(_sha(c, f"commits[{i}].id") for i, c in enumerate(commits)),
        "changed_paths": _changed_paths(commits, total),
    }


def _parse_merge_request(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the Event fields of a merge request event."""
    attributes = _get(payload, "object_attributes", dict)
    changes = _get(payload, "changes", dict, required=False)
    return {
        **_project(payload),
        **_user(payload),
        "action": _action(attributes),
        "merge_request": _merge_request(attributes, "object_attributes"),
        "changes_present": bool(changes),
        "target_branch_changed": bool(changes) and "target_branch" in changes,
    }


def _parse_note(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the Event fields of a comment."""
    attributes = _get(payload, "object_attributes", dict)
    noteable_type = _get(attributes, "object_attributes.noteable_type", str)
    merge_request = None
    if noteable_type == "MergeRequest":
        merge_request = _merge_request(_get(payload, "merge_request", dict), "merge_request")
    note = Note(
        id=_get(attributes, "object_attributes.id", int),
        text=_get(attributes, "object_attributes.note", str),
        noteable_type=noteable_type,
        merge_request=merge_request,
    )
    return {
        **_project(payload),
        **_user(payload),
        "action": _action(attributes),
        "note": note,
    }


_PARSERS = {
    "push": _parse_push,
    "tag_push": _parse_push,
    "merge_request": _parse_merge_request,
    "note": _parse_note,
}


def _project(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the project's id, checked path and default branch."""
    project = _get(payload, "project", dict)
    path = _get(project, "project.path_with_namespace", str)
    if not _is_project_path(path):
        raise DeliveryError(400, f"project.path_with_namespace {ERR_BAD_PATH}",
                            "project.path_with_namespace")
    default_branch = _get(project, "project.default_branch", str, required=False)
    if default_branch is not None:
        _check_ref_name(default_branch, "project.default_branch")
    return {
        "project_id": _get(project, "project.id", int),
        "project_path": path,
        "default_branch": default_branch,
    }


def _user(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the id and username of the user who caused the event."""
    user = _get(payload, "user", dict)
    return {
        "user_id": _get(user, "user.id", int),
        "user_username": _username(user, "user.username"),
    }


def _username(container: Mapping[str, Any], path: str) -> str:
    """Return a username, refusing one GitLab would not allow."""
    value = _get(container, path, str)
    if not _USERNAME.fullmatch(value):
        raise DeliveryError(400, f"{path} {ERR_BAD_USERNAME}", path)
    return value


def _action(attributes: Mapping[str, Any]) -> str | None:
    """Return object_attributes.action if sent, refusing anything but a lowercase word."""
    value = _get(attributes, "object_attributes.action", str, required=False)
    if value is not None and not _ACTION.fullmatch(value):
        raise DeliveryError(400, f"object_attributes.action {ERR_BAD_ACTION}",
                            "object_attributes.action")
    return value


def _merge_request(attributes: Mapping[str, Any], where: str) -> MergeRequest:
    """Return the merge request described at `where`, its branches and SHAs checked."""
    def field(name: str, expected: type, required: bool = True, maximum: int = MAX_ID) -> Any:
        return _get(attributes, f"{where}.{name}", expected, required=required,
                    maximum=maximum)

    source_branch = field("source_branch", str)
    target_branch = field("target_branch", str)
    _check_ref_name(source_branch, f"{where}.source_branch")
    _check_ref_name(target_branch, f"{where}.target_branch")
    # GitLab sends null when the merge request has no diff head (no commits, a source branch
    # gone); a close must still cancel, so only grading needs it.
    last_commit = field("last_commit", dict, required=False)
    return MergeRequest(
        iid=field("iid", int, maximum=MAX_IID),
        source_branch=source_branch,
        target_branch=target_branch,
        last_commit_sha=(None if last_commit is None
                         else _sha(last_commit, f"{where}.last_commit.id")),
        source_project_id=field("source_project_id", int, required=False),
        target_project_id=field("target_project_id", int, required=False),
        state=field("state", str, required=False),
        oldrev=_sha(attributes, f"{where}.oldrev", required=False),
        url=field("url", str, required=False),
        updated_at=field("updated_at", str, required=False),
    )


def _changed_paths(commits: list[Mapping[str, Any]], total: int) -> frozenset[str] | None:
    """Return every path the commits touched, or None when the payload does not list all."""
    # GitLab lists at most the 20 newest commits (spec §3); a short list hides changes.
    if total > len(commits):
        return None
    paths: set[str] = set()
    for i, commit in enumerate(commits):
        for name in ("added", "modified", "removed"):
            listed = commit.get(name)
            if listed is None:
                return None
            where = f"commits[{i}].{name}"
            if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
                raise DeliveryError(400, f"{where} must be a list of strings", where)
            if not all(_is_valid_unicode(p) for p in listed):
                raise DeliveryError(400, f"{where} {ERR_BAD_UNICODE}", where)
            paths.update(listed)
    return frozenset(paths)


def _objects(items: list, where: str) -> list[Mapping[str, Any]]:
    """Return a list after checking that each item is a JSON object."""
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DeliveryError(400, f"{where}[{i}] must be {_TYPE_NAMES[dict]}",
                                f"{where}[{i}]")
    return items


def _get(container: Mapping[str, Any], path: str, expected: type, *,
         required: bool = True, maximum: int = MAX_ID) -> Any:
    """Return the field that ends `path` from its container, checked for presence and type.

    A number must also lie between 0 and `maximum`.
    """
    value = container.get(path.rsplit(".", 1)[-1])
    if value is None:
        if required:
            raise DeliveryError(400, f"{path} {ERR_MISSING}", path)
        return None
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise DeliveryError(400, f"{path} must be {_TYPE_NAMES[expected]}", path)
    if expected is int and not 0 <= value <= maximum:
        raise DeliveryError(400, f"{path} {ERR_BAD_NUMBER.format(maximum=maximum)}", path)
    if expected is str and not _is_valid_unicode(value):
        raise DeliveryError(400, f"{path} {ERR_BAD_UNICODE}", path)
    return value


def _is_valid_unicode(text: str) -> bool:
    """Tell whether text is free of lone surrogates (JSON escapes such as \\ud800 allow them)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _sha(container: Mapping[str, Any], path: str, *, required: bool = True) -> str | None:
    """Return a 40 or 64 hex digit SHA in lower case, refusing anything else."""
    value = _get(container, path, str, required=required)
    if value is not None and not _SHA.fullmatch(value):
        raise DeliveryError(400, f"{path} {ERR_BAD_SHA}", path)
    return value.lower() if value is not None else None


def _ref(container: Mapping[str, Any], path: str) -> str:
    """Return a full ref (refs/…) that is safe to hand to git."""
    value = _get(container, path, str)
    if not value.startswith("refs/"):
        raise DeliveryError(400, f"{path} {ERR_BAD_REF}", path)
    _check_ref_name(value, path)
    if value.startswith(BRANCH_PREFIX):
        _check_ref_name(value[len(BRANCH_PREFIX):], path)  # "@" alone, say, is no branch
    return value


def _check_ref_name(name: str, path: str) -> None:
    """Refuse a ref or branch name that git would reject or that could act as an option."""
    if not is_branch_name(name):
        raise DeliveryError(400, f"{path} {ERR_BAD_REF}", path)


def _is_project_path(path: str) -> bool:
    """Tell whether a path uses only GitLab's project path characters."""
    # GitLab paths: letters, digits, '_', '-', '.'; no leading '-' or '.' in a component, and
    # none ending in '.git' or '.atom' (GitLab reserves those).
    if not path or len(path) > MAX_PROJECT_PATH_LENGTH or ".." in path:
        return False
    return all(_PATH_COMPONENT.fullmatch(part) and not part.endswith((".git", ".atom"))
               for part in path.split("/"))
