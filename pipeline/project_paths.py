"""Which GitLab project paths gradehook hands to git: `group/subgroup/name`, nothing else."""

from __future__ import annotations

import re
import string

# A name (a part of a path between slashes) starts with one of NAME_STARTS and holds NAME_CHARS;
# GitLab reserves names ending in RESERVED_ENDINGS.
NAME_STARTS = string.ascii_letters + string.digits + "_"
NAME_CHARS = NAME_STARTS + ".+-"
RESERVED_ENDINGS = (".git", ".atom")
_NAME = f"[{re.escape(NAME_STARTS)}][{re.escape(NAME_CHARS)}]*"
PROJECT_PATH_PATTERN = re.compile(f"^{_NAME}(/{_NAME})*$")
MAX_PROJECT_PATH_LENGTH = 255
PROJECT_PATH_RULE = ("a GitLab project path such as group/name, as in the project's address "
                     "after the host")


def is_project_path(path: object) -> bool:
    """Tell whether a string is a GitLab project (or group) path git may be handed."""
    return (isinstance(path, str) and len(path) <= MAX_PROJECT_PATH_LENGTH
            and PROJECT_PATH_PATTERN.fullmatch(path) is not None
            and not any(part in (".", "..") or part.endswith(RESERVED_ENDINGS)
                        for part in path.split("/")))
