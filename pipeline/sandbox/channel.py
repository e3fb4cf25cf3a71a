"""The private result channel: a FIFO in the sandbox's own tmpfs, read by the host as written."""

from __future__ import annotations

import contextlib
import os

from pipeline.sandbox.hostuser import HostUser, creating_as
from pipeline.sandbox.layout import SANDBOX_RESULT_FIFO

# Made readable for this process to open its end, then left for the sandbox to write alone: a
# program reading every file it finds would otherwise wait on it, and take what the runner wrote.
MAKING_MODE = 0o600
FIFO_MODE = 0o200


class ResultChannel:
    """A FIFO made in a sandbox being built; everything written to it is collected."""

    def __init__(self, sandbox_root: str, owner: HostUser | None) -> None:
        """Make the FIFO under sandbox_root (the sandbox's root as the host reaches it, its
        program not yet started), for owner (None: this process's user) to write."""
        path = sandbox_root + SANDBOX_RESULT_FIFO
        ends: list[int] = []
        try:
            # The sandbox's tmpfs takes only files of users its user namespace maps.
            with contextlib.nullcontext() if owner is None else creating_as(owner.uid, owner.gid):
                os.mkfifo(path, MAKING_MODE)
                ends.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
                # Holding a writer ourselves means the reader never sees end-of-file between the
                # program's writes, however often it opens and closes the channel.
                ends.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
                os.chmod(path, FIFO_MODE)
        except OSError:
            for end in ends:
                os.close(end)
            raise
        self.read_fd, self._writer_fd = ends

    def close(self) -> None:
        """Close both ends; the FIFO goes with the sandbox."""
        os.close(self.read_fd)
        os.close(self._writer_fd)
