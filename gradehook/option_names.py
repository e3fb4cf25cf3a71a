"""Name a command's option in a refusal as click names its own: quoted, '--commit'."""

from __future__ import annotations


def quoted_option(name: str) -> str:
    """Return an option's name (without its dashes) as click writes one in its refusals."""
    return f"'--{name}'"
