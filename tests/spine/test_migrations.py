"""`gradehook db upgrade` builds the ledger on PostgreSQL and SQLite; a second run is a no-op."""

from __future__ import annotations

import subprocess

import sqlalchemy as sa

from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import head_revision
from tests.infra.processes import gradehook_argv, write_config

LEDGER_TABLES = {"alembic_version", "deliveries", "test_runs", "submissions", "execution_backends",
                 "course_assignments"}


def _upgrade(config) -> str:
    result = subprocess.run(gradehook_argv(config, "db", "upgrade"), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _snapshot(url: str) -> dict:
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names())
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            backends = connection.execute(
                sa.text("SELECT type, slug FROM execution_backends")).all()
        columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in sorted(tables)}
        return {"tables": tables, "version": version, "backends": backends, "columns": columns}
    finally:
        engine.dispose()


def _check_twice(config, url):
    first = _upgrade(config)
    assert first == f"database upgraded from empty to {head_revision()}"
    after_first = _snapshot(url)
    assert LEDGER_TABLES <= after_first["tables"]
    assert after_first["backends"] == [("celery", "python-itp")]
    second = _upgrade(config)
    assert second == f"database already at revision {head_revision()}; nothing to do"
    assert _snapshot(url) == after_first


def test_upgrade_twice_on_postgresql(tmp_path, pg_database, service_settings):
    config, settings = service_settings()
    assert settings.database_url.endswith(f"/{pg_database}")
    _check_twice(config, settings.database_url)


def test_upgrade_twice_on_sqlite(tmp_path, monkeypatch):
    for name in ("POSTGRES_HOST", "REDIS_HOST"):
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path, {"data_dir": str(tmp_path / "data")})
    _check_twice(config, f"sqlite:///{tmp_path / 'data' / 'gradehook.sqlite'}")
