"""The student_testing flow as a plain function: claim, fetch, extract, grade, record."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.context import Resources
from pipeline.ledger import runs
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun
from pipeline.repos import InvalidInputError, MissingCommitError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int], None]

NO_GRADER = "no grader configured: the grading engine is not installed in this worker"
STUDENT_COMMIT_MISSING = "the commit to grade is not in the student's project: {detail}"
REFERENCE_MISSING = "course error: the reference repository could not be read: {detail}"
INVALID_INPUT = "refused before reaching git: {detail}"


@dataclass(frozen=True)
class Outcome:
    """How a student_testing call ended: the run's final status, or why it did nothing."""

    run_id: str
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class Workspace:
    """The directories one run grades: the student's and the reference's assignment folder."""

    root: Path
    student: Path
    reference: Path


def run_student_testing(resources: Resources, run_id: str, task_id: str,
                        progress: ProgressCallback) -> Outcome:
    """Grade one run end to end; a run that is not this task's to run is left alone."""
    with transaction(resources.sessions) as session:
        run = runs.claim_run(session, run_id, task_id)
    if run is None:
        log.info("run %s: not queued for task %s, nothing to do", run_id, task_id)
        return Outcome(run_id, "skipped", "not queued for this task")
    progress("init", 10)
    workspace = _make_workspace(resources, run)
    try:
        _enter(resources, run_id, "clone", progress)
        try:
            _fetch(resources, run, workspace)
        except InvalidInputError as exc:
            return _end(resources, run_id, RunStatus.ERROR, INVALID_INPUT.format(detail=exc))
        except _CourseError as exc:
            return _end(resources, run_id, RunStatus.ERROR, str(exc))
        except MissingCommitError as exc:
            return _end(resources, run_id, RunStatus.ERROR,
                        STUDENT_COMMIT_MISSING.format(detail=exc))
        _enter(resources, run_id, "environment", progress)
        return _end(resources, run_id, RunStatus.ERROR, NO_GRADER)
    finally:
        shutil.rmtree(workspace.root, ignore_errors=True)


def end_with_error(resources: Resources, run_id: str, reason: str) -> Outcome:
    """End a run as error with a reason (time limit, exhausted retries)."""
    return _end(resources, run_id, RunStatus.ERROR, reason)


class _CourseError(Exception):
    """The course's side is broken: reported to staff, never scored."""


def _make_workspace(resources: Resources, run: TestRun) -> Workspace:
    resources.settings.workspace.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"run-{run.id}-", dir=resources.settings.workspace))
    return Workspace(root, root / "student" / run.assignment, root / "reference" / run.assignment)


def _fetch(resources: Resources, run: TestRun, workspace: Workspace) -> None:
    repos = resources.repositories
    repos.ensure_commit(run.project_path, run.commit_sha)
    try:
        reference_sha = repos.resolve_branch(run.reference_project, run.reference_ref)
    except (MissingCommitError, InvalidInputError) as exc:
        raise _CourseError(REFERENCE_MISSING.format(detail=exc)) from None
    repos.extract(run.project_path, run.commit_sha, run.assignment, workspace.root / "student")
    repos.extract(run.reference_project, reference_sha, run.assignment,
                  workspace.root / "reference")
    with transaction(resources.sessions) as session:
        session.get(TestRun, run.id).reference_sha = reference_sha


def _enter(resources: Resources, run_id: str, stage: str, progress: ProgressCallback) -> None:
    with transaction(resources.sessions) as session:
        runs.advance(session, run_id, stage)
    progress(stage, runs.STAGES[stage][0])


def _end(resources: Resources, run_id: str, status: RunStatus, reason: str | None,
         **values) -> Outcome:
    with transaction(resources.sessions) as session:
        runs.finish(session, run_id, status, reason, **values)
    log.info("run %s: %s (%s)", run_id, status.value, reason)
    return Outcome(run_id, status.value, reason)
