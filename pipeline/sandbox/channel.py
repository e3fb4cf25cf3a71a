"""The private result channel: a FIFO shown inside the sandbox, read by the host as written."""

from __future__ import annotations

import os
import shutil
import tempfile


class ResultChannel:
    """A host FIFO bound at a path inside the sandbox; everything written to it is collected."""

    def __init__(self, sandbox_path: str) -> None:
        self.sandbox_path = sandbox_path
        self._dir = tempfile.mkdtemp(prefix="gradehook-result-")
        self.host_path = os.path.join(self._dir, "result")
        os.mkfifo(self.host_path, 0o600)
        self.read_fd = os.open(self.host_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        # Holding a writer ourselves means the reader never sees end-of-file between the
        # program's writes, however often it opens and closes the channel.
        self._writer_fd = os.open(self.host_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)

    @property
    def binding(self) -> tuple[str, str]:
        """Return (host path, sandbox path) for a read-write bind."""
        return self.host_path, self.sandbox_path

    def close(self) -> None:
        """Close both ends and remove the FIFO."""
        os.close(self.read_fd)
        os.close(self._writer_fd)
        shutil.rmtree(self._dir, ignore_errors=True)
