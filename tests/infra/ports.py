"""Free TCP ports on the loopback interface for servers started by tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Return a port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
