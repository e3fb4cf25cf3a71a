"""Load settings for a CLI command from the --config option given to the group."""

from __future__ import annotations

import click

from pipeline.config import Settings, load_settings


def settings_from(ctx: click.Context) -> Settings:
    """Return validated settings for the command being run."""
    return load_settings(ctx.find_root().obj.get("config_path"))
