"""The student_testing flow as a plain function: claim, fetch, extract, grade, record, report."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.context import Resources
from pipeline.housekeeping import run_workspace
from pipeline.grading.errors import CourseError
from pipeline.grading.grader import GradeOptions, course_error_report, grade
from pipeline.grading.meta import META_FILE_NAME, load_meta
from pipeline.grading.report import Report
from pipeline.grading_slots import grading_slot
from pipeline.ledger import runs
from pipeline.ledger.db import single_statements
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from pipeline.ledger.storable import storable
from pipeline.reports.model import COURSE_ERROR_REASON
from pipeline.repos import (MIB, InvalidInputError, MissingCommitError, PathMissingError,
                            UngradableTreeError, check_tree_paths, tree_name)
from pipeline.submissions.dispatch import hand_off_submissions

log = logging.getLogger(__name__)

STUDENT_COMMIT_MISSING = "the commit to grade is not in the student's project: {detail}"
REFERENCE_MISSING = "the reference repository could not be read: {detail}"
INVALID_INPUT = "refused before reaching git: {detail}"
NOT_TOUCHED = "this push did not change {assignment}"
NOT_PRESENT = "{assignment} does not exist in this commit"
NOT_QUEUED = "not queued for this task"
ALREADY_ENDED = "ended already under this task: reported again"
# A reference fetched this recently is used as it is: in a deadline rush every run would
# otherwise fetch it again; a staff push to the reference is seen within these seconds.
REFERENCE_FRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Outcome:
    """How a student_testing call ended: the run's final status, or why it did nothing."""

    run_id: str
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class Workspace:
    """Where one run works: its own folder, the student's assignment and the reference tree."""

    root: Path
    student: Path
    reference_root: Path

    def reference(self, assignment: str) -> Path:
        """Return the reference's folder of an assignment."""
        return self.reference_root / assignment


@dataclass
class AttemptClaim:
    """A task's claim of its run: whether this delivery continues an attempt that claimed the
    run before it waited for the database (`resumed`), and whether this delivery claimed it."""

    resumed: bool = False
    made: bool = False


def run_student_testing(resources: Resources, run_id: str, task_id: str,
                        report: Callable[[str], None] | None = None,
                        claim: AttemptClaim | None = None) -> Outcome:
    """Grade one run end to end; a run that is not this task's to run is left alone.

    Each stage and its progress are recorded in the ledger, which is where the API reads them.
    `report(run_id)` brings GitLab in line with the ledger (commit status, comment); it is
    called when the run starts and when it ends, and for a run that diffs its commit when the
    diff shows its assignment changed: GitLab is shown such a run from then on only.
    """
    claim = claim or AttemptClaim()
    with single_statements(resources.sessions) as session:
        run = runs.claim_run(session, run_id, task_id, new_attempt=not claim.resumed)
    claim.made = run is not None
    if run is None:
        return _skip(resources, run_id, task_id, report)
    if report:
        report(run_id)
    outcome = _grade_run(resources, run, report)
    if report:
        report(run_id)
    return outcome


def _skip(resources: Resources, run_id: str, task_id: str,
          report: Callable[[str], None] | None) -> Outcome:
    """Leave alone a run that is not this task's to run; if it ended under this task (which
    stopped, or failed, while showing GitLab the end), show GitLab the end now."""
    if report:
        with single_statements(resources.sessions) as session:
            ended = runs.ended_under(session, run_id, task_id)
        if ended:
            log.info("run %s: ended under task %s; reporting it", run_id, task_id)
            report(run_id)
            return Outcome(run_id, "skipped", ALREADY_ENDED)
    log.info("run %s: not queued for task %s, nothing to do", run_id, task_id)
    return Outcome(run_id, "skipped", NOT_QUEUED)


def note_retry(resources: Resources, run_id: str, reason: str) -> None:
    """Record on a running run why it waits for another attempt (the API shows it as RETRY)."""
    with single_statements(resources.sessions) as session:
        runs.note_retry(session, run_id, reason)


def end_with_error(resources: Resources, run_id: str, reason: str) -> Outcome:
    """End a run as error with a reason (time limit, exhausted retries)."""
    return _end(resources, run_id, RunStatus.ERROR, reason)


class _CourseError(Exception):
    """The course's side is broken: reported to staff, never scored."""


def _grade_run(resources: Resources, run: TestRun,
               report: Callable[[str], None] | None) -> Outcome:
    with run_workspace(resources.settings.workspace, run.id, run.attempts) as root:
        _enter(resources, run.id, "clone")
        try:
            student, refusal = _fetch_student(resources, run, root / "student")
        except _NothingToGrade as exc:
            return _end(resources, run.id, RunStatus.CANCELLED, str(exc))
        except InvalidInputError as exc:
            return _end(resources, run.id, RunStatus.ERROR, INVALID_INPUT.format(detail=exc))
        except MissingCommitError as exc:
            return _end(resources, run.id, RunStatus.ERROR,
                        STUDENT_COMMIT_MISSING.format(detail=exc))
        if run.needs_diff:
            # The diff showed the assignment changed: what befalls the run from here on,
            # a broken reference included, is its assignment's.
            _show_graded(resources, run.id, report)
        try:
            reference_sha, reference_root = _fetch_reference(resources, run)
        except _CourseError as exc:
            return _record(resources, run.id, course_error_report(str(exc)))
        waited = False

        def wait_in_environment_stage() -> None:
            nonlocal waited
            waited = True
            _enter(resources, run.id, "environment", reference_sha=reference_sha)

        settings = resources.settings
        with grading_slot(settings.grading_slot_folder, settings.worker.slots,
                          on_wait=wait_in_environment_stage):
            # The environment is made inside the engine, and the results are recorded the
            # moment it returns: neither stage lasts long enough for a write of its own to be
            # seen, unless the run had to wait for a grading slot (in the environment stage).
            _enter(resources, run.id, "tests", passing=() if waited else ("environment",),
                   reference_sha=reference_sha)
            result = _grade(resources, run, Workspace(root, student, reference_root),
                            reference_sha, refusal)
        return _record(resources, run.id, result)


def _show_graded(resources: Resources, run_id: str,
                 report: Callable[[str], None] | None) -> None:
    """Record that a diffed run grades its assignment, which GitLab may then show."""
    with single_statements(resources.sessions) as session:
        runs.mark_fetched(session, run_id)
    if report:
        report(run_id)


class _NothingToGrade(Exception):
    """The push left the assignment alone: the run is cancelled with this reason."""


def _fetch_student(resources: Resources, run: TestRun, dest: Path) -> tuple[Path, str | None]:
    """Fetch the student's commit and extract the assignment; raise _NothingToGrade if so.

    Return the assignment's folder, and why its files cannot be graded when they are too large
    or unsafe to lay out: the student's failure, graded, with the folder left empty.
    """
    repos = resources.repositories
    repos.ensure_commit(run.project_path, run.commit_sha)
    base = _diff_base(resources, run) if run.needs_diff else None
    if base is not None:
        changed = repos.changed_paths(run.project_path, base, run.commit_sha)
        prefix = run.assignment + "/"
        if not any(path == run.assignment or path.startswith(prefix) for path in changed):
            raise _NothingToGrade(NOT_TOUCHED.format(assignment=run.assignment))
    # With no base to diff against, a push grades the assignment only if the commit has it.
    must_exist = run.needs_diff and base is None
    try:
        # Files that cannot fit into the sandbox's work directory are never extracted whole.
        sandbox = resources.settings.sandbox
        return repos.extract(run.project_path, run.commit_sha, run.assignment, dest,
                             missing_ok=not must_exist, max_bytes=sandbox.workdir_size_mb * MIB,
                             max_files=sandbox.max_files), None
    except PathMissingError:
        raise _NothingToGrade(NOT_PRESENT.format(assignment=run.assignment)) from None
    except UngradableTreeError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        (dest / run.assignment).mkdir(parents=True)
        return dest / run.assignment, str(exc)


def _diff_base(resources: Resources, run: TestRun) -> str | None:
    """Return the commit to diff against: the push's `before`, else the merge base."""
    repos = resources.repositories
    if run.before_sha and repos.has_commit(run.project_path, run.before_sha):
        return run.before_sha
    if run.base_branch:
        try:
            head = repos.resolve_branch(run.project_path, run.base_branch, fetch=False)
        except MissingCommitError:
            return None
        return repos.merge_base(run.project_path, head, run.commit_sha)
    return None


def _fetch_reference(resources: Resources, run: TestRun) -> tuple[str, Path]:
    """Return the reference commit to grade against and its whole tree."""
    repos = resources.repositories
    try:
        reference_sha = repos.resolve_branch(run.reference_project, run.reference_ref,
                                             max_age=REFERENCE_FRESH_SECONDS)
        reference_root = repos.tree(run.reference_project, reference_sha)
        check_tree_paths(reference_root, _used_reference_paths(reference_root, run.assignment))
        return reference_sha, reference_root
    except (MissingCommitError, InvalidInputError, UngradableTreeError) as exc:
        raise _CourseError(REFERENCE_MISSING.format(detail=exc)) from None


def _used_reference_paths(reference_root: Path, assignment: str) -> list[str]:
    """Return the reference's paths a run of an assignment uses: its folder and the test
    dependencies its meta.yaml names (none when meta.yaml is broken: grading tells how)."""
    try:
        meta = load_meta(reference_root / assignment / META_FILE_NAME)
    except CourseError:
        return [assignment]
    return [assignment, *meta.test_dependencies]


def _grade(resources: Resources, run: TestRun, workspace: Workspace, reference_sha: str,
           refusal: str | None) -> Report:
    assignment_dir = workspace.reference(run.assignment)
    # Messages name the student's and the reference's files, and the linting outputs (beside
    # test.yaml, as the original keeps them), by their place in the repository, not on this host.
    options = GradeOptions(work_root=workspace.root / "grading",
                           reference_version=tree_name(reference_sha),
                           assignment_id=f"{run.reference_project}:{run.assignment}",
                           dependency_root=workspace.reference_root,
                           output_dir=workspace.root / "output",
                           shown_student_dir=Path("/", run.assignment),
                           shown_reference_dir=Path("/", run.assignment),
                           shown_output_dir=Path("/", run.assignment, "output"),
                           student_refusal=refusal)
    return grade(workspace.student, assignment_dir, assignment_dir,
                 settings=resources.settings.sandbox, reference_cache=resources.reference_cache,
                 options=options)


def _record(resources: Resources, run_id: str, result: Report) -> Outcome:
    section = result.gradehook
    values = {"report": result.to_dict(), "score": result.score, "tested_at": utcnow(),
              "tests_passed": section.tests_passed, "tests_total": section.tests_total}
    if result.course_error is not None:
        return _end(resources, run_id, RunStatus.ERROR,
                    COURSE_ERROR_REASON.format(detail=result.course_error), **values)
    status = RunStatus.PASSED if result.all_passed else RunStatus.FAILED
    return _end(resources, run_id, status, result.result_message, **values)


def _enter(resources: Resources, run_id: str, stage: str, *, passing: tuple[str, ...] = (),
           **values) -> None:
    with single_statements(resources.sessions) as session:
        runs.advance(session, run_id, stage, passing=passing, **values)


def _end(resources: Resources, run_id: str, status: RunStatus, reason: str | None,
         **values) -> Outcome:
    # The report and reason may carry what the student's program printed.
    reason, values = storable(reason), storable(values)
    with single_statements(resources.sessions) as session:
        runs.finish(session, run_id, status, reason, **values)
    log.info("run %s: %s (%s)", run_id, status.value, reason)
    hand_off_submissions(resources, run_id)
    return Outcome(run_id, status.value, reason)
