"""What a worker checks of its sandbox before it takes work, so that no run pays for a mistake."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import click

from pipeline.config import (ConfigError, SandboxSettings, Settings, config_file,
                             environment_variable)
from pipeline.grading.errors import (SANDBOX_MODULES, SandboxModule, module_missing,
                                     pytest_too_old)
from pipeline.grading.execution import sandbox_wall_seconds
from pipeline.grading.linting import last_stderr_line
from pipeline.housekeeping import WORKSPACE_PREFIX
from pipeline.sandbox import PYTHON_PLACEHOLDER, SandboxLimits, run_sandboxed
from pipeline.sandbox.hostuser import can_read, sandbox_user
from pipeline.sandbox.interpreter import resolve_interpreter
from pipeline.sandbox.layout import shown_folder_of, shown_place
from pipeline.sandbox.model import SandboxError

# A setting's problem, when an environment variable gave the value: config.toml shows another.
SET_BY_VARIABLE = "{problem}; it is set by {variable}, which overrides config.toml"
CONFIG_SHOWN = ("config file {path}: lies in {shown}, which every sandbox shows, and the sandbox "
                "user may read it: any student's program could read the secrets it holds; move "
                "it elsewhere or make it unreadable to that user")
NO_SANDBOX = ("sandbox: a program cannot run in it, so every run would end as error: {reason}; "
              "check that bubblewrap is installed and may create namespaces for the sandbox "
              "user {user!r}")
# Tells the modules of SANDBOX_MODULES that the sandbox's interpreter cannot import, and the
# version of its pytest (None: none that imports).
SANDBOX_PROBE = """
import importlib.util, json
missing = [m for m in {names!r} if importlib.util.find_spec(m) is None]
try:
    import pytest
    version = str(pytest.__version__)
except Exception:
    version = None
print(json.dumps({{"missing": missing, "pytest": version}}))
"""
# A program's time limit runs on by its wait for a CPU, by at most its own length
# (pipeline.sandbox.cpu_wait): on a busy host one sandbox of a run may take twice its limit.
STRETCHED_AT_MOST = 2
SOFT_LIMIT_TOO_TIGHT = ("worker.student_testing_soft_time_limit ({soft:g} s) is not above "
                        "{longest:g} s, the longest one sandbox of a run may take on a busy "
                        "host with [sandbox] timeout_seconds {timeout:g} s (a collection's "
                        "program and its tests' calls, each up to that limit, stretched to twice "
                        "by their wait for a CPU): such a run would end as error at the soft "
                        "limit though its program kept to its own; raise the worker's time "
                        "limits or lower timeout_seconds")
# The oldest pytest whose major version the pytest runner works with.
OLDEST_PYTEST_MAJOR = 8
PROBE_TIMEOUT_SECONDS = 60.0


def check_sandbox(ctx: click.Context, settings: Settings) -> None:
    """Refuse to start a worker that could run no sandbox, or whose sandboxes would show what
    students must not read.

    Its sandbox.python is no interpreter, or its sandbox.user no user of this host (a root
    worker's): every run would end as error after its attempts. Its data (runs, repositories,
    reference solutions) or temporary folder lies where every sandbox looks: every run would
    be refused. Its config file lies there and the sandbox user may read it: every student's
    program could read the tokens and passwords it holds. No program runs in its sandbox
    (bwrap missing, or refused its namespaces by the host): every run would end as error.
    Its sandbox's interpreter lacks pytest or flake8, or has a pytest older than 8: only some
    kinds of test need them, so this is said as a warning on stderr, as is a soft time limit
    that leaves a run's programs no room for their limits (soft_limit_problem).
    """
    try:
        interpreter = resolve_interpreter(settings.sandbox.python or None)
    except SandboxError as exc:
        raise ConfigError(_with_source(str(exc), "python")) from None
    try:
        user = sandbox_user(settings.sandbox.user)
    except SandboxError as exc:
        raise ConfigError(_with_source(str(exc), "user")) from None
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
    python = settings.sandbox.python or None
    missing, pytest_version = _probe_sandbox(settings)
    unfit = [module_missing(python, module) for module in missing]
    if pytest_version is not None and _older_than_runner_needs(pytest_version):
        unfit.append(pytest_too_old(python, pytest_version))
    tight = soft_limit_problem(settings)
    for problem in (*unfit, *([tight] if tight else [])):
        click.echo(f"gradehook: warning: {problem}", err=True)


def _with_source(problem: str, setting: str) -> str:
    """Name the environment variable that set a [sandbox] setting's wrong value, if one did."""
    variable = environment_variable(SandboxSettings, setting)
    if variable is None or os.environ.get(variable) is None:
        return problem
    return SET_BY_VARIABLE.format(problem=problem, variable=variable)


def soft_limit_problem(settings: Settings) -> str | None:
    """Say why the student_testing soft time limit is too short for one sandbox of a run, one
    collection at the full timeout stretched to twice its limit, or return None. A run may need
    more (several collections in a row): that is the course's to size, and its runs say which
    limit stopped them."""
    timeout = SandboxLimits.from_settings(settings.sandbox).effective_timeout
    longest = STRETCHED_AT_MOST * sandbox_wall_seconds([timeout])
    soft = settings.worker.student_testing_soft_time_limit
    if soft > longest:
        return None
    return SOFT_LIMIT_TOO_TIGHT.format(soft=soft, longest=longest, timeout=timeout)


def _older_than_runner_needs(version: str) -> bool:
    """Tell whether a pytest version is older than the pytest runner works with."""
    major = re.match(r"\d+", version)
    return major is not None and int(major.group()) < OLDEST_PYTEST_MAJOR


def _probe_sandbox(settings: Settings) -> tuple[list[SandboxModule], str | None]:
    """Run one program in a sandbox as runs do; return the SANDBOX_MODULES it cannot import,
    and the version of its pytest (None: none that imports).

    Raises ConfigError when no program runs there (bwrap missing or refused its namespaces).
    """
    names = tuple(module.name for module in SANDBOX_MODULES)
    limits = SandboxLimits.from_settings(settings.sandbox).with_overrides(
        timeout_seconds=PROBE_TIMEOUT_SECONDS)
    settings.workspace.mkdir(parents=True, exist_ok=True)
    # Named as a run's workspace: housekeeping removes it by its age if this process dies.
    with tempfile.TemporaryDirectory(prefix=f"{WORKSPACE_PREFIX}probe-",
                                     dir=settings.workspace) as workdir:
        try:
            result = run_sandboxed([PYTHON_PLACEHOLDER, "-c", SANDBOX_PROBE.format(names=names)],
                                   workdir=Path(workdir), limits=limits,
                                   python=settings.sandbox.python or None,
                                   user=settings.sandbox.user)
        except SandboxError as exc:
            raise ConfigError(NO_SANDBOX.format(reason=exc, user=settings.sandbox.user)) from None
    try:
        found = json.loads(result.stdout) if result.exit_code == 0 else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        reason = result.killed_reason or last_stderr_line(result.stderr) or \
            f"the probe exited with {result.exit_code}"
        raise ConfigError(NO_SANDBOX.format(reason=reason, user=settings.sandbox.user))
    return [module for module in SANDBOX_MODULES if module.name in found["missing"]], \
        found["pytest"]
