"""What a worker checks of its sandbox before it takes work, so that no run pays for a mistake."""

from __future__ import annotations

import os
import tempfile

import click

from pipeline.config import ConfigError, Settings, config_file
from pipeline.sandbox.hostuser import can_read, sandbox_user
from pipeline.sandbox.interpreter import resolve_interpreter
from pipeline.sandbox.layout import shown_folder_of, shown_place
from pipeline.sandbox.model import SandboxError

CONFIG_SHOWN = ("config file {path}: lies in {shown}, which every sandbox shows, and the sandbox "
                "user may read it: any student's program could read the secrets it holds; move "
                "it elsewhere or make it unreadable to that user")


def check_sandbox(ctx: click.Context, settings: Settings) -> None:
    """Refuse to start a worker that could run no sandbox, or whose sandboxes would show what
    students must not read.

    Its sandbox.python is no interpreter, or its sandbox.user no user of this host (a root
    worker's): every run would end as error after its attempts. Its data (runs, repositories,
    reference solutions) or temporary folder lies where every sandbox looks: every run would
    be refused. Its config file lies there and the sandbox user may read it: every student's
    program could read the tokens and passwords it holds.
    """
    try:
        interpreter = resolve_interpreter(settings.sandbox.python or None)
        user = sandbox_user(settings.sandbox.user)
    except SandboxError as exc:
        raise ConfigError(str(exc)) from None
    problem = shown_place([("data_dir", settings.data_dir), ("workspace", settings.workspace),
                           ("repository cache", settings.repository_cache),
                           ("reference cache", settings.reference_cache),
                           ("temporary folder", tempfile.gettempdir())], interpreter)
    if problem is not None:
        raise ConfigError(problem)
    config = config_file(ctx.find_root().obj.get("config_path"), os.environ)
    shown = shown_folder_of(config, interpreter) if config else None
    if shown is not None and can_read(user, config):
        raise ConfigError(CONFIG_SHOWN.format(path=config, shown=shown))
