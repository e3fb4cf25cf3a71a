"""Byte collectors with a shared cap, fed incrementally from non-blocking descriptors."""

from __future__ import annotations

import os

READ_CHUNK = 65536


class Budget:
    """A number of bytes that several collectors may keep between them."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.exceeded = False


class Collector:
    """Keep what a descriptor delivers, up to the budget; note when more was offered."""

    def __init__(self, fd: int, budget: Budget) -> None:
        self.fd = fd
        self.budget = budget
        self.chunks: list[bytes] = []
        self.closed = False

    def read_available(self) -> None:
        """Read what the descriptor has now; mark it closed at end-of-file."""
        while not self.closed:
            try:
                chunk = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                return
            if not chunk:
                self.closed = True
                return
            self._keep(chunk)
            if self.budget.exceeded:
                return

    def _keep(self, chunk: bytes) -> None:
        room = self.budget.remaining
        if len(chunk) > room:
            self.budget.exceeded = True
            chunk = chunk[:room]
        self.budget.remaining -= len(chunk)
        if chunk:
            self.chunks.append(chunk)

    def data(self) -> bytes:
        """Return everything kept."""
        return b"".join(self.chunks)
