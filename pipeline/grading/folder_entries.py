"""Walk a folder to any depth without recursion: a folder thousands deep is walked as any other."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path


def folder_entries(folder: Path, ignored: Collection[str]) -> Iterator[tuple[os.DirEntry, str]]:
    """Yield a folder's entries at any depth with their paths in it, in name order, a folder
    before what it holds and only as far as the reader goes (links not followed; entries named
    in ignored left out, with what they hold)."""
    pending = [(folder, "")] if folder.is_dir() else []
    while pending:
        path, prefix = pending.pop()
        with os.scandir(path) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name in ignored:
                continue
            relative = prefix + entry.name
            yield entry, relative
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), relative + "/"))
