"""Load settings for a CLI command from the --config option given to the group."""

from __future__ import annotations

import os

import click

from pipeline.config import ConfigError, Settings, load_settings

NO_DATA_DIR = "data_dir: {path} cannot be made: {reason}"
DATA_DIR_FILE = "data_dir: {path} is a file, not a folder"
DATA_DIR_READ_ONLY = "data_dir: {path} is not writable by this user"


def settings_from(ctx: click.Context) -> Settings:
    """Return validated settings for the command being run, with their data_dir made."""
    settings = load_settings(ctx.find_root().obj.get("config_path"))
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(DATA_DIR_FILE.format(path=path)) from None
    except OSError as exc:
        raise ConfigError(NO_DATA_DIR.format(path=path, reason=exc.strerror)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(DATA_DIR_READ_ONLY.format(path=path))
    return settings
