"""Fixtures shared by the whole suite: real PostgreSQL, Redis, git repositories, interpreters."""

from __future__ import annotations

import os
import tempfile
import venv as venv_module
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from pipeline.config import Settings, load_settings
from pipeline.sandbox import cgroup as cgroup_module
from tests.infra.gitrepos import GitServer
from tests.infra.processes import write_config
from tests.infra.services import claim_redis_db, create_database, drop_database, \
    release_redis_db, require_service_env

# Property tests draw the same examples on every run (from each test's own source), so a run of
# the suite passes or fails alike on any machine; none is remembered between runs.
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.load_profile("deterministic")
# The share of one CPU a starved run gets (starved_cpu): a program whose work takes half its time
# limit on a CPU of its own takes one and a half times the limit, and waits the limit's length.
STARVED_SHARE = 1 / 3
# How long past its deadline a starved run may still last: the rest of a period its quota is spent
# in (the kernel's 100 ms), the supervisor's poll, the kill.
STOP_LATENCY_SECONDS = 0.2
SKIPPED_IN_CI = ("skipped in CI ({reason}): CI has every service and the sandbox's cgroups, so a "
                 "test skipped there hides a missing one")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """In CI (CI=true, as .ci/run runs), a skipped test fails: it would hide a missing service."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = SKIPPED_IN_CI.format(reason=reason)


@pytest.fixture
def git_server(tmp_path: Path) -> GitServer:
    """Bare repositories standing in for GitLab's git side."""
    return GitServer(tmp_path / "gitlab-git")


@pytest.fixture
def pg_database(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty PostgreSQL database, named in POSTGRES_DB for this test's processes."""
    require_service_env()
    name = create_database()
    monkeypatch.setenv("POSTGRES_DB", name)
    yield name
    drop_database(name)


@pytest.fixture
def redis_db(monkeypatch: pytest.MonkeyPatch) -> int:
    """A Redis database index of this test's own, emptied, named in REDIS_DB for its processes."""
    require_service_env()
    index = claim_redis_db()
    monkeypatch.setenv("REDIS_DB", str(index))
    yield index
    release_redis_db(index)


@pytest.fixture
def service_settings(tmp_path: Path, pg_database: str, redis_db: int, git_server: GitServer):
    """Build (config path, Settings) on Redis and PostgreSQL with extra config merged in."""
    def build(extra: dict | None = None) -> tuple[Path, Settings]:
        config = {"data_dir": str(tmp_path / "data"),
                  "gitlab": {"clone_base": git_server.base_url},
                  "courses": [{"name": "prog1", "student_projects": ["students/"],
                               "reference_project": "staff/reference"}]}
        for key, value in (extra or {}).items():
            if isinstance(value, dict):
                config.setdefault(key, {}).update(value)
            else:
                config[key] = value
        path = write_config(tmp_path / "etc", config)
        return path, load_settings(path)
    return build


@pytest.fixture
def starved_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each sandbox run STARVED_SHARE of one CPU, its cpu cgroup's quota (CFS bandwidth
    control): it waits for a CPU as on a host with more runs than cores, the same on any host."""
    parents = cgroup_module.controller_dirs()
    if parents is None or cgroup_module.SHARE_CONTROLLER not in parents:
        pytest.skip("no writable cgroup v1 cpu controller: a run's CPU cannot be starved")
    create = cgroup_module.RunCgroup.create.__func__

    def starved(cls, memory_bytes: int, max_pids: int) -> cgroup_module.RunCgroup | None:
        group = create(cls, memory_bytes, max_pids)
        cpu = group.dirs[cgroup_module.SHARE_CONTROLLER]
        period = int((cpu / "cpu.cfs_period_us").read_text())
        (cpu / "cpu.cfs_quota_us").write_text(str(int(period * STARVED_SHARE)))
        return group
    monkeypatch.setattr(cgroup_module.RunCgroup, "create", classmethod(starved))


@pytest.fixture
def own_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Give a test and the processes it starts a temporary folder of their own, so that what
    other processes of the host make or remove in theirs meanwhile cannot change what the test
    sees; the sandbox user may pass through it, as through /tmp (tmp_path is made first: pytest
    makes the session's folders in the temporary folder it first sees)."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o711)
        monkeypatch.setenv("TMPDIR", folder)
        monkeypatch.setattr(tempfile, "tempdir", folder)
        yield Path(folder)


@pytest.fixture
def bare_python() -> Iterator[str]:
    """Return an interpreter without the runtime extra (no pytest, no flake8) that a root
    worker's sandbox user can run: a fresh virtualenv in a folder others may enter."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        venv = Path(folder) / "venv"
        venv_module.EnvBuilder(with_pip=False, symlinks=True).create(venv)
        yield str(venv / "bin" / "python")


@pytest.fixture
def old_pytest_python(bare_python: str) -> str:
    """Return an interpreter whose pytest is 7.4.4, older than the pytest runner needs (a
    stand-in: a pytest package telling that version, without flake8)."""
    (site_packages,) = Path(bare_python).parent.parent.glob("lib/python*/site-packages")
    (site_packages / "pytest").mkdir()
    (site_packages / "pytest" / "__init__.py").write_text("__version__ = '7.4.4'\n")
    return bare_python
