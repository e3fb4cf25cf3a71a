"""The private result channel: a FIFO shown inside the sandbox, read by the host as written."""

from __future__ import annotations

import os

from pipeline.sandbox.scratch import ScratchFolder

RESULT_CHANNEL_PREFIX = "gradehook-result-"
# With a sandbox user (a root worker), its group may reach the FIFO and write to it, not read it.
GROUP_SEARCH_DIR_MODE = 0o710
GROUP_WRITE_FIFO_MODE = 0o620


class ResultChannel:
    """A host FIFO bound at a path inside the sandbox; everything written to it is collected."""

    def __init__(self, sandbox_path: str, group: int | None) -> None:
        """Make the FIFO; group (None: only this process's user) is the sandbox user's group."""
        self.sandbox_path = sandbox_path
        self._folder = ScratchFolder(RESULT_CHANNEL_PREFIX)
        self.host_path = str(self._folder.path / "result")
        os.mkfifo(self.host_path, 0o600)
        if group is not None:
            for path, mode in ((self._folder.path, GROUP_SEARCH_DIR_MODE),
                               (self.host_path, GROUP_WRITE_FIFO_MODE)):
                os.chown(path, -1, group)
                os.chmod(path, mode)
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
        self._folder.close()
