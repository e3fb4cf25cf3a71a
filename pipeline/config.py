"""Settings: defaults, config.toml and environment overrides, validated into frozen dataclasses."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import math
import os
import re
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipeline.branch_names import is_branch_name
from pipeline.directory_names import DIRECTORY_RULE, is_directory_name
from pipeline.likely_names import DID_YOU_MEAN, did_you_mean
from pipeline.project_paths import PROJECT_PATH_RULE, is_project_path
from pipeline.project_patterns import common_project, entry_claims
from pipeline.signing_tokens import is_gitlab_signing_token
from pipeline.sandbox.model import HARD_TIMEOUT_SECONDS

CONFIG_ENV = "GRADEHOOK_CONFIG"
# The web port `gradehook run` and `gradehook web --port` hand their children, so that the
# links they write (result pages, badges) name the port actually served.
PORT_ENV = "GRADEHOOK_PORT"
DEFAULT_CONFIG_NAME = "config.toml"
EXECUTION_BACKEND_TYPES = ("celery", "local")
# gradehook hands an assignment in on the branch `submission/<directory>`. Git cannot hold a branch
# `submission` beside branches under `submission/`, so no target branch may be named so.
SUBMISSION_BRANCH_PREFIX = "submission/"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The most submissions or test runs an assignment may allow: the ledger records a submission's
# limit in a 32-bit column.
MAX_SUBMISSION_LIMIT = 2**31 - 1
# A student reads the key of their own project in its badge URL and could try secrets offline
# against it: the secret must be too long to guess.
BADGE_KEY_MIN_CHARS = 32
# A course that could grade nothing is a mistake in config.toml: say so at start-up.
NO_STUDENT_PROJECTS = ("must list at least one group (ending in '/') or project pattern, e.g. "
                       "[\"prog1-2026/students/\"]")
NO_ASSIGNMENTS = ("the course has none: list them in [[courses.assignments]] tables, or set "
                  "discover_assignments = true to grade the reference's folders holding "
                  "test.yaml")
# A project is graded by the first course claiming it: two courses claiming one is a mistake.
SHARED_PROJECTS = ("{key}: {entry!r} (course {course!r}) and {other!r} ({other_key}, course "
                   "{other_course!r}) both claim projects such as {example!r}; only the first "
                   "course claiming a project grades it, so course {course!r} would never grade "
                   "these: give the courses student_projects that claim no project in common")

# A reference repository claimed as a student project would be graded as one: its pushes, the
# reconciler's sweeps of branch heads and merge requests, score badges. Too wide an entry (the
# course's whole group, `*`) does that.
CLAIMS_REFERENCE = ("{key}: {entry!r} claims {reference!r}, the reference_project of course "
                    "{course!r}, whose pushes would then be graded as a student's: name the "
                    "students' group or projects alone, e.g. \"prog1-2026/students/\"")
# Why a URL of gitlab.url or server.public_url is refused though its scheme is right.
URL_NO_HOST = "it names no host"
URL_SPACE = "it holds a space; write a space in a path as %20"
URL_CREDENTIALS = ("it holds a user name or password, which would show wherever the URL does; "
                   "gradehook signs in with gitlab.token")
URL_BAD_PORT = "its port is not a number from 1 to 65535"
URL_QUERY = "it holds a query (?) or fragment (#), which the addresses made from it cannot"
# Every signed delivery would be refused (401) until GitLab disables the webhook: say so at
# start-up instead, without showing the value.
NOT_A_SIGNING_TOKEN = ("must be the webhook's signing token as GitLab shows it, whsec_ followed "
                       "by the base64 of a 32-byte key (44 characters); a secret token goes in "
                       "gitlab.webhook_secret (GITLAB_WEBHOOK_SECRET)")
SIGNATURE_WITHOUT_TOKEN = ("gitlab.require_signature: needs gitlab.signing_token "
                           "(GITLAB_SIGNING_TOKEN), the webhook's signing token: without it, "
                           "every delivery would be refused")
# TOML gives a key to the table whose header is the last one above it: a setting written below
# another table's header (log_level at the end of the file, after [[courses]]; deadline under
# [[courses]] instead of [[courses.assignments]]) lands in that table, where it is unknown.
MISPLACED_SETTING = "{key}: not {here}: {name} is {places}{why}: write it {where}"
LAST_HEADER_ABOVE = ", and TOML gives a key to the last [table] header above it"
# config.toml ends a setting's name with its unit (timeout_seconds, memory_mb): a key without it
# (timeout, as meta.yaml's executionBackend settings write it; memory) likely means that setting.
UNIT_SUFFIXES = ("seconds", "mb", "bytes", "hours", "days")
# `[courses]` makes one table where gradehook reads a list of them: `[[courses]]`, one each.
NOT_TABLES = ("{key}: must be a list of {header} tables, written with two brackets: {single} "
              "makes a single table")


class ConfigError(Exception):
    """A setting is wrong or missing; the message is one line naming the key."""


def env_field(default: Any, env: str | None = None, *, secret: bool = False,
              **checks: Any) -> Any:
    """Declare a setting with its default, optional environment override and checks.

    A secret is left out of its settings' repr, so no log line, error or traceback that shows
    the settings shows it.
    """
    return field(default=default, repr=not secret, metadata={"env": env, **checks})


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = env_field(8000, PORT_ENV, min=1, max=65535)
    public_url: str = env_field("", "GRADEHOOK_PUBLIC_URL", url=True)
    # Empty: badges are public. Set: a badge URL must carry its project's key (badge_keys.py).
    badge_key: str = env_field("", "GRADEHOOK_BADGE_KEY", secret=True,
                               min_length=BADGE_KEY_MIN_CHARS)
    max_body_bytes: int = env_field(26214400, min=1024)
    # 0: default_web_processes(), which depends on the host.
    web_workers: int = env_field(0, min=0)
    web_threads: int = env_field(4, min=1)

    @property
    def web_processes(self) -> int:
        """Return how many gunicorn worker processes to run: the setting, else the default."""
        return self.web_workers or default_web_processes()

    @property
    def base_url(self) -> str:
        """Return the public base URL: the configured one, else this host and port."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class RedisSettings:
    host: str = env_field("", "REDIS_HOST")
    port: int = env_field(6379, "REDIS_PORT", min=1, max=65535)
    password: str = env_field("", "REDIS_PASSWORD", secret=True)
    db: int = env_field(0, "REDIS_DB", min=0)


@dataclass(frozen=True)
class PostgresSettings:
    host: str = env_field("", "POSTGRES_HOST")
    port: int = env_field(5432, "POSTGRES_PORT", min=1, max=65535)
    user: str = env_field("gradehook", "POSTGRES_USER")
    password: str = env_field("", "POSTGRES_PASSWORD", secret=True)
    db: str = env_field("gradehook", "POSTGRES_DB", nonempty=True)


@dataclass(frozen=True)
class GitLabSettings:
    url: str = env_field("https://gitlab.example.com", "GITLAB_URL", url=True)
    token: str = env_field("", "GITLAB_TOKEN", secret=True)
    bot_username: str = env_field("gradehook", "GITLAB_BOT_USERNAME")
    webhook_secret: str = env_field("", "GITLAB_WEBHOOK_SECRET", secret=True)
    signing_token: str = env_field("", "GITLAB_SIGNING_TOKEN", secret=True, signing_token=True)
    require_signature: bool = False
    signature_tolerance_seconds: int = env_field(300, min=1)
    clone_base: str = env_field("", "GITLAB_CLONE_BASE")
    request_timeout_seconds: float = env_field(10.0, min=0.1)
    status_name: str = env_field("gradehook", nonempty=True)
    retest_command: str = env_field("/retest", nonempty=True)

    @property
    def git_base(self) -> str:
        """Return the base URL that repositories are fetched from."""
        return (self.clone_base or self.url).rstrip("/")


CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cores(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> int:
    """Return the CPUs this process may use: its affinity, capped by a cgroup CPU quota.

    A container limited to 2 CPUs on a 64-core node sees all 64 in its affinity; its quota
    (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`) is what it can use.
    """
    cores = len(os.sched_getaffinity(0))
    if proc_cgroup is None:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    quota = _cpu_quota(cgroup_root, proc_cgroup)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def _cpu_quota(cgroup_root: Path, proc_cgroup: str) -> float | None:
    """Return the CPUs a cgroup quota allows this process, or None when there is none."""
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        relative = path.strip("/")
        if controllers == "":  # cgroup v2: "quota period" or "max period"
            for folder in (cgroup_root / relative, cgroup_root):
                with contextlib.suppress(OSError, ValueError):
                    quota, period = (folder / "cpu.max").read_text().split()
                    return None if quota == "max" else int(quota) / int(period)
        elif "cpu" in controllers.split(","):
            for mount in ("cpu", "cpu,cpuacct"):
                for folder in (cgroup_root / mount / relative, cgroup_root / mount):
                    with contextlib.suppress(OSError, ValueError):
                        quota = int((folder / "cpu.cfs_quota_us").read_text())
                        period = int((folder / "cpu.cfs_period_us").read_text())
                        return None if quota < 0 else quota / period
    return None


@functools.cache
def default_web_processes() -> int:
    """Return how many web processes to run when the setting leaves it open (0).

    One more than the cores: a delivery's thread waits on PostgreSQL's commit while holding no
    core, and each process's threads share one interpreter lock (docs/benchmarks.md, "Intake").
    """
    return usable_cores() + 1


@functools.cache
def default_grading_slots() -> int:
    """Return how many runs of this host grade at once when the setting leaves it open (0).

    Grading is CPU-bound: one more than the cores it may use keeps them busy between a
    sandbox's end and the next one's start (docs/benchmarks.md, "End to end").
    """
    return usable_cores() + 1


@dataclass(frozen=True)
class WorkerSettings:
    # 0: twice the grading slots, so that runs waiting on GitLab (a fetch, a status) leave
    # others enough to grade.
    concurrency: int = env_field(0, "GRADEHOOK_WORKER_CONCURRENCY", min=0)
    # 0: default_grading_slots(), which depends on the host.
    grading_slots: int = env_field(0, "GRADEHOOK_WORKER_GRADING_SLOTS", min=0)
    student_testing_soft_time_limit: float = env_field(1740.0, min=0.01)
    student_testing_time_limit: float = env_field(1800.0, min=0.01)
    submission_processing_soft_time_limit: float = env_field(540.0, min=0.01)
    submission_processing_time_limit: float = env_field(600.0, min=0.01)
    max_attempts: int = env_field(5, min=1)
    # A task meeting the ledger's database away tries it again about this often, for as long
    # as it stays away, without using up an attempt.
    database_wait_seconds: float = env_field(10.0, min=0.1)
    reconcile_interval_seconds: float = env_field(60.0, min=1)
    roster_interval_seconds: float = env_field(900.0, min=1)
    submission_retry_hours: float = env_field(24.0, min=1)
    repository_cache: str = "repos"
    workspace: str = "work"
    housekeeping_interval_seconds: float = env_field(3600.0, min=1)
    tree_max_idle_days: float = env_field(7.0, min=1)

    @property
    def slots(self) -> int:
        """Return how many runs of the host may grade at once: the setting, else the default."""
        return self.grading_slots or default_grading_slots()

    @property
    def processes(self) -> int:
        """Return how many worker processes to run: the setting, else twice the slots."""
        return self.concurrency or 2 * self.slots


@dataclass(frozen=True)
class SandboxSettings:
    python: str = env_field("", "GRADEHOOK_SANDBOX_PYTHON")
    user: str = env_field("nobody", "GRADEHOOK_SANDBOX_USER", nonempty=True)
    timeout_seconds: float = env_field(180.0, min=0)
    # pytest mode: each test's own limit within the run's (half the run's when that is shorter,
    # pytest_mode.default_test_seconds); above the engine-wide cap it means nothing.
    test_timeout_seconds: float = env_field(30.0, min=0, max=HARD_TIMEOUT_SECONDS)
    memory_mb: int = env_field(1024, min=16)
    cpu_seconds: int = env_field(300, min=1)
    max_processes: int = env_field(64, min=1)
    max_file_size_mb: int = env_field(64, min=1)
    max_open_files: int = env_field(256, min=16)
    workdir_size_mb: int = env_field(256, min=1)
    max_files: int = env_field(10000, min=1)
    max_output_bytes: int = env_field(1048576, min=1024)


@dataclass(frozen=True)
class ApiSettings:
    staff_token_hashes: str = env_field("", "GRADEHOOK_STAFF_TOKEN_HASHES")
    gitlab_token_cache_seconds: float = env_field(60.0, min=0)
    default_page_size: int = env_field(50, min=1)
    max_page_size: int = env_field(200, min=1)
    event_stream_max_seconds: float = env_field(3600.0, min=1)
    event_poll_seconds: float = env_field(0.2, min=0.01)
    inspect_timeout_seconds: float = env_field(1.0, min=0.1)

    @property
    def staff_token_digests(self) -> tuple[str, ...]:
        """Return the configured sha256 digests of staff tokens, lower-case."""
        return tuple(part.lower() for part in re.split(r"[\s,]+", self.staff_token_hashes)
                     if part)


@dataclass(frozen=True)
class AssignmentSettings:
    # Surrounding slashes are dropped: "week1/hello/" is the assignment week1/hello.
    directory: str = env_field("", nonempty=True, directory=True)
    deadline: dt.datetime | None = None
    max_submissions: int | None = env_field(None, min=0, max=MAX_SUBMISSION_LIMIT)
    max_test_runs: int | None = env_field(None, min=0, max=MAX_SUBMISSION_LIMIT)
    accept_late: bool = False
    # The branch this assignment's submission merge requests target; empty: the course's.
    submission_branch: str = ""


@dataclass(frozen=True)
class CourseSettings:
    # The ledger keeps a course's name in 128 characters.
    name: str = env_field("", nonempty=True, max_length=128)
    student_projects: tuple[str, ...] = ()
    reference_project: str = env_field("", nonempty=True)
    reference_branch: str = env_field("main", nonempty=True)
    submission_branch: str = env_field("submissions", nonempty=True)
    submission_scope_only: bool = True
    discover_assignments: bool = True
    execution_backend: str = env_field("celery", choices=EXECUTION_BACKEND_TYPES)
    assignments: tuple[AssignmentSettings, ...] = ()

    def claims(self, project_path: str) -> bool:
        """Tell whether a GitLab project path is one of this course's student projects."""
        return any(entry_claims(entry, project_path) for entry in self.student_projects)

    def assignment(self, directory: str) -> AssignmentSettings | None:
        """Return the configured settings of one assignment directory, if any."""
        return next((a for a in self.assignments if a.directory == directory), None)

    def submission_branch_for(self, directory: str) -> str:
        """Return the branch an assignment's submissions target: its own, else the course's."""
        configured = self.assignment(directory)
        return (configured and configured.submission_branch) or self.submission_branch


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    log_level: str = env_field("INFO", "GRADEHOOK_LOG_LEVEL",
                               choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    postgres: PostgresSettings = PostgresSettings()
    gitlab: GitLabSettings = GitLabSettings()
    worker: WorkerSettings = WorkerSettings()
    sandbox: SandboxSettings = SandboxSettings()
    api: ApiSettings = ApiSettings()
    courses: tuple[CourseSettings, ...] = ()

    @property
    def embedded(self) -> bool:
        """Tell whether no Redis is configured, so the server-less broker is used."""
        return not self.redis.host

    @property
    def database_url(self) -> str:
        """Return the SQLAlchemy URL of the ledger: PostgreSQL if configured, else SQLite."""
        pg = self.postgres
        if not pg.host:
            return f"sqlite:///{self.data_dir / 'gradehook.sqlite'}"
        auth = urllib.parse.quote(pg.user, safe="")
        if pg.password:
            auth += ":" + urllib.parse.quote(pg.password, safe="")
        return f"postgresql+psycopg://{auth}@{pg.host}:{pg.port}/{urllib.parse.quote(pg.db)}"

    @property
    def broker_url(self) -> str:
        """Return Celery's broker URL: Redis if configured, else the filesystem transport."""
        r = self.redis
        if not r.host:
            # Named host: kombu warns on every connection to a URL without one.
            return "filesystem://localhost/"
        auth = f":{urllib.parse.quote(r.password, safe='')}@" if r.password else ""
        return f"redis://{auth}{r.host}:{r.port}/{r.db}"

    @property
    def broker_folder(self) -> Path:
        """Return the folder of the embedded broker's messages."""
        return self.data_dir / "broker"

    @property
    def repository_cache(self) -> Path:
        """Return the folder of bare repository mirrors."""
        return self.data_dir / self.worker.repository_cache

    @property
    def workspace(self) -> Path:
        """Return the folder where runs get their work directories."""
        return self.data_dir / self.worker.workspace

    @property
    def reference_cache(self) -> Path:
        """Return the folder of cached reference results."""
        return self.data_dir / "reference-cache"

    @property
    def grading_slot_folder(self) -> Path:
        """Return the folder of the host's grading slots (docs/scaling.md)."""
        return self.data_dir / "grading-slots"

    def course_named(self, name: str) -> CourseSettings | None:
        """Return the course of a name, if one is configured."""
        return next((c for c in self.courses if c.name == name), None)

    def course_for(self, project_path: str) -> CourseSettings | None:
        """Return the course that claims a student project path, if any."""
        return next((c for c in self.courses if c.claims(project_path)), None)


def environment_variable(settings_class: type, name: str) -> str | None:
    """Return the environment variable that overrides a setting of a settings class, if any."""
    return next(f.metadata.get("env") for f in dataclasses.fields(settings_class)
                if f.name == name)


def load_settings(path: str | os.PathLike | None = None,
                  environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the config file and environment into validated Settings, or raise ConfigError."""
    environ = os.environ if environ is None else environ
    config_path = config_file(path, environ)
    raw: dict[str, Any] = {}
    if config_path is not None:
        raw = _read_toml(config_path)
    if overrides:
        raw = _merge(raw, overrides)
    base_dir = config_path.parent if config_path else Path.cwd()
    settings = _build(Settings, raw, "", environ)
    data_dir = (settings.data_dir if settings.data_dir.is_absolute()
                else base_dir / settings.data_dir)
    settings = dataclasses.replace(settings, data_dir=data_dir.resolve())
    _check_cross_fields(settings)
    return settings


def config_file(path: str | os.PathLike | None, environ: Mapping[str, str]) -> Path | None:
    """Return the config file read: the one named (--config, then GRADEHOOK_CONFIG), else
    config.toml in the working directory if there is one."""
    if path is None and environ.get(CONFIG_ENV):
        path = environ[CONFIG_ENV]
    if path is not None:
        p = Path(path)
        if not p.is_file():
            problem = "is not a file" if p.exists() else "does not exist"
            raise ConfigError(f"config file {str(p)!r} {problem} (named by --config or "
                              f"{CONFIG_ENV})")
        return p.resolve()
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default.resolve() if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path.name}: cannot be read: {exc.strerror}") from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(cls: type, raw: Any, prefix: str, environ: Mapping[str, str]) -> Any:
    where = prefix or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(_misplaced(cls, prefix, unknown[0])
                          or f"{_key(prefix, unknown[0])}: unknown setting"
                             f"{_likely_setting(unknown[0], fields)}")
    values = {}
    for name, f in fields.items():
        key = _key(prefix, name)
        env_name = f.metadata.get("env")
        if env_name and environ.get(env_name) is not None:
            # Every complaint about the value names the variable it came from, not only a
            # parse error: staff would look for a port of 99999 in config.toml in vain.
            key = f"{key} (from {env_name})"
            value = _from_env(environ[env_name], f.type, key)
        elif name in raw:
            value = raw[name]
        elif f.type in _NESTED:
            value = {}
        elif f.metadata.get("nonempty") and not f.default:
            raise ConfigError(f"{key}: must be set")
        else:
            continue
        values[name] = _convert(f, value, key, environ)
    return cls(**values)


def _likely_setting(key: str, known: Mapping[str, Any]) -> str:
    """Return `; did you mean <name>?` for the setting an unknown key most likely means: the
    one that is the key with its unit added, else one it misspells; else an empty string."""
    with_unit = [f"{key.lower()}_{unit}" for unit in UNIT_SUFFIXES
                 if f"{key.lower()}_{unit}" in known]
    return (DID_YOU_MEAN.format(name=with_unit[0]) if len(with_unit) == 1
            else did_you_mean(key, known))


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _from_env(text: str, annotation: str, key: str) -> Any:
    if annotation.startswith("int"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key}: must be a whole number, got {text!r}") from None
    if annotation.startswith("float"):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}: must be a number, got {text!r}") from None
    if annotation == "bool":
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{key}: must be true or false, got {text!r}")
    return text


_NESTED = {
    "ServerSettings": ServerSettings, "RedisSettings": RedisSettings,
    "PostgresSettings": PostgresSettings, "GitLabSettings": GitLabSettings,
    "WorkerSettings": WorkerSettings, "SandboxSettings": SandboxSettings,
    "ApiSettings": ApiSettings,
}
_TABLE_LISTS = {
    "tuple[CourseSettings, ...]": CourseSettings,
    "tuple[AssignmentSettings, ...]": AssignmentSettings,
}


def _table_headers() -> dict[type, str]:
    """Return each settings class's TOML table header, '' for the top level."""
    headers = {Settings: ""}
    pending = [Settings]
    while pending:
        owner = pending.pop()
        for f in dataclasses.fields(owner):
            dotted = ".".join(filter(None, (headers[owner].strip("[]"), f.name)))
            if f.type in _NESTED:
                headers[_NESTED[f.type]] = f"[{dotted}]"
                pending.append(_NESTED[f.type])
            elif f.type in _TABLE_LISTS:
                headers[_TABLE_LISTS[f.type]] = f"[[{dotted}]]"
                pending.append(_TABLE_LISTS[f.type])
    return headers


def _misplaced(cls: type, prefix: str, name: str) -> str | None:
    """Say where a setting unknown in one table belongs, when it is another table's; else
    None."""
    headers = _table_headers()
    places = [header for owner, header in headers.items() if owner is not cls
              and name in {f.name for f in dataclasses.fields(owner)
                           if f.type not in _NESTED and f.type not in _TABLE_LISTS}]
    if not places:
        return None
    if places == [""]:
        where = "above the file's first [table] header"
    else:
        where = f"under {places[0]}" if len(places) == 1 else "under the header of the one meant"
    here = headers[cls]
    return MISPLACED_SETTING.format(key=_key(prefix, name), here=_setting_of(here), name=name,
                                    places=_setting_of(*places),
                                    why=LAST_HEADER_ABOVE if here else "", where=where)


def _setting_of(*headers: str) -> str:
    """Describe a setting of these tables ('' for the top level): 'a setting of [a] or [b]'."""
    if headers == ("",):
        return "a top-level setting"
    either = headers[0] if len(headers) == 1 else f"{', '.join(headers[:-1])} or {headers[-1]}"
    return f"a setting of {either}"


def _convert(f: dataclasses.Field, value: Any, key: str, environ: Mapping[str, str]) -> Any:
    annotation = f.type
    if annotation in _NESTED:
        return _build(_NESTED[annotation], value, key, environ)
    if annotation in _TABLE_LISTS:
        item_cls = _TABLE_LISTS[annotation]
        if not isinstance(value, list):
            header = _table_headers()[item_cls]
            raise ConfigError(NOT_TABLES.format(key=key, header=header, single=header[1:-1]))
        return tuple(_build(item_cls, item, f"{key}[{i}]", {}) for i, item in enumerate(value))
    if annotation == "tuple[str, ...]":
        items = _as_list(value, key)
        if not all(isinstance(item, str) and item for item in items):
            raise ConfigError(f"{key}: must be a list of non-empty strings")
        return tuple(items)
    if annotation == "Path":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: must be a non-empty path string")
        return Path(value)
    if annotation == "dt.datetime | None":
        return _datetime(value, key)
    return _scalar(f, value, key)


def _as_list(value: Any, key: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list")
    return value


def _datetime(value: Any, key: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{key}: must be a date and time like 2026-12-01T23:59:00+01:00") \
                from None
    if not isinstance(value, dt.datetime):
        raise ConfigError(f"{key}: must be a date and time like 2026-12-01T23:59:00+01:00")
    if value.tzinfo is None:
        raise ConfigError(f"{key}: must name its time zone offset, e.g. +01:00")
    return value


def _scalar(f: dataclasses.Field, value: Any, key: str) -> Any:
    annotation = f.type.replace(" | None", "")
    meta = f.metadata
    if value is None and "None" in f.type:
        return None
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be a whole number, got {value!r}")
    elif annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        value = float(value)
        # TOML and float() read nan and inf, which no bound below refuses.
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    elif annotation == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        if meta.get("directory"):
            value = value.strip("/")
        if meta.get("nonempty") and not value:
            raise ConfigError(f"{key}: must not be empty")
        if "max_length" in meta and len(value) > meta["max_length"]:
            raise ConfigError(f"{key}: must be at most {meta['max_length']} characters, "
                              f"got {len(value)}")
        if "min_length" in meta and value and len(value) < meta["min_length"]:
            raise ConfigError(f"{key}: must be empty or at least {meta['min_length']} "
                              f"characters, got {len(value)}")
        if meta.get("directory") and not is_directory_name(value):
            raise ConfigError(f"{key}: {value!r} is not an assignment directory: it must be "
                              f"{DIRECTORY_RULE}, 255 characters at most")
        if meta.get("url") and value:
            _check_url(key, value)
        if meta.get("signing_token") and value and not is_gitlab_signing_token(value):
            raise ConfigError(f"{key}: {NOT_A_SIGNING_TOKEN}")
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{key}: must be one of {', '.join(meta['choices'])}, "
                              f"got {value!r}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{key}: must be at least {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{key}: must be at most {meta['max']}, got {value!r}")
    return value


def _check_cross_fields(settings: Settings) -> None:
    w = settings.worker
    for task in ("student_testing", "submission_processing"):
        soft = getattr(w, f"{task}_soft_time_limit")
        hard = getattr(w, f"{task}_time_limit")
        if soft >= hard:
            raise ConfigError(f"worker.{task}_soft_time_limit: must be below "
                              f"worker.{task}_time_limit ({hard:g}), got {soft:g}")
    if settings.gitlab.require_signature and not settings.gitlab.signing_token:
        raise ConfigError(SIGNATURE_WITHOUT_TOKEN)
    _check_api(settings.api)
    names = [c.name for c in settings.courses]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"courses[{i}].name: {name!r} is used by another course")
    for i, course in enumerate(settings.courses):
        _check_project_path(f"courses[{i}].reference_project", course.reference_project)
        if not is_branch_name(course.reference_branch):
            raise ConfigError(f"courses[{i}].reference_branch: {course.reference_branch!r} is "
                              "not a branch name git accepts")
        for j, pattern in enumerate(course.student_projects):
            _check_student_projects(f"courses[{i}].student_projects[{j}]", pattern)
        _check_submission_branch(f"courses[{i}].submission_branch", course.submission_branch)
        directories = [a.directory for a in course.assignments]
        for j, assignment in enumerate(course.assignments):
            if assignment.directory in directories[:j]:
                raise ConfigError(f"courses[{i}].assignments[{j}].directory: "
                                  f"{assignment.directory!r} is listed twice; give it one "
                                  "[[courses.assignments]] table")
            if assignment.submission_branch:
                _check_submission_branch(f"courses[{i}].assignments[{j}].submission_branch",
                                         assignment.submission_branch)
        _check_grades_something(f"courses[{i}]", course)
    _check_claims_apart(settings.courses)
    _check_references_unclaimed(settings.courses)


def _check_grades_something(key: str, course: CourseSettings) -> None:
    """Refuse a course that could grade nothing: no student project, or no assignment."""
    if not course.student_projects:
        raise ConfigError(f"{key}.student_projects: {NO_STUDENT_PROJECTS}")
    if not course.assignments and not course.discover_assignments:
        raise ConfigError(f"{key}.assignments: {NO_ASSIGNMENTS}")


def _check_claims_apart(courses: tuple[CourseSettings, ...]) -> None:
    """Refuse an entry of a course that claims a project an earlier course claims."""
    entries = [(i, f"courses[{i}].student_projects[{j}]", entry)
               for i, course in enumerate(courses)
               for j, entry in enumerate(course.student_projects)]
    for (i, other_key, other), (k, key, entry) in itertools.combinations(entries, 2):
        if i != k and (example := common_project(other, entry)) is not None:
            raise ConfigError(SHARED_PROJECTS.format(
                key=key, entry=entry, course=courses[k].name, other_key=other_key, other=other,
                other_course=courses[i].name, example=example))


def _check_references_unclaimed(courses: tuple[CourseSettings, ...]) -> None:
    """Refuse a student_projects entry that claims a course's reference project."""
    for owner in courses:
        for i, course in enumerate(courses):
            for j, entry in enumerate(course.student_projects):
                if entry_claims(entry, owner.reference_project):
                    raise ConfigError(CLAIMS_REFERENCE.format(
                        key=f"courses[{i}].student_projects[{j}]", entry=entry,
                        reference=owner.reference_project, course=owner.name))


def _check_project_path(key: str, path: str) -> None:
    if not is_project_path(path):
        raise ConfigError(f"{key}: {path!r} is not {PROJECT_PATH_RULE}")


def _check_student_projects(key: str, pattern: str) -> None:
    """Check a student_projects entry: a group (ending in '/'), a pattern, or a project path."""
    if pattern.endswith("/"):
        if not is_project_path(pattern[:-1]):
            raise ConfigError(f"{key}: {pattern!r} is not a GitLab group path such as "
                              "prog1-2026/students/, as in the group's address after the host")
    elif not any(wildcard in pattern for wildcard in "*?["):
        _check_project_path(key, pattern)
    elif common_project(pattern, pattern) is None:
        # A URL, a space or a '.git' ending, or a '[' left open, matches no project: the
        # course would claim none of its students' pushes.
        raise ConfigError(f"{key}: {pattern!r} matches no GitLab project: a pattern is "
                          f"{PROJECT_PATH_RULE}, with shell wildcards (*, ?, [abc]) where names "
                          "vary")


def _check_url(key: str, url: str) -> None:
    """Refuse a URL that no request could go to, or that would carry a password in the clear;
    a user name or password in it is not shown."""
    parts = urllib.parse.urlsplit(url)
    shown = _without_credentials(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{key}: must be an http:// or https:// URL, got {shown!r}")
    try:
        port_refused = parts.port == 0
    except ValueError:
        port_refused = True
    problem = (URL_BAD_PORT if port_refused
               else URL_NO_HOST if not parts.hostname
               else URL_SPACE if any(c.isspace() for c in url)
               else URL_CREDENTIALS if "@" in parts.netloc
               else URL_QUERY if parts.query or parts.fragment else None)
    if problem:
        raise ConfigError(f"{key}: must be an http:// or https:// URL, got {shown!r}: {problem}")


def _without_credentials(url: str) -> str:
    """Return a URL with what may be a user name and password (all before its last '@') as ***,
    read as text: one holding a '/' or written without its scheme parses as no user name."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    return f"{scheme}{separator}***@{rest.rpartition('@')[2]}" if "@" in rest else url


def _check_submission_branch(key: str, branch: str) -> None:
    if (branch + "/").startswith(SUBMISSION_BRANCH_PREFIX):
        raise ConfigError(f"{key}: {branch!r} collides with the branches "
                          f"{SUBMISSION_BRANCH_PREFIX}<directory> that submissions are made on; "
                          "choose another name")
    if not is_branch_name(branch):
        raise ConfigError(f"{key}: {branch!r} is not a branch name git accepts")


def _check_api(api: ApiSettings) -> None:
    for index, digest in enumerate(api.staff_token_digests):
        if not SHA256_HEX.fullmatch(digest):
            raise ConfigError(f"api.staff_token_hashes: entry {index + 1} is not a sha256 hex "
                              "digest (64 hexadecimal characters); store digests, never tokens")
    if api.default_page_size > api.max_page_size:
        raise ConfigError(f"api.default_page_size: must not exceed api.max_page_size "
                          f"({api.max_page_size}), got {api.default_page_size}")
