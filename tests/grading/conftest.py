"""Fixtures of the grading engine's tests."""

from __future__ import annotations

import os
import tempfile
import venv as venv_module
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def bare_python() -> Iterator[str]:
    """Return an interpreter without the runtime extra (no pytest, no flake8) that a root
    worker's sandbox user can run: a fresh virtualenv in a folder others may enter."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        venv = Path(folder) / "venv"
        venv_module.EnvBuilder(with_pip=False, symlinks=True).create(venv)
        yield str(venv / "bin" / "python")
