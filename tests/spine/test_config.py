"""Configuration: config.toml documents the real defaults; bad values stop start-up in one line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradehook.cli import cli
from gradehook.processes import gunicorn_argv
from pipeline.celery_app import celery_config
from pipeline.config import (NOT_A_SIGNING_TOKEN, ConfigError, Settings, load_settings,
                             usable_cores)

ROOT = Path(__file__).resolve().parents[2]


def test_config_toml_lists_exactly_the_code_defaults():
    shipped = tomllib.loads((ROOT / "config.toml").read_text())
    defaults = Settings()
    for section, values in shipped.items():
        if isinstance(values, dict):
            expected = dataclasses.asdict(getattr(defaults, section))
            assert set(values) == set(expected), f"[{section}] keys differ from the code"
            for key, value in values.items():
                assert value == expected[key], f"{section}.{key}"
        else:
            assert str(getattr(defaults, section)) == str(values), section


def test_config_toml_marks_every_environment_override_of_a_setting():
    lines = (ROOT / "config.toml").read_text().splitlines()
    defaults = Settings()
    sections = {"": Settings, **{f.name: type(getattr(defaults, f.name))
                                 for f in dataclasses.fields(Settings)
                                 if dataclasses.is_dataclass(getattr(defaults, f.name))}}
    marked, section, comments = {}, "", []
    for line in lines:
        if line.startswith("["):
            section, comments = line.strip("[]"), []
        elif line.startswith("#"):
            comments.append(line)
        elif "=" in line:
            key = line.split("=", 1)[0].strip()
            marked[section, key] = " ".join([*comments, line])
            comments = []
    for section, cls in sections.items():
        for f in dataclasses.fields(cls):
            env = f.metadata.get("env")
            if env:
                assert f"[{env}]" in marked[section, f.name], f"{section}.{f.name}: [{env}]"


def test_environment_overrides_the_file(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[redis]\nhost = "file-host"\nport = 1\n[postgres]\nhost = "pg"\n')
    settings = load_settings(config, environ={"REDIS_HOST": "env-host", "REDIS_PORT": "6390",
                                              "POSTGRES_PASSWORD": "p@ss/word",
                                              "GITLAB_URL": "https://gitlab.test"})
    assert settings.redis.host == "env-host" and settings.redis.port == 6390
    assert settings.broker_url == "redis://env-host:6390/0"
    assert settings.database_url == \
        "postgresql+psycopg://gradehook:p%40ss%2Fword@pg:5432/gradehook"
    assert settings.gitlab.url == "https://gitlab.test"
    assert settings.data_dir == tmp_path / "var"


def test_embedded_default_needs_no_server(tmp_path):
    settings = load_settings(environ={}, path=_write(tmp_path, ""))
    assert settings.embedded
    assert settings.broker_url == "filesystem://localhost/"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'gradehook.sqlite'}"


@pytest.mark.parametrize("text, env, message", [
    ("[redis]\nport = 70000\n", {}, "redis.port: must be at most 65535, got 70000"),
    ("", {"REDIS_PORT": "six"}, "redis.port (from REDIS_PORT): must be a whole number, got 'six'"),
    ("[server]\nport = 8000\n", {"GRADEHOOK_PORT": "99999"},
     "server.port (from GRADEHOOK_PORT): must be at most 65535, got 99999"),
    ("", {"GRADEHOOK_WORKER_CONCURRENCY": "-1"},
     "worker.concurrency (from GRADEHOOK_WORKER_CONCURRENCY): must be at least 0, got -1"),
    ("", {"GRADEHOOK_LOG_LEVEL": "debug"},
     "log_level (from GRADEHOOK_LOG_LEVEL): must be one of DEBUG, INFO, WARNING, ERROR, "
     "got 'debug'"),
    ("", {"GITLAB_URL": "gitlab.local"},
     "gitlab.url (from GITLAB_URL): must be an http:// or https:// URL, got 'gitlab.local'"),
    ("[gitlab]\nurl = \"gitlab.local\"\n", {},
     "gitlab.url: must be an http:// or https:// URL, got 'gitlab.local'"),
    # A URL no request could go to; one carrying a password, not shown.
    ("", {"GITLAB_URL": "https://"},
     "gitlab.url (from GITLAB_URL): must be an http:// or https:// URL, got 'https://': it "
     "names no host"),
    ("[gitlab]\nurl = \"https://gitlab.example.com:99999\"\n", {},
     "gitlab.url: must be an http:// or https:// URL, got 'https://gitlab.example.com:99999': "
     "its port is not a number from 1 to 65535"),
    ("[gitlab]\nurl = \"https://gitlab.example.com/my gitlab\"\n", {},
     "gitlab.url: must be an http:// or https:// URL, got 'https://gitlab.example.com/my "
     "gitlab': it holds a space; write a space in a path as %20"),
    ("", {"GITLAB_URL": "https://bot:s3cret@gitlab.example.com"},
     "gitlab.url (from GITLAB_URL): must be an http:// or https:// URL, got "
     "'https://***@gitlab.example.com': it holds a user name or password, which would show "
     "wherever the URL does; gradehook signs in with gitlab.token"),
    # A password with a '/' (the host then read as ending before it), or without the scheme.
    ("", {"GITLAB_URL": "https://bot:s3/cret@gitlab.example.com"},
     "gitlab.url (from GITLAB_URL): must be an http:// or https:// URL, got "
     "'https://***@gitlab.example.com': its port is not a number from 1 to 65535"),
    ("", {"GITLAB_URL": "bot:s3cret@gitlab.example.com"},
     "gitlab.url (from GITLAB_URL): must be an http:// or https:// URL, got "
     "'***@gitlab.example.com'"),
    ("[server]\npublic_url = \"https://grades.example.com/?x=1\"\n", {},
     "server.public_url: must be an http:// or https:// URL, got "
     "'https://grades.example.com/?x=1': it holds a query (?) or fragment (#), which the "
     "addresses made from it cannot"),
    ("[gitlab]\ntokn = \"x\"\n", {}, "gitlab.tokn: unknown setting; did you mean token?"),
    ("[gitlab]\napi_key = \"x\"\n", {}, "gitlab.api_key: unknown setting"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nstudent_project = [\"g/\"]\n", {},
     "courses[0].student_project: unknown setting; did you mean student_projects?"),
    ("[sandbox]\nTimeout_Second = 5\n", {},
     "sandbox.Timeout_Second: unknown setting; did you mean timeout_seconds?"),
    # A setting's name without its unit, as meta.yaml writes its limits.
    ("[sandbox]\ntimeout = 60\n", {},
     "sandbox.timeout: unknown setting; did you mean timeout_seconds?"),
    ("[gitlab]\nRequest_Timeout = 30\n", {},
     "gitlab.Request_Timeout: unknown setting; did you mean request_timeout_seconds?"),
    # A key below another table's header is that table's in TOML: the message says where it
    # belongs.
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nstudent_projects = [\"g/\"]\n"
     "deadline = 2026-12-01T23:59:00+01:00\n", {},
     "courses[0].deadline: not a setting of [[courses]]: deadline is a setting of "
     "[[courses.assignments]], and TOML gives a key to the last [table] header above it: write "
     "it under [[courses.assignments]]"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nstudent_projects = [\"g/\"]\n"
     "[[courses.assignments]]\ndirectory = \"a\"\ndiscover_assignments = false\n", {},
     "courses[0].assignments[0].discover_assignments: not a setting of [[courses.assignments]]: "
     "discover_assignments is a setting of [[courses]]"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nstudent_projects = [\"g/\"]\n"
     "log_level = \"DEBUG\"\n", {},
     "courses[0].log_level: not a setting of [[courses]]: log_level is a top-level setting, and "
     "TOML gives a key to the last [table] header above it: write it above the file's first "
     "[table] header"),
    # Single brackets make one table where a list of them is read.
    ("[courses]\nname = \"c\"\nreference_project = \"r\"\nstudent_projects = [\"g/\"]\n", {},
     "courses: must be a list of [[courses]] tables, written with two brackets: [courses] makes "
     "a single table"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nstudent_projects = [\"g/\"]\n"
     "[courses.assignments]\ndirectory = \"a\"\n", {},
     "courses[0].assignments: must be a list of [[courses.assignments]] tables, written with two "
     "brackets: [courses.assignments] makes a single table"),
    ("timeout_seconds = 5\n", {},
     "timeout_seconds: not a top-level setting: timeout_seconds is a setting of [sandbox]: "
     "write it under [sandbox]"),
    ("[gitlab]\nport = 8080\n", {},
     "gitlab.port: not a setting of [gitlab]: port is a setting of [server], [redis] or "
     "[postgres], and TOML gives a key to the last [table] header above it: write it under the "
     "header of the one meant"),
    ("[[courses]]\nname = \"prog1\"\nreference_project = \"prog1-2026/reference\"\n"
     "student_projects = [\"prog1-2026/students/\", \"prog1-2026/\"]\n", {},
     "courses[0].student_projects[1]: 'prog1-2026/' claims 'prog1-2026/reference', the "
     "reference_project of course 'prog1', whose pushes would then be graded as a student's: "
     "name the students' group or projects alone, e.g. \"prog1-2026/students/\""),
    ("[[courses]]\nname = \"prog1\"\nreference_project = \"shared/prog1-reference\"\n"
     "student_projects = [\"prog1/students/\"]\n"
     "[[courses]]\nname = \"prog2\"\nreference_project = \"prog2/reference\"\n"
     "student_projects = [\"shared/\"]\n", {},
     "courses[1].student_projects[0]: 'shared/' claims 'shared/prog1-reference', the "
     "reference_project of course 'prog1'"),
    ("[worker]\nstudent_testing_soft_time_limit = 1800\n", {},
     "worker.student_testing_soft_time_limit: must be below worker.student_testing_time_limit "
     "(1800), got 1800"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nexecution_backend = \"prefect\"\n",
     {}, "courses[0].execution_backend: must be one of celery, local, got 'prefect'"),
    ("[[courses]]\nname = \"c\"\n", {}, "courses[0].reference_project: must be set"),
    (f"[[courses]]\nname = \"{'c' * 129}\"\nreference_project = \"r\"\n", {},
     "courses[0].name: must be at most 128 characters, got 129"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n[[courses.assignments]]\n"
     "directory = \"a\"\ndeadline = 2026-12-01T23:59:00\n", {},
     "courses[0].assignments[0].deadline: must name its time zone offset, e.g. +01:00"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n[[courses.assignments]]\n"
     "directory = \"week1/../secret\"\n", {},
     "courses[0].assignments[0].directory: 'week1/../secret' is not an assignment directory: "
     "it must be folder names joined by '/', each starting with a letter"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n[[courses.assignments]]\n"
     "directory = \"week1/hello\"\n[[courses.assignments]]\ndirectory = \"week1/hello/\"\n",
     {}, "courses[0].assignments[1].directory: 'week1/hello' is listed twice"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nreference_branch = \"\"\n", {},
     "courses[0].reference_branch: must not be empty"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nreference_branch = \"bad..b\"\n",
     {}, "courses[0].reference_branch: 'bad..b' is not a branch name git accepts"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"http://127.0.0.1/prog1/reference\"\n",
     {}, "courses[0].reference_project: 'http://127.0.0.1/prog1/reference' is not a GitLab "
         "project path such as group/name"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"prog1/reference.git\"\n", {},
     "courses[0].reference_project: 'prog1/reference.git' is not a GitLab project path"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n"
     "student_projects = [\"prog1/students/\", \"prog1/bob/\", \"prog1/ alice\"]\n", {},
     "courses[0].student_projects[2]: 'prog1/ alice' is not a GitLab project path"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n"
     "student_projects = [\"https://gitlab.example.com/prog1/\"]\n", {},
     "courses[0].student_projects[0]: 'https://gitlab.example.com/prog1/' is not a GitLab "
     "group path"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n", {},
     "courses[0].student_projects: must list at least one group (ending in '/') or project "
     "pattern, e.g. [\"prog1-2026/students/\"]"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nstudent_projects = []\n", {},
     "courses[0].student_projects: must list at least one group"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\nstudent_projects = [\"s/\"]\n"
     "discover_assignments = false\n", {},
     "courses[0].assignments: the course has none: list them in [[courses.assignments]] "
     "tables, or set discover_assignments = true to grade the reference's folders holding "
     "test.yaml"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n"
     "student_projects = [\"prog1/*\", \"https://gitlab.example.com/prog1/*\"]\n", {},
     "courses[0].student_projects[1]: 'https://gitlab.example.com/prog1/*' matches no GitLab "
     "project: a pattern is a GitLab project path such as group/name, as in the project's "
     "address after the host, with shell wildcards (*, ?, [abc]) where names vary"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n"
     "student_projects = [\"prog1 2026/*\"]\n", {},
     "courses[0].student_projects[0]: 'prog1 2026/*' matches no GitLab project"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n"
     "student_projects = [\"prog1/[ab\"]\n", {},
     "courses[0].student_projects[0]: 'prog1/[ab' matches no GitLab project"),
    ("[[courses]]\nname = \"c\"\nreference_project = \"r\"\n"
     "student_projects = [\"prog1/*.git\"]\n", {},
     "courses[0].student_projects[0]: 'prog1/*.git' matches no GitLab project"),
    ("[[courses]]\nname = \"prog\"\nreference_project = \"r\"\n"
     "student_projects = [\"prog/students/\"]\n"
     "[[courses]]\nname = \"algo\"\nreference_project = \"r\"\n"
     "student_projects = [\"algo/*\", \"prog/students/algo-*\"]\n", {},
     "courses[1].student_projects[1]: 'prog/students/algo-*' (course 'algo') and "
     "'prog/students/' (courses[0].student_projects[0], course 'prog') both claim projects such "
     "as 'prog/students/algo-'; only the first course claiming a project grades it, so course "
     "'algo' would never grade these: give the courses student_projects that claim no project "
     "in common"),
    ("[[courses]]\nname = \"a\"\nreference_project = \"r\"\nstudent_projects = [\"x/*-a\"]\n"
     "[[courses]]\nname = \"b\"\nreference_project = \"r\"\nstudent_projects = [\"x/b-*\"]\n",
     {}, "courses[1].student_projects[0]: 'x/b-*' (course 'b') and 'x/*-a' "
         "(courses[0].student_projects[0], course 'a') both claim projects such as 'x/b-a'"),
    ("[server]\nbadge_key = \"too-short\"\n", {},
     "server.badge_key: must be empty or at least 32 characters, got 9"),
    ("", {"GRADEHOOK_BADGE_KEY": "s" * 31},
     "server.badge_key (from GRADEHOOK_BADGE_KEY): must be empty or at least 32 characters, "
     "got 31"),
    # A signing token every signed delivery would be refused for; the value is not shown.
    ("", {"GITLAB_SIGNING_TOKEN": "my-webhook-secret"},
     "gitlab.signing_token (from GITLAB_SIGNING_TOKEN): " + NOT_A_SIGNING_TOKEN),
    ("[gitlab]\nsigning_token = \"whsec_\"\n", {}, "gitlab.signing_token: " + NOT_A_SIGNING_TOKEN),
    # Base64, but of no 32-byte key: a secret token put here (16 characters read as base64),
    # and a Standard Webhooks token of a 24-byte key, which GitLab does not take.
    ("", {"GITLAB_SIGNING_TOKEN": "mysecrettoken123"},
     "gitlab.signing_token (from GITLAB_SIGNING_TOKEN): " + NOT_A_SIGNING_TOKEN),
    ("", {"GITLAB_SIGNING_TOKEN": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
     "gitlab.signing_token (from GITLAB_SIGNING_TOKEN): " + NOT_A_SIGNING_TOKEN),
    ("[gitlab]\nrequire_signature = true\nwebhook_secret = \"s\"\n", {},
     "gitlab.require_signature: needs gitlab.signing_token (GITLAB_SIGNING_TOKEN), the "
     "webhook's signing token: without it, every delivery would be refused"),
    ("port = [", {}, "c.toml: not valid TOML"),
    ("[sandbox]\ntimeout_seconds = nan\n", {},
     "sandbox.timeout_seconds: must be a finite number, got nan"),
    ("[gitlab]\nrequest_timeout_seconds = inf\n", {},
     "gitlab.request_timeout_seconds: must be a finite number, got inf"),
])
def test_bad_values_name_the_key(tmp_path, text, env, message):
    with pytest.raises(ConfigError) as error:
        load_settings(_write(tmp_path, text), environ=env)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


# As GitLab's documentation makes one: "whsec_" + base64 of 32 random bytes.
GITLAB_SIGNING_TOKEN = "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="


@pytest.mark.parametrize("token", [GITLAB_SIGNING_TOKEN,
                                   GITLAB_SIGNING_TOKEN.removeprefix("whsec_")])
def test_a_signing_token_as_gitlab_shows_it_loads_with_or_without_its_prefix(tmp_path, token):
    settings = load_settings(_write(tmp_path, "[gitlab]\nrequire_signature = true\n"),
                             environ={"GITLAB_SIGNING_TOKEN": token})
    assert settings.gitlab.signing_token == token


def test_cli_stops_with_one_line_and_no_traceback(tmp_path):
    config = _write(tmp_path, "[postgres]\nport = \"five\"\n")
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PORT"}
    result = subprocess.run([sys.executable, "-m", "gradehook", "--config", str(config), "db",
                             "upgrade"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr == ("gradehook: configuration error: postgres.port: must be a whole "
                             "number, got 'five'\n")


@pytest.mark.parametrize("data_dir, complaint", [
    ("{tmp}/c.toml", "data_dir: {tmp}/c.toml is a file, not a folder"),
    ("/proc/gradehook-data", "data_dir: /proc/gradehook-data cannot be made: No such file or "
                             "directory"),
])
def test_a_data_dir_that_cannot_be_made_is_named_in_one_line(tmp_path, data_dir, complaint):
    config = _write(tmp_path, f'data_dir = "{data_dir.format(tmp=tmp_path)}"\n')
    result = subprocess.run([sys.executable, "-m", "gradehook", "--config", str(config),
                             "results"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (
        2, f"gradehook: configuration error: {complaint.format(tmp=tmp_path)}\n")


def test_student_projects_may_be_groups_patterns_or_projects(tmp_path):
    settings = load_settings(_write(tmp_path, (
        '[[courses]]\nname = "c"\nreference_project = "prog1/reference"\n'
        'reference_branch = "release/2026"\nstudent_projects = ["prog1/students/", '
        '"prog1/team-*", "prog1/[ab]*/x", "prog1/extra.student", "*/alice?", "[!p]*/bob"]\n')),
        environ={})
    course, = settings.courses
    assert course.reference_branch == "release/2026"
    assert [course.claims(p) for p in ("prog1/students/alice", "prog1/team-3", "prog1/a1/x",
                                       "prog1/extra.student", "prog1/other")] == \
        [True, True, True, True, False]


def test_missing_config_file_is_named(tmp_path):
    named = r"config file .*nope.toml' does not exist \(named by --config or GRADEHOOK_CONFIG\)"
    with pytest.raises(ConfigError, match=named):
        load_settings(tmp_path / "nope.toml", environ={})


def test_the_config_option_says_gradehook_config_names_the_default():
    """Before, --help gave ./config.toml as the default, which GRADEHOOK_CONFIG replaces."""
    result = CliRunner().invoke(cli, ["--help"])
    described = " ".join(result.output.split())
    assert ("Configuration file (default: the one GRADEHOOK_CONFIG names, else ./config.toml, "
            "else built-in defaults).") in described


def test_a_config_path_that_is_no_file_is_named_as_such(tmp_path):
    """Before, a folder (or /dev/null) named as the config file 'did not exist'."""
    named = (f"config file '{tmp_path}' is not a file (named by --config or "
             "GRADEHOOK_CONFIG)")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, environ={})
    assert str(raised.value) == named


def test_courses_claim_projects_by_group_or_pattern(tmp_path):
    settings = load_settings(_write(tmp_path, (
        "[[courses]]\nname = \"a\"\nreference_project = \"staff/a\"\n"
        "student_projects = [\"prog1/students/\"]\n"
        "[[courses]]\nname = \"b\"\nreference_project = \"staff/b\"\n"
        "student_projects = [\"prog2/*-2026\"]\n")), environ={})
    assert settings.course_for("prog1/students/alice").name == "a"
    assert settings.course_for("prog1/studentsx/alice") is None
    assert settings.course_for("prog2/bob-2026").name == "b"
    assert settings.course_for("prog2/bob-2025") is None


def test_courses_may_claim_projects_by_patterns_that_share_none(tmp_path):
    """Patterns of two courses claiming no project alike load; one course's may overlap."""
    settings = load_settings(_write(tmp_path, (
        "[[courses]]\nname = \"a\"\nreference_project = \"staff/a\"\n"
        "student_projects = [\"prog/students/\", \"prog/students/algo-*\", \"x/*-a\"]\n"
        "[[courses]]\nname = \"b\"\nreference_project = \"staff/b\"\n"
        "student_projects = [\"prog/studentsx/\", \"x/*-b\", \"y/[!a-z]\"]\n")),
        environ={})
    claimed = ("prog/students/algo-1", "x/c-a", "x/c-b", "prog/studentsx/bob", "y/Z")
    assert [settings.course_for(p).name for p in claimed] == ["a", "a", "b", "b", "b"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_web_processes_default_to_the_cores_plus_one(tmp_path):
    cores = len(os.sched_getaffinity(0))
    default = load_settings(environ={}, path=_write(tmp_path, ""))
    chosen = load_settings(environ={}, path=_write(tmp_path, "[server]\nweb_workers = 2\n"))

    assert _option(gunicorn_argv(default, None), "--workers") == str(cores + 1)
    assert _option(gunicorn_argv(chosen, None), "--workers") == "2"


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_grading_slots_default_to_the_cores_plus_one_and_processes_to_twice_the_slots(tmp_path):
    cores = len(os.sched_getaffinity(0))
    default = load_settings(environ={}, path=_write(tmp_path, ""))
    slots = load_settings(environ={"GRADEHOOK_WORKER_GRADING_SLOTS": "3"},
                          path=_write(tmp_path, ""))
    chosen = load_settings(environ={"GRADEHOOK_WORKER_CONCURRENCY": "4"},
                           path=_write(tmp_path, ""))

    assert (default.worker.slots, default.worker.processes) == (cores + 1, 2 * (cores + 1))
    assert celery_config(default)["worker_concurrency"] == 2 * (cores + 1)
    assert (slots.worker.slots, slots.worker.processes) == (3, 6)
    assert chosen.worker.processes == 4 and celery_config(chosen)["worker_concurrency"] == 4
    assert chosen.worker.slots == cores + 1


def test_usable_cores_honour_a_containers_cpu_quota(tmp_path):
    cores = len(os.sched_getaffinity(0))
    v2 = tmp_path / "v2"
    (v2 / "pod").mkdir(parents=True)
    (v2 / "pod" / "cpu.max").write_text("50000 100000\n")
    unlimited = tmp_path / "unlimited"
    unlimited.mkdir()
    (unlimited / "cpu.max").write_text("max 100000\n")
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")

    assert usable_cores(v2, "0::/pod\n") == 1  # half a CPU still runs one process
    assert usable_cores(unlimited, "0::/\n") == cores
    assert usable_cores(tmp_path / "v1", "4:cpu,cpuacct:/\n0::/\n") == 1
    assert usable_cores(tmp_path / "nothing", "0::/\n") == cores
