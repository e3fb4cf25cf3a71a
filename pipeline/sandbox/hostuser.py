"""The unprivileged host user a root worker starts bwrap as, and what that user can reach."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipeline.sandbox.model import SandboxError

DEFAULT_SANDBOX_USER = "nobody"
UNKNOWN_USER = "sandbox user {name!r}: no such user on this host"
ROOT_USER = "sandbox user {name!r}: is root (uid 0); name an unprivileged user"
SWITCH_FAILED = ("cannot create files as uid {uid} and gid {gid} for the sandbox: this process "
                 "lacks CAP_SETUID or CAP_SETGID")
SEARCH, READ = "search", "read"
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class HostUser:
    """A host account: its name, user id and primary group id."""

    name: str
    uid: int
    gid: int


def can_read(user: HostUser | None, path: Path) -> bool:
    """Tell whether the sandbox's user (None: this process's) may read a file, by the file's
    own mode bits, judged as denied_on_the_way judges each step; the folders on the way are not
    looked at, so a file they hide still counts as readable (the safe side for a check)."""
    if user is None:
        return os.access(path, os.R_OK)
    return _allows(path.stat(), user, os.R_OK)


def sandbox_user(name: str) -> HostUser | None:
    """Return the user to start bwrap as if this process is root; None: bwrap runs as this user."""
    if os.geteuid() != 0:
        return None
    return _look_up(name)


@functools.lru_cache(maxsize=8)
def _look_up(name: str) -> HostUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxError(UNKNOWN_USER.format(name=name)) from None
    if entry.pw_uid == 0:
        raise SandboxError(ROOT_USER.format(name=name))
    return HostUser(name, entry.pw_uid, entry.pw_gid)


def denied_on_the_way(directory: str, user: HostUser) -> tuple[str, str] | None:
    """Return (path, SEARCH or READ) where user is stopped before listing directory, else None.

    Judged by mode bits, with the user's primary group as its only group (bwrap gets no others).
    """
    real = Path(directory).resolve()
    for path in reversed(real.parents):
        if not _allows(path.stat(), user, os.X_OK):
            return str(path), SEARCH
    if not _allows(real.stat(), user, os.R_OK | os.X_OK):
        return str(real), READ
    return None


def _allows(info: os.stat_result, user: HostUser, wanted: int) -> bool:
    if info.st_uid == user.uid:
        granted = (info.st_mode & stat.S_IRWXU) >> 6
    elif info.st_gid == user.gid:
        granted = (info.st_mode & stat.S_IRWXG) >> 3
    else:
        granted = info.st_mode & stat.S_IRWXO
    return granted & wanted == wanted


@contextlib.contextmanager
def creating_as(uid: int, gid: int) -> Iterator[None]:
    """Create files in this thread as uid and gid within the block.

    File system ids are per thread: other threads keep theirs, and this one gets its own back.
    """
    previous_gid = _LIBC.setfsgid(gid)
    previous_uid = _LIBC.setfsuid(uid)
    try:
        # setfsuid and setfsgid report no errors: asking again returns the ids now in force.
        if (_LIBC.setfsuid(uid), _LIBC.setfsgid(gid)) != (uid, gid):
            raise SandboxError(SWITCH_FAILED.format(uid=uid, gid=gid))
        yield
    finally:
        _LIBC.setfsuid(previous_uid)
        _LIBC.setfsgid(previous_gid)
