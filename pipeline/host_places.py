"""This host's folders as the messages students and staff read name them: by role, not place."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from pipeline.config import Settings

SHOWN_DATA_DIR = "<data_dir>"
SHOWN_WORKSPACE = "<workspace>"
SHOWN_REPOSITORY_CACHE = "<repository cache>"
SHOWN_REFERENCE_CACHE = "<reference cache>"
SHOWN_VIRTUALENV = "<virtualenv>"
# A place ends where a name in a path ends: /srv/data is not hidden inside /srv/data2.
PLACE_END = r"(?![\w.-])"


def hide_places(message: str, places: Mapping[str, str | os.PathLike]) -> str:
    """Name each place in a message by its role, as given and resolved, the innermost first."""
    roles: dict[str, str] = {}
    for role, place in places.items():
        for form in (os.fspath(place), os.path.realpath(place)):
            if form != os.sep:
                roles.setdefault(form, role)
    for form in sorted(roles, key=len, reverse=True):
        message = re.sub(re.escape(form) + PLACE_END, lambda _, role=roles[form]: role, message)
    return message


def host_places(settings: Settings) -> dict[str, Path | str]:
    """Return the places of this host that a worker's errors may name, by their shown role."""
    places: dict[str, Path | str] = {
        SHOWN_DATA_DIR: settings.data_dir, SHOWN_WORKSPACE: settings.workspace,
        SHOWN_REPOSITORY_CACHE: settings.repository_cache,
        SHOWN_REFERENCE_CACHE: settings.reference_cache}
    if sys.prefix != sys.base_prefix:
        places[SHOWN_VIRTUALENV] = sys.prefix
    return places
