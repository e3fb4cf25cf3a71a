"""Logging set-up shared by the web, worker and CLI processes."""

from __future__ import annotations

import logging

from pipeline.printable import printable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"
# What each line of untrusted text quoted in a record begins with (quoted_lines).
QUOTE_BAR = "  | "


def configure_logging(level: str) -> None:
    """Send gradehook's log records to stderr at the configured level, once per process."""
    root = logging.getLogger()
    if not any(getattr(h, "gradehook", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.gradehook = True
        root.addHandler(handler)
    root.setLevel(level)


def quoted_lines(text: str) -> str:
    """Return untrusted text for a log record: each line behind QUOTE_BAR, so that none can pass
    for a record of its own, and each character that would not print (a terminal's escapes, a
    carriage return) written as Python escapes it."""
    return "\n".join(QUOTE_BAR + printable(line) for line in text.splitlines())
