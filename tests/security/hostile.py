"""Hostile refs, SHAs, project paths and directories, and a watch on every git process started."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Each names a canary file an option injected into git would create.
UPLOAD_PACK = "--upload-pack=touch {canary}"

VALID_SHA = "0123456789abcdef0123456789abcdef01234567"


def hostile_refs(canary: Path) -> list[str]:
    """Return branch names that must never reach git."""
    return [UPLOAD_PACK.format(canary=canary), "-b", "../../etc/passwd", "main/../../x",
            "main\u202egnp.exe", "ma\u200bin", "main\u2028", "a\x85b", "bad\udc80", "nul\x00x",
            "main\n", "x" * 256, "refs/heads/@{-1}", "main.lock", " main", "main~1",
            "feature/-rf", "wip.lock/x", "@"]


def hostile_shas(canary: Path) -> list[str]:
    """Return commit ids that must never reach git."""
    return [UPLOAD_PACK.format(canary=canary), VALID_SHA + "\n", VALID_SHA + "\x00",
            VALID_SHA + " --upload-pack=x", VALID_SHA[:39], "HEAD", "main",
            "\u0660" * 40, VALID_SHA[:-1] + "\u0661", "a" * 1000]


def hostile_project_paths(canary: Path) -> list[str]:
    """Return project paths that must never reach git."""
    return [UPLOAD_PACK.format(canary=canary), "students/--upload-pack=x", "../../etc/passwd",
            "students/../../etc", "/etc/passwd", "students//alice", "students/alice\n",
            "students/al\u0131ce", "students/alice\u202e", "students/alice\x00",
            "students/alice.git", "students/" + "a" * 260, "file:///etc/passwd"]


def hostile_directories(canary: Path) -> list[str]:
    """Return assignment directories that must never reach git."""
    return [UPLOAD_PACK.format(canary=canary), "../secret", "week1/../../x", "/etc",
            "week1\x00", "week1\n", "week1/\u202e", "we\u200bek1", "week\u00a01",
            "\u0308week1", "week1\x85", ":(top)week1", "week1\\x", "week*", "-x", ".",
            "a/" * 200]


class GitWatch:
    """A `git` first on PATH that logs each command line, then runs the real git."""

    def __init__(self, directory: Path):
        real_git = shutil.which("git")
        if real_git is None:
            raise AssertionError("git is not installed")
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / "git-calls.log"
        self.log.touch()
        script = directory / "git"
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.log}"\n'
                          f'exec "{real_git}" "$@"\n')
        script.chmod(0o755)
        self.directory = directory

    def install(self, monkeypatch) -> None:
        """Put the watching git first on PATH for this test."""
        monkeypatch.setenv("PATH", f"{self.directory}{os.pathsep}{os.environ['PATH']}")

    def calls(self) -> list[str]:
        """Return the command lines git was started with, in order."""
        return self.log.read_text(errors="replace").splitlines()
