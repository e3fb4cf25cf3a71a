"""Lock files that processes of one host share: opened private to gradehook's user."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def open_lock_file(path: Path) -> BinaryIO:
    """Open (creating it, mode 0600) a file to flock; closing it drops the lock."""
    return open(path, "ab", opener=lambda name, flags: os.open(name, flags, 0o600))
