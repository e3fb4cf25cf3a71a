"""grade(): student directory, reference directory and assignment in; a Report out."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import SandboxSettings
from pipeline.grading.assignment import MODE_CODEABILITY, MODE_COMPARISON, MODE_PYTEST, \
    Assignment, load_assignment
from pipeline.grading.cache import ReferenceCache
from pipeline.grading.comparison import comparison_suite
from pipeline.grading.course_problems import CourseProblem, course_error_text
from pipeline.grading.engine import CodeAbilityGrader, GradingContext
from pipeline.grading.errors import CourseError, EngineError
from pipeline.grading.execution import RunEnvironment, SandboxExecutor
from pipeline.grading.folder_entries import folder_entries
from pipeline.grading.hidden_tests import COMPARISON_SUITE, hidden_collections
from pipeline.grading.meta import META_FILE_NAME, MetaSpec
from pipeline.grading.plan import REFERENCE, STUDENT, RunOutcome, RunRequest
from pipeline.grading.pytest_mode import PytestGrader
from pipeline.grading.report import COMPLETED, FAILED, NO_TESTS_SPECIFIED, PASSED, \
    SKIPPED, TESTS_SKIPPED, TIMEDOUT, CollectionReport, GradehookSection, Report, Summary
from pipeline.grading.spec import PROPERTY_DEFAULTS, SUITE_DEFAULTS, TEST_FILE_NAME, SuiteSpec
from pipeline.grading.staging import IGNORED_NAMES, StagedAssignment, stage_assignment, \
    tree_digest
from pipeline.sandbox import SandboxError, SandboxLimits
from pipeline.sandbox import cpu_wait, spare_descriptors
from pipeline.sandbox import values as value_format
from pipeline.sandbox.model import MB
from pipeline.sandbox.scratch import ScratchFolder
from pipeline.tree_paths import UNGRADABLE_PATH, path_problem, shown_path

log = logging.getLogger(__name__)

# Part of every reference cache key: a new version computes the reference runs again.
ENGINE_VERSION = "1.2.0"
# So are these files of the code that sandboxed runs execute, and the value encoder and the time
# limits' stretch (cpu_wait) and the spare descriptors (spare_descriptors) they load: a change to
# any of them may change what a reference run hands back.
RUNNER_FILES = ("runner.py", "pytest_runner.py", "pytest_limits.py", "pytest_watchdog.py",
                "descriptor_meter.py")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# A grading's work folder: in its run's workspace, else (gradehook grade) the temporary folder.
GRADING_PREFIX = "gradehook-grade-"
SANDBOX_FAILED = "the sandbox could not run the solutions: {detail}"
COURSE_ERROR_STATUS = "FAILED"
MORE_REFERENCE_GAPS = " (and {count} more tests without an expected value)"
REFERENCE_TIMED_OUT = "the reference ran out of time, which a busy host may cause: {gap}"
# A suite without collections grades nothing: the course's failure, not a score of 0.
NO_COLLECTIONS = {
    MODE_CODEABILITY: f"{TEST_FILE_NAME}: properties.tests: lists no test collections, so "
                      "there is nothing to grade",
    MODE_COMPARISON: "the reference holds no test.yaml, no test_*.py and no file to compare "
                     "the student's with, so there is nothing to grade",
}
EXIT_OK, EXIT_TESTS_FAILED, EXIT_NO_TESTS = "0", "1", "5"
STUDENT_FILES_TOO_LARGE = ("the files in {folder} take {size_mb:.1f} MB, more than the "
                           "{limit_mb} MB work directory of the sandbox holds (the largest: "
                           "{largest}, {largest_mb:.1f} MB)")
# Where the student's files are staged when they are too large to grade: a folder never made.
NO_STUDENT_FILES = "student-files-refused"
# The sandbox's work directory is a tmpfs: a file takes whole memory pages.
PAGE_BYTES = 4096


@dataclass(frozen=True)
class GradeOptions:
    """How to grade beyond the sandbox limits: outputs, work area, cache identity, parallelism.

    output_dir: where linting outputs go (and artifacts, unless artifact_dir is given); without
    it they are not kept. reference_version: what identifies the reference's files, used in cache
    keys: its commit and how it was extracted (without it the reference files are hashed).
    assignment_id: names the assignment in cache keys (default: the assignment directory).
    dependency_root: the reference repository's root, where meta.yaml testDependencies are
    found. parallel_runs: sandboxes at once (0: one per CPU).
    shown_student_dir: the student's directory as messages name it (default: where it is);
    shown_reference_dir: the same for the reference's directory; shown_output_dir: the same for
    output_dir.
    student_refusal: why the student's files could not be handed over (too large, unsafe
    links): nothing is run, and every test fails with it.
    """

    output_dir: Path | None = None
    artifact_dir: Path | None = None
    work_root: Path | None = None
    reference_version: str | None = None
    assignment_id: str | None = None
    dependency_root: Path | None = None
    parallel_runs: int = 0
    store_graphics_artifacts: bool | None = None
    shown_student_dir: Path | None = None
    shown_reference_dir: Path | None = None
    shown_output_dir: Path | None = None
    student_refusal: str | None = None


def grade(student_dir: Path | str, reference_dir: Path | str,
          assignment: Path | str | Assignment | None = None, *,
          settings: SandboxSettings | None = None, reference_cache: ReferenceCache | None = None,
          options: GradeOptions | None = None) -> Report:
    """Grade a student's solution against the reference and return the report.

    assignment is the directory holding test.yaml and meta.yaml (default: reference_dir), or an
    already loaded Assignment. A broken assignment (invalid test.yaml, missing reference) gives a
    report whose ``course_error`` is set and whose score is None. Raises EngineError when the
    sandbox itself cannot run.
    """
    options = options or GradeOptions()
    settings = settings or SandboxSettings()
    clock = _Clock()
    student_dir, reference_dir = Path(student_dir).resolve(), Path(reference_dir).resolve()
    try:
        loaded = assignment if isinstance(assignment, Assignment) else load_assignment(
            Path(assignment).resolve() if assignment is not None else reference_dir,
            reference_dir)
    except CourseError as exc:
        return _course_error_report(clock, None, exc.course_problems, MODE_CODEABILITY)
    clock.lap("load")
    limits = course_limits(SandboxLimits.from_settings(settings), loaded.meta)
    if options.work_root is not None:
        Path(options.work_root).mkdir(parents=True, exist_ok=True)
    with ScratchFolder(GRADING_PREFIX, options.work_root) as work:
        try:
            return _grade_staged(work, student_dir, reference_dir, loaded, limits,
                                 settings, reference_cache, options, clock)
        except CourseError as exc:
            return _course_error_report(clock, loaded.suite, exc.course_problems, loaded.mode)
        except SandboxError as exc:
            raise EngineError(SANDBOX_FAILED.format(detail=exc)) from exc


def course_limits(operator: SandboxLimits, meta: MetaSpec) -> SandboxLimits:
    """Apply meta.yaml's timeout and memory limit where they are stricter than the operator's.

    A course may lower the configured limits, never raise them; a timeout of 0 means no limit
    (up to the engine-wide cap).
    """
    timeout = meta.timeout_seconds
    if timeout is not None and operator.timeout_seconds > 0 \
            and not 0 < timeout < operator.timeout_seconds:
        timeout = operator.timeout_seconds
    memory = None if meta.memory_mb is None else min(meta.memory_mb, operator.memory_mb)
    return operator.with_overrides(timeout_seconds=timeout, memory_mb=memory)


def _grade_staged(work: Path, student_dir: Path, reference_dir: Path, assignment: Assignment,
                  limits: SandboxLimits, settings: SandboxSettings,
                  cache: ReferenceCache | None, options: GradeOptions, clock: _Clock) -> Report:
    python, user = settings.python or None, settings.user
    reference_problem = _reference_refusal(reference_dir,
                                           options.shown_reference_dir or reference_dir)
    if reference_problem is not None:
        raise CourseError(reference_problem)
    refusal = options.student_refusal or _student_refusal(
        student_dir, options.shown_student_dir or student_dir, limits.workdir_size_mb)
    staged = stage_assignment(work, student_dir if refusal is None else work / NO_STUDENT_FILES,
                              reference_dir, assignment.directory, assignment.meta,
                              options.dependency_root, assignment.mode == MODE_PYTEST)
    clock.lap("stage")
    shown_dirs = {STUDENT: options.shown_student_dir or student_dir,
                  REFERENCE: options.shown_reference_dir or reference_dir}
    environment = RunEnvironment(work=work, staged=staged, shown_dirs=shown_dirs,
                                 limits=limits, python=python, user=user,
                                 capture_limit=limits.max_output_bytes)
    executor = SandboxExecutor(environment)
    workers = options.parallel_runs or os.cpu_count() or 1
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grade")
    try:
        if assignment.mode == MODE_PYTEST:
            suite = None
            pytest_grader = PytestGrader(assignment, staged, limits,
                                         settings.test_timeout_seconds, python, user, work)
            collections = pytest_grader.grade() if refusal is None else \
                pytest_grader.refuse(refusal)
            # pytest runs the student's code within the tests' run, and no reference: the
            # program's time is the grading's, told apart from neither.
            sandbox_timings: dict[str, float] = {}
            reference_gaps = []
            found_problems = pytest_grader.test_files_withheld
            hidden = assignment.hidden
        else:
            suite, hidden = graded_suite(staged, assignment)
            context = _context(executor, staged, student_dir, pool, limits,
                               SandboxLimits.from_settings(settings), python, user, cache,
                               _global_key(assignment, staged, limits, python, options), options)
            grader = CodeAbilityGrader(suite, context, hidden)
            collections = grader.grade() if refusal is None else grader.refuse(refusal)
            sandbox_timings = {"studentSandbox": context.sandbox_seconds[STUDENT],
                               "referenceSandbox": context.sandbox_seconds[REFERENCE]}
            reference_gaps = grader.reference_gaps
            found_problems = [*grader.files_missing_in_reference, *grader.test_files_withheld]
            if grader.reference_timeout is not None:
                # Ours to try again (a busy host): a reference too slow every time ends the
                # run as error after the last attempt, unscored either way.
                raise EngineError(REFERENCE_TIMED_OUT.format(gap=grader.reference_timeout))
    except BaseException:
        # An error here, or the task's time limit striking in this thread, leaves the pool's
        # sandboxes running: waiting for the pool would wait out their own time limits.
        environment.stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    clock.lap("grading")
    clock.timings.update(sandbox_timings)
    hidden_names = [c.name for c in collections if c.name in hidden]
    return _report(clock, suite, collections, assignment, hidden_names, reference_gaps,
                   found_problems)


def graded_suite(staged: StagedAssignment, assignment: Assignment) -> \
        tuple[SuiteSpec, frozenset[str]]:
    """Return the suite a run of an assignment not in pytest mode grades by, and the collections
    meta.yaml hides of it: test.yaml's, or the default comparison's (SpecError for a hiddenTests
    entry naming none of its collections)."""
    if assignment.mode == MODE_CODEABILITY:
        return assignment.suite, assignment.hidden
    suite = comparison_suite(staged.reference_base, assignment.meta)
    return suite, hidden_collections(assignment.directory / META_FILE_NAME,
                                     assignment.meta.hidden_tests,
                                     [collection.name for collection in suite.collections],
                                     COMPARISON_SUITE)


def _student_refusal(student_dir: Path, shown_dir: Path, workdir_size_mb: int) -> str | None:
    """Return why the student's files cannot be graded: a path the copies for the sandbox could
    not hold (tree_paths), or files that overfill the work directory.

    They are measured as the sandbox will hold them (links not followed, VCS and cache folders
    left out, whole pages), so that a solution too large to copy is the student's failure, graded,
    and not the sandbox's.
    """
    total, largest, largest_size = 0, student_dir, 0
    for entry, relative in folder_entries(student_dir, IGNORED_NAMES):
        problem = _path_problem(entry, relative, shown_dir)
        if problem is not None:
            return problem
        if entry.is_file(follow_symlinks=False):
            size = entry.stat(follow_symlinks=False).st_size
            total += -(-size // PAGE_BYTES) * PAGE_BYTES
            if size > largest_size:
                largest, largest_size = Path(entry.path), size
    if total <= workdir_size_mb * MB:
        return None
    return STUDENT_FILES_TOO_LARGE.format(
        folder=shown_path(str(shown_dir)), size_mb=total / MB, limit_mb=workdir_size_mb,
        largest=shown_path(str(shown_dir / largest.relative_to(student_dir))),
        largest_mb=largest_size / MB)


def _reference_refusal(reference_dir: Path, shown_dir: Path) -> str | None:
    """Return why the reference's files cannot be graded: a path the copies could not hold."""
    problems = (_path_problem(entry, relative, shown_dir)
                for entry, relative in folder_entries(reference_dir, IGNORED_NAMES))
    return next((problem for problem in problems if problem is not None), None)


def _path_problem(entry: os.DirEntry, relative: str, shown_dir: Path) -> str | None:
    target = os.readlink(entry.path) if entry.is_symlink() else None
    problem = path_problem(relative, target)
    return None if problem is None else UNGRADABLE_PATH.format(what=shown_path(str(shown_dir)),
                                                               detail=problem)


def _context(executor: SandboxExecutor, staged: StagedAssignment, student_dir: Path,
             pool: ThreadPoolExecutor, limits: SandboxLimits, operator_limits: SandboxLimits,
             python: str | None, user: str, cache: ReferenceCache | None, global_key: str,
             options: GradeOptions) -> GradingContext:
    def fetch_reference(request: RunRequest) -> RunOutcome:
        if cache is None:
            return executor.execute(request)
        key = cache.key(global_key, request.fingerprint())
        # A reference that ran out of time may finish on a less busy host: it runs again.
        return RunOutcome.from_json(cache.get_or_compute(
            key, lambda: executor.execute(request).to_json(),
            lasting=lambda outcome: outcome["status"] != TIMEDOUT))

    output_dir = Path(options.output_dir) if options.output_dir is not None else None
    artifact_dir = options.artifact_dir or (output_dir / "artifacts" if output_dir else None)
    return GradingContext(
        executor=executor, student_base=staged.student_base,
        reference_base=staged.reference_base,
        shown_student_dir=options.shown_student_dir or student_dir, pool=pool,
        fetch_reference=fetch_reference, lint_limits=limits, match_limits=operator_limits,
        python=python, user=user,
        output_dir=output_dir, artifact_dir=Path(artifact_dir) if artifact_dir else None,
        shown_output_dir=options.shown_output_dir or output_dir,
        empty_dir=executor.env.work / "empty",
        store_graphics_override=options.store_graphics_artifacts)


def _global_key(assignment: Assignment, staged: StagedAssignment, limits: SandboxLimits,
                python: str | None, options: GradeOptions) -> str:
    """Return the part of every reference cache key that names this reference and engine."""
    version = options.reference_version or "content:" + tree_digest(staged.reference_base,
                                                                    staged.tests_dir)
    runner = hashlib.sha256()
    for path in (*(Path(__file__).parent / name for name in RUNNER_FILES),
                 Path(value_format.__file__), Path(cpu_wait.__file__),
                 Path(spare_descriptors.__file__)):
        runner.update(path.read_bytes())
    return json.dumps([ENGINE_VERSION, runner.hexdigest(), version,
                       options.assignment_id or str(assignment.directory), assignment.digest,
                       repr(limits), python or sys.executable])


class _Clock:
    """Wall-clock phases of one grading."""

    def __init__(self) -> None:
        self.started_at = dt.datetime.now()
        self.started = time.perf_counter()
        self.last = self.started
        self.timings: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.timings[phase] = now - self.last
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.started


def _report(clock: _Clock, suite: SuiteSpec | None, collections: list[CollectionReport],
            assignment: Assignment, hidden: list[str], reference_gaps: list[CourseProblem],
            found_problems: list[CourseProblem]) -> Report:
    """Build the suite level (§7) and gradehook's section (§8) from the collection reports.

    Tests the reference gave no expected value for keep the original's results (skipped), but
    the run is the course's failure, which is not scored: the section names the first of them,
    after the suite's own course problems (dependencies no run can meet, names that are not
    Python) and those the grading found (found_problems: the collections checking a file the
    reference lacks, the testFiles the course's code loaded in the student's run though it was
    withheld from it), all graded as the original graded them too.
    A suite without collections keeps the original's result too ("No Tests specified"), and is
    the course's failure as well.
    """
    summary = Summary.of([c.result for c in collections])
    success = suite.success_message if suite else PROPERTY_DEFAULTS["successMessage"]
    failure = suite.failure_message if suite else PROPERTY_DEFAULTS["failureMessage"]
    if not collections:
        result, message, exit_code = SKIPPED, NO_TESTS_SPECIFIED, EXIT_NO_TESTS
    elif summary.passed == summary.total:
        result, message, exit_code = PASSED, success, EXIT_OK
    elif summary.skipped == summary.total:
        result, message, exit_code = SKIPPED, TESTS_SKIPPED, EXIT_TESTS_FAILED
    else:
        result, message, exit_code = FAILED, failure, EXIT_TESTS_FAILED
    student_seconds = sum((c.debug or {}).get("executionDurationStudent", 0) for c in collections)
    reference_seconds = sum((c.debug or {}).get("executionDurationReference", 0)
                            for c in collections)
    tests = [t.result for c in collections for t in c.tests]
    clock.timings["total"] = clock.total()
    problems = [*(suite.course_problems if suite else ()), *found_problems]
    if not collections:
        if assignment.mode in NO_COLLECTIONS:
            problems.append(CourseProblem.open(NO_COLLECTIONS[assignment.mode]))
    elif reference_gaps:
        more = MORE_REFERENCE_GAPS.format(count=len(reference_gaps) - 1) \
            if len(reference_gaps) > 1 else ""
        first = reference_gaps[0]
        problems.append(CourseProblem(first.text + more, first.shown + more))
    course_error = course_error_text(problems) if problems else None
    if course_error is not None:
        log.info("course error: %s", course_error.full)
    section = GradehookSection(
        score=None if course_error else summary.passed / summary.total if summary.total else 0.0,
        course_error=course_error.full if course_error else None,
        course_error_for_students=course_error.shown if course_error else None,
        tests_passed=tests.count(PASSED), tests_total=len(tests),
        collections_passed=summary.passed, collections_total=summary.total,
        engine_version=ENGINE_VERSION, mode=assignment.mode, hidden=hidden,
        timings=dict(clock.timings))
    return Report(
        timestamp=clock.started_at.strftime(TIMESTAMP_FORMAT),
        type=suite.type if suite else SUITE_DEFAULTS["type"],
        version=suite.version if suite else SUITE_DEFAULTS["version"],
        name=suite.name if suite else SUITE_DEFAULTS["name"],
        description=suite.description if suite else SUITE_DEFAULTS["description"],
        status=COMPLETED, result=result, summary=summary, gradehook=section,
        result_message=message, duration=clock.total(), execution_duration=student_seconds,
        environment=_environment(),
        # test.yaml within the assignment: where it lies on the grading host is no one's
        # business (staff read the report through the API).
        properties={"test": TEST_FILE_NAME if assignment.mode == MODE_CODEABILITY else "",
                    "specification": "", "pytestflags": "", "exitcode": exit_code},
        debug={"executionDurationStudent": student_seconds,
               "executionDurationReference": reference_seconds},
        tests=collections)


def course_error_report(message: str) -> Report:
    """Return the report of a run whose course side failed before its grading began (students
    read the message too)."""
    return _course_error_report(_Clock(), None, [CourseProblem.open(message)], MODE_CODEABILITY)


def _course_error_report(clock: _Clock, suite: SuiteSpec | None,
                         problems: Sequence[CourseProblem], mode: str) -> Report:
    """Return the report of an assignment that cannot be graded: no score, the error for staff
    and what students read of it."""
    error = course_error_text(problems)
    message = error.full
    # Information, not a warning: the report carries it to staff, and a worker logs the run's end.
    log.info("course error: %s", message)
    clock.timings["total"] = clock.total()
    section = GradehookSection(score=None, tests_passed=0, tests_total=0, collections_passed=0,
                               collections_total=0, engine_version=ENGINE_VERSION, mode=mode,
                               course_error=message, course_error_for_students=error.shown,
                               timings=dict(clock.timings))
    return Report(
        timestamp=clock.started_at.strftime(TIMESTAMP_FORMAT),
        type=suite.type if suite else SUITE_DEFAULTS["type"],
        version=suite.version if suite else SUITE_DEFAULTS["version"],
        name=suite.name if suite else SUITE_DEFAULTS["name"],
        description=suite.description if suite else SUITE_DEFAULTS["description"],
        status=COURSE_ERROR_STATUS, result=SKIPPED, summary=Summary(), gradehook=section,
        result_message=message, duration=clock.total(), environment=_environment(),
        tests=[])


def _environment() -> dict[str, str]:
    # Where the worker's python lies on the grading host is no one's business (staff read the
    # report through the API).
    return {"python": platform.python_version(), "platform": _platform(),
            "engine": f"gradehook {ENGINE_VERSION}"}


def _platform() -> str:
    """Name the grading host's system, architecture and C library, as platform.platform() does
    without the kernel's release and build ('Linux-x86_64-with-glibc2.36'): no result depends on
    them, and they tell which kernel fixes the grading host lacks."""
    libc, version = platform.libc_ver()
    system = f"{platform.system()}-{platform.machine()}"
    return f"{system}-with-{libc}{version}" if libc else system
