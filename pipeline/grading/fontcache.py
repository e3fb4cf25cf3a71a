"""A prebuilt matplotlib font cache, so a sandboxed run that plots does not rebuild it each time."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from pipeline.sandbox.scratch import ScratchFolder

log = logging.getLogger(__name__)

BUILD_TIMEOUT_SECONDS = 120
FONT_LIST_PATTERN = "fontlist-*.json"
# The scratch folder a font cache is built in, in the temporary folder: a process killed while it
# builds leaves it there, for housekeeping to remove.
FONT_CACHE_BUILD_PREFIX = "gradehook-mpl-build-"
BUILD_FAILED = "matplotlib font cache for %s not built, runs will build their own: %s"
_lock = threading.Lock()


def font_cache_dir(python: str | None) -> Path | None:
    """Return a directory holding matplotlib's font list for an interpreter, built once per host.

    The list is built by the interpreter's own matplotlib (trusted code, no student input) and
    copied into each sandbox's MPLCONFIGDIR by the runner. None if it cannot be built.
    """
    interpreter = python or sys.executable
    digest = hashlib.sha256(interpreter.encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"gradehook-mpl-{digest}"
    with _lock:
        if any(target.glob(FONT_LIST_PATTERN)):
            return target
        with ScratchFolder(FONT_CACHE_BUILD_PREFIX) as scratch:
            building = scratch / "cache"
            try:
                building.mkdir()
                subprocess.run([interpreter, "-c", "import matplotlib.font_manager"],
                               env={"MPLCONFIGDIR": str(building), "HOME": str(building),
                                    "PATH": os.defpath},
                               capture_output=True, timeout=BUILD_TIMEOUT_SECONDS, check=True)
                if not any(building.glob(FONT_LIST_PATTERN)):
                    raise OSError("no font list was written")
                try:
                    os.replace(building, target)
                except OSError:
                    if not any(target.glob(FONT_LIST_PATTERN)):
                        raise
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning(BUILD_FAILED, interpreter, exc)
                return None
    return target
