"""`gradehook db upgrade`: apply the ledger's migrations (safe to repeat)."""

from __future__ import annotations

import click

from gradehook.settings import settings_from
from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import upgrade


@click.group("db")
def db() -> None:
    """Manage the ledger database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the database schema to the newest revision."""
    settings = settings_from(ctx)
    engine = make_engine(settings.database_url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"database already at revision {after}; nothing to do")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")
