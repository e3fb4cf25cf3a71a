"""Copy host trees without following any link: into a sandbox's tmpfs, or for its user to read."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from dataclasses import dataclass
from typing import Callable, ContextManager

from pipeline.sandbox.hostuser import HostUser, creating_as
from pipeline.sandbox.model import SandboxError

TOO_LARGE = "work directory {path} does not fit into the sandbox's {size_mb} MB work directory"
UNREADABLE = "work directory {path} cannot be copied into the sandbox: {reason}"
GROUP_DIR_MODE = 0o750
GROUP_FILE_MODE = 0o640
GROUP_EXECUTABLE_BITS = 0o110


@dataclass(frozen=True)
class _Rules:
    """Who owns the copies (uid, gid; None: this process) and each one's mode from its source's."""

    owner: tuple[int, int] | None
    dir_mode: Callable[[int], int]
    file_mode: Callable[[int], int]

    def creating(self) -> ContextManager[None]:
        """Return the context in which copies are created."""
        return contextlib.nullcontext() if self.owner is None else creating_as(*self.owner)


def copy_tree(source: str, target: str, size_mb: int, owner: HostUser | None) -> None:
    """Copy source's files, directories and symlinks (as links) into the existing target.

    The copies belong to owner (None: to this process) and keep their modes, readable and
    writable by their owner.
    """
    rules = _Rules(None if owner is None else (owner.uid, owner.gid), _owned_dir_mode,
                   _owned_file_mode)
    try:
        _copy_dir(source, target, rules)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SandboxError(TOO_LARGE.format(path=source, size_mb=size_mb)) from None
        raise SandboxError(UNREADABLE.format(path=source, reason=exc)) from None


def copy_for_group(source: str, target: str, gid: int) -> None:
    """Copy a file or tree (links as links) to target: this process's, and only gid may read it."""
    rules = _Rules((os.geteuid(), gid), _group_dir_mode, _group_file_mode)
    if os.path.isdir(source):
        _make_dir(target, os.stat(source).st_mode, rules)
        _copy_dir(source, target, rules)
    else:
        _copy_file(source, target, os.stat(source).st_mode, rules)


def _owned_dir_mode(source_mode: int) -> int:
    return stat.S_IMODE(source_mode) | stat.S_IRWXU


def _owned_file_mode(source_mode: int) -> int:
    return stat.S_IMODE(source_mode) & 0o777 | stat.S_IRUSR | stat.S_IWUSR


def _group_dir_mode(source_mode: int) -> int:
    return GROUP_DIR_MODE


def _group_file_mode(source_mode: int) -> int:
    return GROUP_FILE_MODE | (GROUP_EXECUTABLE_BITS if source_mode & stat.S_IXUSR else 0)


def _copy_dir(source: str, target: str, rules: _Rules) -> None:
    with os.scandir(source) as entries:
        for entry in entries:
            source_path = os.path.join(source, entry.name)
            target_path = os.path.join(target, entry.name)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                _make_dir(target_path, info.st_mode, rules)
                _copy_dir(source_path, target_path, rules)
            elif stat.S_ISREG(info.st_mode):
                _copy_file(source_path, target_path, info.st_mode, rules)
            elif stat.S_ISLNK(info.st_mode):
                link = os.readlink(source_path)
                with rules.creating():
                    os.symlink(link, target_path)


def _make_dir(path: str, source_mode: int, rules: _Rules) -> None:
    with rules.creating():
        os.mkdir(path, stat.S_IRWXU)
        os.chmod(path, rules.dir_mode(source_mode))


def _copy_file(source: str, target: str, source_mode: int, rules: _Rules) -> None:
    source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with rules.creating():
            target_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                stat.S_IRUSR | stat.S_IWUSR)
        try:
            os.fchmod(target_fd, rules.file_mode(source_mode))
            with os.fdopen(source_fd, "rb", closefd=False) as reader, \
                    os.fdopen(target_fd, "wb", closefd=False) as writer:
                shutil.copyfileobj(reader, writer)
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)
