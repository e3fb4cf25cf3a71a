"""The linting collection type: flake8 on the student's file inside the sandbox."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from pipeline.grading.checks import PASS, Verdict, fail, skip
from pipeline.grading.errors import FLAKE8, module_missing
from pipeline.grading.execution import stop_reason
from pipeline.sandbox import PYTHON_PLACEHOLDER, SandboxLimits, run_sandboxed

LINT_ERRORS = "{count} Syntax Error{plural} in file `{file}` (see: {output})"
LINT_STDERR = "Linting Error occurred: {stderr}"
# flake8 stopped at a limit of its sandbox before it printed a finding (it prints a file's at the
# end): a file too large to lint within them is no pass.
LINT_STOPPED = "flake8 was stopped before it finished linting `{file}`: {reason}"
# flake8's error, the last line it wrote to stderr (a traceback's last line names the error),
# is cut to this many characters.
LINT_STDERR_CHARACTERS = 300
NO_FLAKE8 = re.compile(rb": No module named flake8\b")
OUTPUT_FILE_NAME = "{collection}-{test}-linting.txt"
# The findings a collection's debug keeps, each cut to so many characters: flake8 prints one line
# for each mistake (up to the sandbox's output cap, a megabyte of them by default) and quotes
# names of any length; the rest are counted in a last line, and all are in the output file.
MAX_FINDINGS_KEPT = 100
FINDING_CHARACTERS = 300
MORE_FINDINGS = "... and {count} more"


@dataclass(frozen=True)
class LintResult:
    """A linting test's verdict and its findings for the collection's debug."""

    verdict: Verdict
    findings: list[str]


def output_file_name(collection_name: str, test_name: str) -> str:
    """Return the name of the file that keeps flake8's output, spaces replaced by dashes."""
    return OUTPUT_FILE_NAME.format(collection=collection_name, test=test_name).replace(" ", "-")


def run_flake8(file: str | None, pattern: str | None, *, student_base: Path, limits: SandboxLimits,
               python: str | None, user: str, output_path: Path | None,
               shown_output: str, stop: threading.Event | None = None) -> LintResult:
    """Lint the student's file with flake8 (config files ignored) and judge the findings.

    The interpreter runs isolated (-I): the working directory, the student's folder, is not on
    sys.path, so a flake8.py or a plugin's metadata there cannot take flake8's place. Raises
    EngineError when the interpreter has no flake8.
    """
    target = str(file)
    result = run_sandboxed([PYTHON_PLACEHOLDER, "-I", "-m", "flake8", "--isolated",
                            f"--ignore={pattern}", target],
                           workdir=student_base, limits=limits, python=python, user=user,
                           stop=stop)
    output = result.stdout.decode("utf-8", "replace")
    if output_path is not None:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        output_path.write_text(output, encoding="utf-8")
    lines = [line for line in output.splitlines() if line.strip()]
    findings = kept_findings(lines)
    if result.exit_code != 0 and NO_FLAKE8.search(result.stderr):
        raise module_missing(python, FLAKE8)
    stopped = stop_reason(result, limits, limits.effective_timeout)
    if stopped is not None and not lines:
        return LintResult(fail("Failed", LINT_STOPPED.format(file=file, reason=stopped)),
                          findings)
    if result.stderr:
        return LintResult(skip(LINT_STDERR.format(stderr=last_stderr_line(result.stderr))),
                          findings)
    if lines:
        count = len(lines)
        return LintResult(fail("SyntaxError", LINT_ERRORS.format(
            count=count, plural="" if count == 1 else "s", file=file, output=shown_output)),
            findings)
    return LintResult(PASS, findings)


def kept_findings(lines: list[str]) -> list[str]:
    """Return the findings a collection's debug keeps of flake8's lines: the first
    MAX_FINDINGS_KEPT, each cut short, and a line counting the others."""
    kept = [_cut(_finding(line), FINDING_CHARACTERS) for line in lines[:MAX_FINDINGS_KEPT]]
    left_out = len(lines) - len(kept)
    return kept + [MORE_FINDINGS.format(count=left_out)] if left_out else kept


def last_stderr_line(stderr: bytes) -> str:
    """Return the last line with text that a program wrote to stderr, decoded and cut short."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    return _cut(next((line for line in reversed(lines) if line), ""), LINT_STDERR_CHARACTERS)


def _cut(text: str, limit: int) -> str:
    """Return text cut to limit characters, ending in `…` when it was longer."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _finding(line: str) -> str:
    """Rewrite `path:row:col: CODE text` as `relative path:row:col CODE text`."""
    location, _, message = line.partition(": ")
    parts = location.rsplit(":", 2)
    if len(parts) != 3:
        return line
    path, row, column = parts
    return f"{os.path.normpath(path)}:{row}:{column} {message}"
