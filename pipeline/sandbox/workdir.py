"""Copy a host work directory into the sandbox's size-capped tmpfs without following any link."""

from __future__ import annotations

import errno
import os
import shutil
import stat

from pipeline.sandbox.model import SandboxError

TOO_LARGE = "work directory {path} does not fit into the sandbox's {size_mb} MB work directory"
UNREADABLE = "work directory {path} cannot be copied into the sandbox: {reason}"


def copy_tree(source: str, target: str, size_mb: int) -> None:
    """Copy source's files, directories and symlinks (as links) into the existing target."""
    try:
        _copy_dir(source, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SandboxError(TOO_LARGE.format(path=source, size_mb=size_mb)) from None
        raise SandboxError(UNREADABLE.format(path=source, reason=exc)) from None


def _copy_dir(source: str, target: str) -> None:
    with os.scandir(source) as entries:
        for entry in entries:
            source_path = os.path.join(source, entry.name)
            target_path = os.path.join(target, entry.name)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                os.mkdir(target_path, stat.S_IMODE(info.st_mode) | stat.S_IRWXU)
                _copy_dir(source_path, target_path)
            elif stat.S_ISREG(info.st_mode):
                _copy_file(source_path, target_path, stat.S_IMODE(info.st_mode) & 0o777)
            elif stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(source_path), target_path)


def _copy_file(source: str, target: str, mode: int) -> None:
    source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        target_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                            mode | stat.S_IRUSR | stat.S_IWUSR)
        try:
            with os.fdopen(source_fd, "rb", closefd=False) as reader, \
                    os.fdopen(target_fd, "wb", closefd=False) as writer:
                shutil.copyfileobj(reader, writer)
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)
