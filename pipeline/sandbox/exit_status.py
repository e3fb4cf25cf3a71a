"""The program's wait status from the kernel, which tells a signal N from an exit code 128+N.

bwrap (its init, then bwrap itself) reports a program killed by signal N as exit status 128+N,
as does a shell start guard's `$?`; `--json-status-fd` gives that same number. The kernel keeps
the wait status of a reaped process for anyone holding a pidfd on it (PIDFD_INFO_EXIT, Linux
6.15 and later), so the worker opens one on the program before releasing it.
"""

from __future__ import annotations

import fcntl
import struct
from pathlib import Path

# linux/pidfd.h: PIDFD_GET_INFO is _IOWR(0xFF, 11, struct pidfd_info); its first version is
# 64 bytes: the mask of what the kernel filled in first, exit_code (a wait status) at byte 60.
PIDFD_INFO_SIZE = 64
PIDFD_GET_INFO = (3 << 30) | (PIDFD_INFO_SIZE << 16) | (0xFF << 8) | 11
PIDFD_INFO_EXIT = 1 << 3
EXIT_CODE_OFFSET = 60


def children(pid: int) -> list[int] | None:
    """Return the pids of a process's children, or None when the kernel does not list them."""
    try:
        return [int(child) for child in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # the process is gone, or a kernel without CONFIG_PROC_CHILDREN
        return None


def wait_status(pidfd: int) -> int | None:
    """Return the wait status of the reaped process a pidfd refers to, if the kernel kept it."""
    info = bytearray(PIDFD_INFO_SIZE)
    struct.pack_into("=Q", info, 0, PIDFD_INFO_EXIT)
    try:
        fcntl.ioctl(pidfd, PIDFD_GET_INFO, info)
    except OSError:  # before Linux 6.13 no PIDFD_GET_INFO; before 6.15 none once reaped
        return None
    (mask,) = struct.unpack_from("=Q", info, 0)
    if not mask & PIDFD_INFO_EXIT:  # still running, or not reaped yet
        return None
    (status,) = struct.unpack_from("=i", info, EXIT_CODE_OFFSET)
    return status
