"""The parsing, authentication and decision modules import no framework and no I/O library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
FORBIDDEN = ("flask", "werkzeug", "sqlalchemy", "celery", "kombu", "redis", "gitlab",
             "requests", "git")


def test_pure_modules_load_without_frameworks():
    probe = ("import sys, webhooks.events, webhooks.auth, webhooks.handlers.router; "
             f"print(','.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60, cwd=REPOSITORY).stdout.strip()
    assert loaded == ""
