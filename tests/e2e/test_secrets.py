"""The GitLab token never appears in logs, errors, stored URLs, files or the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.scenario import running_service, solution

pytestmark = pytest.mark.slow


def _ledger_text(engine) -> str:
    """Return every row of every table (ours and Celery's) as text."""
    chunks = []
    with engine.connect() as connection:
        for table in sa.inspect(engine).get_table_names():
            rows = connection.execute(sa.text(f'SELECT * FROM "{table}"')).all()
            chunks.append(f"{table}: {rows!r}")
    return "\n".join(chunks)


def _files_text(root: Path) -> str:
    return "\n".join(path.read_bytes().decode("latin-1") for path in root.rglob("*")
                     if path.is_file())


def test_token_is_nowhere_after_a_full_run(tmp_path, service_settings, git_server):
    with running_service(tmp_path, service_settings, git_server, log_level="DEBUG") as service:
        token = service.gitlab.bot.token
        sha, answer = service.push("main", solution("hi"), key="secret-push")
        assert service.gitlab.wait_for(
            lambda: {"success", "failed"} & set(service.states(sha)), timeout=90)
        settings = service.resources.settings
        ledger = _ledger_text(service.resources.engine)
    assert answer["runs"][0] in ledger, "the ledger dump must hold the run it is checked for"
    logs = (tmp_path / "worker.log").read_text() + (tmp_path / "web.log").read_text()
    assert "commit status" in logs and "DEBUG" in logs, "the logs must be the real, verbose ones"
    for where, text in [("logs", logs), ("ledger", ledger),
                        ("data directory", _files_text(settings.data_dir))]:
        assert token not in text, f"the GitLab token leaked into the {where}"
