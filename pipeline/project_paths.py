"""Which GitLab project paths gradehook hands to git: `group/subgroup/name`, nothing else."""

from __future__ import annotations

import re

PROJECT_PATH_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$")
MAX_PROJECT_PATH_LENGTH = 255
PROJECT_PATH_RULE = ("a GitLab project path such as group/name, as in the project's address "
                     "after the host")


def is_project_path(path: object) -> bool:
    """Tell whether a string is a GitLab project (or group) path git may be handed."""
    return (isinstance(path, str) and len(path) <= MAX_PROJECT_PATH_LENGTH
            and PROJECT_PATH_PATTERN.fullmatch(path) is not None
            and not any(part in (".", "..") or part.endswith((".git", ".atom"))
                        for part in path.split("/")))
