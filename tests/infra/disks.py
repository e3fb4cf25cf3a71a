"""A small disk of a test's own (a tmpfs mounted on a folder), to fill and free at will."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from pathlib import Path
from typing import Iterator

SIZE_MB = 16
BALLAST = "ballast"
CHUNK = b"\0" * 2 ** 20


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    """Mount a tmpfs of SIZE_MB on a folder until the block ends; yield the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(folder)],
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True, capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file on a folder's disk until the disk is full; return the file."""
    ballast = folder / BALLAST
    with open(ballast, "wb", buffering=0) as out:
        try:
            while True:
                out.write(CHUNK)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return ballast
