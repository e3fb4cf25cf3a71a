"""Logging set-up shared by the web, worker and CLI processes."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


def configure_logging(level: str) -> None:
    """Send gradehook's log records to stderr at the configured level, once per process."""
    root = logging.getLogger()
    if not any(getattr(h, "gradehook", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.gradehook = True
        root.addHandler(handler)
    root.setLevel(level)
