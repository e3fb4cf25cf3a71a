"""`gradehook db upgrade` builds the ledger on PostgreSQL and SQLite, a second run is a no-op, and
revisions carry rows over."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
import sqlalchemy as sa
from alembic import command

from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import alembic_config, head_revision, upgrade
from pipeline.ledger.models import JSONType
from tests.infra.processes import gradehook_argv, write_config

LEDGER_TABLES = {"alembic_version", "deliveries", "test_runs", "submissions", "execution_backends",
                 "course_assignments", "course_rosters", "roster_projects"}


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


OLD_REFUSALS = {
    "closed": ("refused", "the merge request !3 was closed before it was processed"),
    "retargeted": ("refused", "the merge request !4 now targets main, not the submission branch "
                              "submissions: it hands nothing in"),
    "closed and late": ("refused", "handed in after the deadline of 2026-12-01 22:59:00 UTC: "
                                   "gradehook received this commit at 2026-12-02 08:00:00 UTC, "
                                   "and this assignment accepts no late submissions; the merge "
                                   "request !5 was closed before it was processed"),
    "error": ("error", "the merge request !6 was closed before it was processed"),
}


def test_refusals_only_for_the_merge_requests_state_become_withdrawn(service_settings):
    """Revision 0009: a reopen hands in again what was refused before the upgrade too."""
    _, settings = service_settings()
    engine = make_engine(settings.database_url)
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0008")
            for sha, (outcome, reason) in OLD_REFUSALS.items():
                connection.execute(sa.text(
                    "INSERT INTO submissions (id, course, assignment, project_path, commit_sha, "
                    "received_at, outcome, reason, late, source) VALUES (:sha, 'prog1', "
                    "'week1/hello', 'students/alice', :sha, now(), :outcome, :reason, false, "
                    "'merge_request')"), {"sha": sha, "outcome": outcome, "reason": reason})
        upgrade(engine)
        with engine.connect() as connection:
            withdrawn = dict(connection.execute(sa.text(
                "SELECT commit_sha, withdrawn FROM submissions")).all())
    finally:
        engine.dispose()
    assert withdrawn == {"closed": True, "retargeted": True, "closed and late": False,
                         "error": False}


HOST_TEST_YAML = "/var/lib/gradehook/cache/reference-1a2b/extracted/week1/hello/test.yaml"
REPORT_TESTS = {"host": HOST_TEST_YAML, "new": "test.yaml", "pytest": ""}
ENVIRONMENT = {"python": "3.11.2", "platform": "Linux-x86_64-with-glibc2.36",
               "engine": "gradehook 1.2.0"}
RUNS = sa.table("test_runs", *(sa.column(name) for name in (
    "id", "kind", "course", "assignment", "project_path", "commit_sha", "reference_project",
    "reference_ref", "status", "stage", "progress", "attempts", "needs_diff", "received_at")),
    sa.column("report", JSONType))


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_reports_keep_no_host_path_in_properties_test(tmp_path, service_settings, database):
    """Revision 0014: a report written before 09865ea held in properties.test where test.yaml
    lay on the grading host, which GET /api/runs showed staff; it reads test.yaml now, as new
    ones do. Reports of pytest mode (empty), new reports and runs without one are left."""
    reports = {run_id: {"status": "COMPLETED", "properties": {
        "test": test, "specification": "", "pytestflags": "", "exitcode": 1}}
        for run_id, test in REPORT_TESTS.items()}

    kept = _reports_after_upgrade(_ledger_url(tmp_path, service_settings, database), "0013",
                                  reports)

    assert kept == {**reports, "host": {**reports["host"], "properties": {
        **reports["host"]["properties"], "test": "test.yaml"}}}


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_reports_keep_no_host_path_of_the_workers_python(tmp_path, service_settings, database):
    """Revision 0015: a report held in environment.executable the worker's python on the
    grading host, which GET /api/runs showed staff; it is gone, as from new reports."""
    reports = {"old": {"status": "COMPLETED", "environment": {
                   **ENVIRONMENT, "executable": "/opt/gradehook/.venv/bin/python"}},
               "new": {"status": "COMPLETED", "environment": ENVIRONMENT}}

    kept = _reports_after_upgrade(_ledger_url(tmp_path, service_settings, database), "0014",
                                  reports)

    assert kept == {**reports, "old": reports["new"]}


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_reports_keep_no_kernel_release_of_the_grading_host(tmp_path, service_settings, database):
    """Revision 0016: a report held in environment.platform the grading host's kernel release
    and build (platform.platform()), which GET /api/runs showed staff; it names the system, the
    machine and the C library alone, as new ones do. Reports without it are left."""
    def with_platform(platform: str) -> dict:
        return {"status": "COMPLETED", "environment": {**ENVIRONMENT, "platform": platform}}

    reports = {"debian": with_platform("Linux-6.1.0-13-amd64-x86_64-with-glibc2.36"),
               "vm": with_platform("Linux-6.18.44-fc-v769-x86_64-with-glibc2.36"),
               "no-libc": with_platform("Linux-6.1.0-aarch64"),
               "new": with_platform("Linux-x86_64-with-glibc2.36"),
               "no-environment": {"status": "COMPLETED"}}

    kept = _reports_after_upgrade(_ledger_url(tmp_path, service_settings, database), "0015",
                                  reports)

    assert kept == {**reports, "debian": reports["new"], "vm": reports["new"],
                    "no-libc": with_platform("Linux-aarch64")}


def _ledger_url(tmp_path, service_settings, database: str) -> str:
    """Return the URL of an empty ledger on PostgreSQL or SQLite."""
    if database == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return service_settings()[1].database_url


def _reports_after_upgrade(url: str, revision: str, reports: dict[str, dict]) -> dict:
    """Keep each report in a run of a ledger at a revision, upgrade it to the newest and
    return the reports then, by run; a run without a report is kept too, and stays so."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.execute(RUNS.insert(), [
                {"id": run_id, "kind": "push", "course": "prog1", "assignment": "week1/hello",
                 "project_path": "students/alice", "commit_sha": run_id,
                 "reference_project": "staff/reference", "reference_ref": "main",
                 "status": "failed", "stage": "done", "progress": 100, "attempts": 1,
                 "needs_diff": False, "received_at": dt.datetime.now(dt.timezone.utc),
                 "report": report} for run_id, report in {**reports, "none": None}.items()])
        upgrade(engine)
        with engine.connect() as connection:
            kept = dict(connection.execute(sa.select(RUNS.c.id, RUNS.c.report)).all())
    finally:
        engine.dispose()
    assert kept.pop("none") is None
    return kept
