"""The project's own code passes flake8 with the settings in setup.cfg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_code_passes_flake8():
    done = subprocess.run([sys.executable, "-m", "flake8"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
