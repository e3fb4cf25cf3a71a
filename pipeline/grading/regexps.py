"""The regexp qualification's matches: re.match in its own sandbox, under time and memory limits.

re.match backtracks without bound on some patterns: `^(\\w+\\s?)+$` on a sentence that ends in
`!` runs for hours, holding the GIL. Run in the worker, it would stop every thread of that process
until a time limit killed the task. Others keep what they may backtrack to: `^(a|b)*c` takes some
80 bytes for each character of the value, 610 MB for the 8 MB a run may hand back. So the matches
of a collection's regexp tests run together in one sandbox, apart from the student's code (which
could otherwise replace `re`), each stopped after MATCH_SECONDS, or once the matcher needs more
than MATCH_MEMORY_MB: a failed test, saying so, where the sandbox's memory limit would have ended
the matcher, and the run as our error. The stdlib `re` keeps the semantics of
spec/codeability.md §3.5. Each distinct value is handed over once, however many tests match it:
the matcher holds no more than the student's run held. A matcher that does not hand back every
outcome is our failure, never a verdict: each match has its own time and memory limits, so only a
limit of the sandbox can stop it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from pipeline.grading.checks import MatchOutcome, PendingMatch
from pipeline.grading.errors import EngineError
from pipeline.grading.execution import stop_reason
from pipeline.sandbox import PYTHON_PLACEHOLDER, SANDBOX_PYTHONPATH, SandboxLimits, \
    SandboxResult, run_sandboxed
from pipeline.sandbox.model import MB

RUNNER_PATH = f"{SANDBOX_PYTHONPATH}/pipeline/grading/regexp_runner.py"
# How long one match may take: a pattern that is not pathological matches a megabyte in
# milliseconds.
MATCH_SECONDS = 5.0
# The memory the matcher's process may use (its address space: what the texts and a match take),
# and its sandbox's memory above it, which the interpreter's files, read, count against too; an
# operator's lower memory limit for sandboxes lowers both (limits are the operator's: a course's
# memoryLimitMB limits the student's code, and one of 16 MB would leave the matcher nothing).
MATCH_MEMORY_MB = 240
MATCHER_HEADROOM_MB = 16
STARTUP_GRACE_SECONDS = 2.0
MATCHER_STOPPED = "the regexp matcher stopped before matching every test: {reason}"
MATCHER_TIMED_OUT = "time limit of {seconds} seconds exceeded"
MATCHER_FAILED = "the regexp matcher ended unexpectedly ({how}): {stderr}"
STDERR_SHOWN = 2000


def match_all(checks: Sequence[PendingMatch], *, workdir: Path, limits: SandboxLimits,
              python: str | None, user: str) -> list[MatchOutcome]:
    """Match every check in one sandbox and return their outcomes, in order.

    workdir is an empty directory (the sandbox starts with a copy of it). Raises EngineError when
    the matcher itself fails, which is not the student's doing.
    """
    if not checks:
        return []
    seconds = MATCH_SECONDS
    memory_mb = min(limits.memory_mb, MATCH_MEMORY_MB + MATCHER_HEADROOM_MB)
    match_mb = max(memory_mb - MATCHER_HEADROOM_MB, memory_mb // 2)
    texts = list(dict.fromkeys(check.text for check in checks))
    where = {text: index for index, text in enumerate(texts)}
    document = json.dumps({"seconds": seconds, "memory_bytes": match_mb * MB, "texts": texts,
                           "checks": [[check.pattern, where[check.text]] for check in checks]})
    limits = limits.with_overrides(
        timeout_seconds=seconds * len(checks) + STARTUP_GRACE_SECONDS, memory_mb=memory_mb)
    workdir.mkdir(parents=True, exist_ok=True)
    result = run_sandboxed([PYTHON_PLACEHOLDER, "-I", "-S", RUNNER_PATH], workdir=workdir,
                           stdin=document.encode("ascii"), limits=limits, python=python,
                           user=user)
    outcomes = [_outcome(line, result, seconds, match_mb)
                for line in result.stdout.splitlines()[:len(checks)]]
    if len(outcomes) < len(checks):
        raise EngineError(MATCHER_STOPPED.format(reason=_why_stopped(result, limits)))
    return outcomes


def _outcome(line: bytes, result: SandboxResult, seconds: float, memory_mb: int) -> MatchOutcome:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise EngineError(_failed(result, "a line that is not an outcome"))
    if isinstance(data.get("matched"), bool):
        return MatchOutcome(matched=data["matched"])
    if data.get("timeout") is True:
        return MatchOutcome(too_slow=seconds)
    if data.get("memory") is True:
        return MatchOutcome(too_large=memory_mb)
    return MatchOutcome(error=str(data.get("error")), message=str(data.get("message")))


def _why_stopped(result: SandboxResult, limits: SandboxLimits) -> str:
    """Name the limit that stopped the matcher, or how it ended."""
    if result.killed_reason is not None:
        return stop_reason(result, limits, limits.timeout_seconds, MATCHER_TIMED_OUT)
    how = f"signal {result.signal}" if result.signal else f"exit code {result.exit_code}"
    return _failed(result, how)


def _failed(result: SandboxResult, how: str) -> str:
    stderr = result.stderr.decode("utf-8", "replace").strip()[-STDERR_SHOWN:]
    return MATCHER_FAILED.format(how=how, stderr=stderr or "nothing on stderr")
