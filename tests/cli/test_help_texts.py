"""Every option of every gradehook command says in --help what it is for."""

from __future__ import annotations

from typing import Iterator

import click

from gradehook.cli import cli


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    """Yield the command and, for a group, each command under it, with its command line."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_option_of_every_command_has_a_help_text():
    silent = [f"{path} {option.opts[0]}"
              for path, command in _commands(cli, "gradehook")
              for option in command.params
              if isinstance(option, click.Option) and not option.hidden
              and not (option.help or "").strip()]
    assert silent == []
