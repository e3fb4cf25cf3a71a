"""Entry point of the `gradehook` command: a click group that each feature adds its commands to."""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from pipeline.config import ConfigError
from pipeline.ledger.migrate import lacks_schema

NO_LEDGER_TABLES = ("gradehook: the ledger's tables are missing or out of date: run `gradehook db "
                    "upgrade` first, or name the service's configuration with --config or "
                    "GRADEHOOK_CONFIG")
LEDGER_UNAVAILABLE = "gradehook: the ledger database is unavailable: {reason}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="GRADEHOOK_CONFIG", type=click.Path(),
              help="Configuration file (default: the one GRADEHOOK_CONFIG names, else "
                   "./config.toml, else built-in defaults).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """gradehook: grade students' GitLab pushes and report back on GitLab."""
    ctx.obj = {"config_path": config_path}


def main() -> None:
    """Run the command line; a configuration error is one line on stderr and exit code 2."""
    try:
        # Without standalone mode click returns a command's exit code (ctx.exit) instead of
        # leaving the process with it.
        code = cli.main(standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"gradehook: configuration error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DBAPIError as exc:
        problem = _ledger_problem(exc)
        if problem is None:
            raise
        click.echo(problem, err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def _ledger_problem(exc: DBAPIError) -> str | None:
    """Say in one line why a command could not use the ledger; None for a fault of ours."""
    reason = str(exc.orig).strip()
    if lacks_schema(exc):
        return NO_LEDGER_TABLES
    if isinstance(exc, (OperationalError, InterfaceError)):
        return LEDGER_UNAVAILABLE.format(reason=reason.splitlines()[0] if reason else
                                         type(exc.orig).__name__)
    return None


def _register_commands() -> None:
    from gradehook import worker_cli  # noqa: F401  adds worker status and worker test-job
    from gradehook.badges_cli import badges
    from gradehook.database import db
    from gradehook.maintenance_cli import reconcile, regrade, token_hash
    from gradehook.processes import beat, flower, run, web, worker
    from gradehook.results_cli import results
    from gradehook.submissions_cli import submissions
    from pipeline.grading.cli import grade_command
    for command in (db, run, web, worker, beat, flower, reconcile, regrade, results, submissions,
                    token_hash, badges, grade_command):
        cli.add_command(command)


_register_commands()
