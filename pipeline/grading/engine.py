"""The CodeAbility engine: collections in file order, runs gated and planned, tests judged."""

from __future__ import annotations

import ast
import dataclasses
import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from pipeline.grading.checks import EXITED, FAILED, SKIPPED, PendingMatch, Verdict, \
    check_pattern, fail, match_verdict, not_found, raised_place, skip, stopped_lookup, \
    stopped_place, verify_equal
from pipeline.grading.course_problems import CourseProblem
from pipeline.grading.dependencies import resolve_dependency
from pipeline.grading.execution import SandboxExecutor
from pipeline.grading.expressions import syntax_error
from pipeline.grading.linting import LintResult, output_file_name, run_flake8
from pipeline.grading.plan import REFERENCE, STUDENT, RunOutcome, RunRequest, Stage
from pipeline.grading.regexps import match_all
from pipeline.grading.report import COMPLETED, FAILED_STATUS, PASSED, SKIPPED_STATUS, \
    TEST_SKIPPED, TESTS_SKIPPED, TIMEDOUT, CollectionReport, Summary, TestCaseReport
from pipeline.grading.spec import CollectionSpec, SuiteSpec, TestSpec
from pipeline.grading.staging import contained_file, contained_path
from pipeline.grading.static_checks import MAX_SOURCE_BYTES, check_exist, check_structural, \
    matches_in
from pipeline.grading.values import decode_entry
from pipeline.sandbox import SandboxLimits

log = logging.getLogger(__name__)

VERIFY_EQUAL = "verifyEqual"
REGEXP = "regexp"
SUCCESS_DEPENDENCY_INVALID = "Success-Dependency `{deps}` not valid"
SUCCESS_DEPENDENCY_UNSATISFIED = "Success-Dependency `{deps}` not satisfied"
SETUP_DEPENDENCY_INVALID = "Setup-Code-Dependency `{dep}` not valid"
SETUP_DEPENDENCY_NOT_FOUND = "ERROR: Setup-Code-Dependency `{dep}` not found"
ENTRY_POINT_NOT_FOUND = "entryPoint {entry} not found"
IMPORT_NOT_ALLOWED = "Import not allowed for: {modules}"
# An entry point whose imports cannot be checked (parsed in the worker, its syntax tree would take
# up to 600 times its size: 10 MB of `x=1` lines took 6 GB) fails the collection, which never runs:
# unchecked, it would slip past the blacklist.
IMPORTS_UNCHECKED = ("entryPoint {entry} is too large to check its imports against the "
                     "moduleBlacklist: {size} bytes, more than {limit}")
STUDENT_NOT_FOUND = "Variable `{name}` not found in student namespace"
REFERENCE_NOT_FOUND = "Variable `{name}` not found in reference namespace"
EVALUATION_NOT_POSSIBLE = "Evaluation of `{expression}` not possible"
# Why the reference gave no expected value: the course's failure, which gradehook does not score.
# Students read why only where the course's files say it, never what the reference's run raised
# or printed (its code, its values), and nothing of a hidden collection.
REFERENCE_GAP_AT = "the reference solution gives no expected value for `{test}` in collection " \
    "`{collection}`"
REFERENCE_GAP = REFERENCE_GAP_AT + ": {why}"
HIDDEN_REFERENCE_GAP = "the reference solution gives no expected value for a test of a hidden " \
    "collection"
REFERENCE_ENTRY_MISSING = "its entryPoint {entry} does not exist"
# A test whose expected value is its `value` (or a pattern) that the student failed as the
# reference solution would: a name misspelt in test.yaml fails every student.
REFERENCE_FAILS_TOO_AT = "the reference solution would fail `{test}` in collection " \
    "`{collection}` too"
REFERENCE_FAILS_TOO = REFERENCE_FAILS_TOO_AT + ": {why}"
# The types whose test names are looked up in a solution's namespace.
NAMED_TYPES = ("variable", "error", "warning", "help")
# A structural, linting or exist collection checks the student's `file`; where the reference
# solution has none, it would fail that check too: the course's failure, which is not scored.
REFERENCE_LACKS_FILE = "collection `{collection}` checks the file `{file}`, which the reference " \
    "solution does not have, so the reference would fail it too"
HIDDEN_LACKS_FILE = "a hidden collection checks a file which the reference solution does not " \
    "have, so the reference would fail it too"
REFERENCE_RUN_ENDED = "its run ended {status}: {message}"
# A testFile the students' run of a collection lacked, which the collection's code loads by a
# name built as it runs (`importlib.import_module('secret_' + 'helper')`): no reading of the code
# finds it, so it was withheld from the run (execution.SandboxExecutor), and every student fails
# on it.
TEST_FILE_WITHHELD = ("collection `{collection}` loads the testFile {test_file} by a name built "
                      "as it runs, so students' runs lack it and fail: a student's run holds "
                      "only the meta.yaml testFiles named in the collection's setUpCode, "
                      "tearDownCode and test names (or in the testFiles they name); write "
                      "'{name}' there, or move it into a testFiles folder named there")
HIDDEN_TEST_FILE_WITHHELD = ("a hidden collection loads a testFile by a name built as it runs, "
                             "so students' runs lack it and fail")
# A reference stopped part way gives the values it had then, which students would be held to.
REFERENCE_STOPPED_PART_WAY = "the reference solution's run for {collection} ended TIMEDOUT " \
    "({message}), so the values expected of students would be those of a run stopped part way; " \
    "if it does so every time, the collection's timeout is too small for the reference"
NAMED_COLLECTION = "collection `{name}`"
A_HIDDEN_COLLECTION = "a hidden collection"
REFERENCE_LACKS_NAME = "its run defines no `{name}`"
REFERENCE_CANNOT_EVALUATE = "`{expression}` cannot be evaluated in its namespace"
# What evaluating a name or evalString raised in the reference's namespace, and where in its files.
REFERENCE_RAISED = "evaluating `{expression}` in its namespace raised {error}{place}"
# A name or evalString whose evaluation in the reference's namespace ran past the time limit.
REFERENCE_STOPPED = "evaluating `{expression}` in its namespace was stopped: {error}{place}"
STR_FAILED = "str() of variable `{name}` failed: {error}"
STDOUT_CUT = "{message} (the program printed more than the {kept} characters kept)"
ARTIFACT_NAME = "{side}_test_{index}_figure_{number}.png"
HEAVY_MODULES = re.compile(rb"\b(numpy|pandas|matplotlib|scipy|seaborn|sklearn)\b")
LOCAL_IMPORT = re.compile(rb"^[ \t]*(?:from|import)[ \t]+([A-Za-z_][\w.]*)", re.MULTILINE)
SCAN_LIMIT_BYTES = 2 * 1024 * 1024


@dataclass
class GradingContext:
    """What the engine needs from its caller: sandbox, directories, cache, outputs, limits."""

    executor: SandboxExecutor
    student_base: Path
    reference_base: Path
    shown_student_dir: Path
    pool: ThreadPoolExecutor
    fetch_reference: Callable[[RunRequest], RunOutcome]
    lint_limits: SandboxLimits
    # The regexp matcher's: the operator's, which a course's memoryLimitMB, the student code's,
    # does not lower.
    match_limits: SandboxLimits
    python: str | None
    user: str
    output_dir: Path | None
    artifact_dir: Path | None
    # An empty directory: the regexp matcher's sandbox starts with a copy of it.
    empty_dir: Path
    # output_dir as messages name it (a linting failure points at its output file); set
    # whenever output_dir is.
    shown_output_dir: Path | None = None
    store_graphics_override: bool | None = None
    sandbox_seconds: dict[str, float] = field(
        default_factory=lambda: {STUDENT: 0.0, REFERENCE: 0.0})


@dataclass
class _Namespace:
    """A namespace object of one side: its __file__ and the stages applied to it so far."""

    root_file: str | None
    stages: list[Stage] = field(default_factory=list)


class CodeAbilityGrader:
    """Grade one test suite against the staged student and reference solutions."""

    def __init__(self, suite: SuiteSpec, context: GradingContext,
                 hidden: frozenset[str] = frozenset()) -> None:
        self.suite = suite
        self.collections = suite.collections
        self.ctx = context
        # The names of the collections hidden from students (meta.yaml hiddenTests).
        self.hidden = hidden
        self.results: dict[int, list[str]] = {}
        self.namespaces: dict[str, dict[int, _Namespace]] = {STUDENT: {}, REFERENCE: {}}
        self.runs: dict[tuple[str, str, bool], list[tuple[RunRequest, Future]]] = {}
        self.lints: dict[tuple[int, int], Future] = {}
        # Collections whose runs their dependencies stopped: both sides' alike, as both are
        # gated by the same results.
        self.gated: set[int] = set()
        # Tests whose expected value the reference could not give, described for staff and
        # students, and the first of them whose reference ran out of time (perhaps only on a
        # busy host).
        self.reference_gaps: list[CourseProblem] = []
        self.reference_timeout: str | None = None
        # Collections checking a file the reference solution does not have.
        self.files_missing_in_reference: list[CourseProblem] = []
        # Collections whose code loads a testFile withheld from the students' runs.
        self.test_files_withheld: list[CourseProblem] = []

    def grade(self) -> list[CollectionReport]:
        """Run every collection in file order and return their reports."""
        self._prefetch()
        reports = []
        for index, collection in enumerate(self.collections):
            started = time.perf_counter()
            reports.append(self._grade_collection(index, collection, started))
        return reports

    def refuse(self, reason: str) -> list[CollectionReport]:
        """Fail every test with the reason, running nothing: the solution cannot be graded."""
        student = RunOutcome(FAILED_STATUS, reason)
        return [_collection_report(collection, [fail("Failed", reason)] * len(collection.tests),
                                   student if collection.tests else None, None,
                                   time.perf_counter(), [])
                for collection in self.collections]

    def _prefetch(self) -> None:
        """Start, in parallel, the runs and lints that depend on no earlier result.

        Runs that execute the same code (same stages, namespace and preloads) are one process
        that looks up what all of them need: a fresh process would reach the same state.
        """
        planned: dict[tuple[str, str, bool], RunRequest] = {}
        for index, collection in enumerate(self.collections):
            if not collection.tests or collection.success_dependency \
                    or collection.set_up_code_dependency is not None:
                continue
            if collection.type == "linting":
                for position, test in enumerate(collection.tests):
                    self.lints[(index, position)] = self.ctx.pool.submit(
                        self._lint_result, collection, test)
            for side in (STUDENT, REFERENCE):
                stage = self._stage(index, side)
                if isinstance(stage, RunOutcome):
                    continue
                request = self._request(index, side, _Namespace(collection.entry_point), stage)
                if request is not None:
                    key = self._run_group(request)
                    planned[key] = planned[key].merged(request) if key in planned else request
        for key, request in planned.items():
            self.runs.setdefault(key, []).append(
                (request, self.ctx.pool.submit(self._execute, request)))

    def _run_group(self, request: RunRequest) -> tuple[str, str, bool]:
        """Return what runs that may be one process share: side, code and, for the student's
        side, whether the collection is hidden. The student's code can read what its process
        looks up and hand it back as a value or output, which a visible collection shows."""
        collection = self.collections[request.collection_index]
        return (request.side, request.run_key(),
                request.side == STUDENT and collection.name in self.hidden)

    def _obtain(self, request: RunRequest) -> RunOutcome:
        """Return the outcome of a run already started that covers the request, or run it.

        A run that evaluated other collections' names too, and ended in a way their evaluation
        may have caused (a function of the student's looping for ever in one test), is not taken
        for this request's: it runs on its own, so that it fails only on what it looks up.
        """
        key = self._run_group(request)
        for known, future in self.runs.get(key, []):
            if known.covers(request):
                outcome = future.result()
                if outcome.ended_by_lookups and not request.covers(known):
                    continue
                return outcome
        future: Future = Future()
        future.set_result(self._execute(request))
        self.runs.setdefault(key, []).append((request, future))
        return future.result()

    def _grade_collection(self, index: int, collection: CollectionSpec,
                          started: float) -> CollectionReport:
        if not collection.tests:
            self.results[index] = []
            return _collection_report(collection, [], None, None, started, [])
        lacking = file_missing_in_reference(collection, self.ctx.reference_base, self.hidden)
        if lacking is not None:
            self.files_missing_in_reference.append(lacking)
        student = self._run(index, STUDENT)
        self._note_withheld(collection, student)
        reference = self._run(index, REFERENCE)
        linting: list[str] = []
        verdicts = self._settle_matches([
            self._judge(index, position, test, student, reference, linting)
            for position, test in enumerate(collection.tests)])
        if reference is not None and reference.status == TIMEDOUT \
                and self.reference_timeout is None:
            self.reference_timeout = self._stopped_part_way(collection, reference.message)
        self.results[index] = [verdict.result for verdict in verdicts]
        self._store_artifacts(index, collection, student, reference)
        return _collection_report(collection, verdicts, student, reference, started, linting)

    def _note_withheld(self, collection: CollectionSpec, student: RunOutcome) -> None:
        """Note each testFile the student's run of a collection failed to find, withheld from it
        as the collection's code does not name it: the course's failure, not the student's."""
        found = [student.withheld_by_stages,
                 *(student.withheld_by_lookups.get(test.name) for test in collection.tests)]
        for test_file in dict.fromkeys(test_file for test_file in found if test_file):
            withheld = TEST_FILE_WITHHELD.format(collection=collection.name, test_file=test_file,
                                                 name=PurePosixPath(test_file).name)
            self.test_files_withheld.append(CourseProblem(
                withheld,
                HIDDEN_TEST_FILE_WITHHELD if collection.name in self.hidden else withheld))

    def _stopped_part_way(self, collection: CollectionSpec, message: str) -> str:
        """Word a reference run stopped part way: the reason of a run that ends in error, which
        students read, so a hidden collection stays unnamed there, and is named in the log."""
        named = REFERENCE_STOPPED_PART_WAY.format(
            collection=NAMED_COLLECTION.format(name=collection.name), message=message)
        if collection.name not in self.hidden:
            return named
        log.info("the reference ran out of time: %s", named)
        return REFERENCE_STOPPED_PART_WAY.format(collection=A_HIDDEN_COLLECTION, message=message)

    def _run(self, index: int, side: str) -> RunOutcome | None:
        """Gate, plan and run a (collection, side); None when the reference is not needed."""
        namespace = self._gate(index, side)
        if isinstance(namespace, RunOutcome):
            self.gated.add(index)
            return namespace
        stage = self._stage(index, side)
        if isinstance(stage, RunOutcome):
            return stage
        request = self._request(index, side, namespace, stage)
        if stage.has_code:
            namespace.stages.append(stage)
        if request is None:
            return None if side == REFERENCE else RunOutcome(COMPLETED)
        outcome = self._obtain(request)
        log.debug("collection %d (%s) %s: %s", index, self.collections[index].name, side,
                  outcome.status)
        return outcome

    def _execute(self, request: RunRequest) -> RunOutcome:
        started = time.perf_counter()
        if request.side == REFERENCE:
            outcome = self.ctx.fetch_reference(request)
        else:
            outcome = self.ctx.executor.execute(request)
        self.ctx.sandbox_seconds[request.side] += time.perf_counter() - started
        return outcome

    def _gate(self, index: int, side: str) -> RunOutcome | _Namespace:
        """Check the dependencies (§3.2 steps 1 and 2); return a failed outcome or the namespace."""
        collection = self.collections[index]
        fresh = _Namespace(collection.entry_point)
        deps = list(collection.success_dependency)
        for dependency in deps:
            target = resolve_dependency(self.collections, dependency)
            if target is None:
                self.namespaces[side][index] = fresh
                return RunOutcome(FAILED_STATUS, SUCCESS_DEPENDENCY_INVALID.format(deps=deps))
            results = self.results.get(target, [None] * len(self.collections[target].tests))
            if any(result != PASSED for result in results):
                self.namespaces[side][index] = fresh
                return RunOutcome(SKIPPED_STATUS,
                                  SUCCESS_DEPENDENCY_UNSATISFIED.format(deps=deps))
        dependency = collection.set_up_code_dependency
        namespace = fresh
        if dependency is not None:
            target = resolve_dependency(self.collections, dependency)
            if target is None:
                self.namespaces[side][index] = fresh
                return RunOutcome(FAILED_STATUS, SETUP_DEPENDENCY_INVALID.format(dep=dependency))
            if target == index:
                namespace = _Namespace(None)
            elif target in self.namespaces[side]:
                namespace = self.namespaces[side][target]
            else:
                self.namespaces[side][index] = fresh
                return RunOutcome(FAILED_STATUS,
                                  SETUP_DEPENDENCY_NOT_FOUND.format(dep=dependency))
        self.namespaces[side][index] = namespace
        return namespace

    def _stage(self, index: int, side: str) -> Stage | RunOutcome:
        """Plan the collection's own steps (§3.2 step 4 checks), or the failure that stops them."""
        collection = self.collections[index]
        base = self.ctx.student_base if side == STUDENT else self.ctx.reference_base
        entry = collection.entry_point
        entry_file = contained_file(base, entry) if entry is not None else None
        if entry is not None and entry_file is None:
            if side == STUDENT:
                return RunOutcome(FAILED_STATUS, ENTRY_POINT_NOT_FOUND.format(entry=entry))
            entry = None
        if entry is not None and collection.module_blacklist:
            size = entry_file.stat().st_size
            if size > MAX_SOURCE_BYTES:
                return RunOutcome(FAILED_STATUS, IMPORTS_UNCHECKED.format(
                    entry=entry, size=size, limit=MAX_SOURCE_BYTES))
            banned = forbidden_imports(entry_file, collection.module_blacklist)
            if banned:
                return RunOutcome(FAILED_STATUS, IMPORT_NOT_ALLOWED.format(modules=banned))
        graphics = None
        if collection.type == "graphics":
            graphics = tuple(dict.fromkeys(test.name for test in collection.tests))
        return Stage(entry, collection.set_up_code, collection.tear_down_code,
                     collection.input_answers, collection.timeout, graphics,
                     bool(self._store_graphics(collection)))

    def _request(self, index: int, side: str, namespace: _Namespace,
                 stage: Stage) -> RunRequest | None:
        """Build the sandbox request, or None when nothing needs a process."""
        collection = self.collections[index]
        values, texts, evals, capture = self._lookups(collection, side)
        has_code = stage.has_code or bool(namespace.stages)
        if side == REFERENCE and not (values or texts or evals or capture):
            return None
        if not has_code and not collection.uses_namespace:
            return None
        stages = (*namespace.stages, stage)
        return RunRequest(side, index, stages, namespace.root_file, capture, values, texts,
                          evals, self._preload(side, stages, collection))

    def _lookups(self, collection: CollectionSpec,
                 side: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool]:
        """Return what a run must hand back: values, str() texts, evalStrings, stdout."""
        if not collection.uses_namespace:
            return (), (), (), False
        stdout = collection.type == "stdout"
        values: dict[str, None] = {}
        texts: dict[str, None] = {}
        evals: dict[str, None] = {}
        capture = False
        for test in collection.tests:
            verify = test.qualification == VERIFY_EQUAL
            if side == STUDENT:
                capture = capture or stdout
                if not stdout:
                    (values if verify else texts)[test.name] = None
            elif verify and test.value is None:
                if test.eval_string is not None:
                    evals[test.eval_string] = None
                elif stdout:
                    capture = True
                else:
                    values[test.name] = None
            elif collection.type in NAMED_TYPES:
                texts[test.name] = None  # whether the reference has it: a typo fails both
        return tuple(values), tuple(texts), tuple(evals), capture

    def _preload(self, side: str, stages: tuple[Stage, ...],
                 collection: CollectionSpec) -> tuple[str, ...]:
        """Return the heavy libraries to import before the timer starts, as the original had."""
        base = self.ctx.student_base if side == STUDENT else self.ctx.reference_base
        code = "\n".join([*(t.name for t in collection.tests),
                          *(t.eval_string or "" for t in collection.tests)]
                         + [line for stage in stages
                            for line in (*stage.set_up_code, *stage.tear_down_code)]).encode()
        found = set(_heavy_names(code))
        for stage in stages:
            found |= heavy_modules(base, stage.entry_point)
        graphics = any(stage.graphics is not None for stage in stages)
        modules = []
        if found or graphics:
            modules.append("numpy")
        if found & {"pandas", "seaborn"}:
            modules.append("pandas")
        if graphics or found & {"matplotlib", "seaborn"}:
            modules.append("matplotlib.pyplot")
        return tuple(modules)

    def _store_graphics(self, collection: CollectionSpec) -> bool | None:
        if self.ctx.store_graphics_override is not None:
            return self.ctx.store_graphics_override
        return collection.store_graphics_artifacts

    def _settle_matches(self, judged: list[Verdict | PendingMatch]) -> list[Verdict]:
        """Match a collection's pending regexp tests, all in one sandbox, into verdicts."""
        pending = [item for item in judged if isinstance(item, PendingMatch)]
        outcomes = iter(match_all(pending, workdir=self.ctx.empty_dir,
                                  limits=self.ctx.match_limits, python=self.ctx.python,
                                  user=self.ctx.user))
        return [match_verdict(item, next(outcomes))
                if isinstance(item, PendingMatch) else item for item in judged]

    def _judge(self, index: int, position: int, test: TestSpec, student: RunOutcome,
               reference: RunOutcome | None,
               linting: list[str]) -> Verdict | PendingMatch:
        """Judge one test: the student run's gate first, then the type's check (a regexp test's
        match is left pending, for all of its collection's to be matched at once)."""
        collection = self.collections[index]
        if student.status == SKIPPED_STATUS:
            return skip(student.message)
        if student.status != COMPLETED:
            # A reference stopped by the dependencies that stopped the student's run adds
            # nothing to those; one stopped by its own checks (a moduleBlacklist it breaks)
            # gives no expected value.
            if index not in self.gated:
                self._note_reference_gap(collection, test, reference)
            return fail("Failed", student.message)
        if collection.uses_namespace:
            return self._compare(collection, test, student, reference)
        if collection.type == "structural":
            return check_structural(test, collection.file, self.ctx.student_base,
                                    self.ctx.shown_student_dir)
        if collection.type == "linting":
            future = self.lints.pop((index, position), None)
            result = future.result() if future else self._lint_result(collection, test)
            linting[:] = result.findings
            return result.verdict
        return check_exist(collection.file, self.ctx.student_base, self.ctx.reference_base)

    def _note_reference_gap(self, collection: CollectionSpec, test: TestSpec,
                            reference: RunOutcome | None) -> None:
        """Note, as comparing would, a reference that gives no expected value for a test the
        student failed first (an entryPoint misspelt in test.yaml that neither solution has, a
        name called with arguments neither solution's function takes): the course's failure
        all the same."""
        if collection.uses_namespace and test.qualification == VERIFY_EQUAL \
                and test.value is None:
            self._expected(collection, test, reference)
        elif collection.type in NAMED_TYPES and syntax_error(test.name) is None:
            # (a name that is no expression is the course's problem already, named at its line)
            outcome = reference or RunOutcome(COMPLETED)
            entry = outcome.texts.get(test.name, {})
            if not entry.get("found"):
                self._reference_gap(collection, test, outcome, *_lookup_failed(
                    test.name, entry, REFERENCE_LACKS_NAME.format(name=test.name)),
                    wording=(REFERENCE_FAILS_TOO_AT, REFERENCE_FAILS_TOO),
                    stopped="stopped" in entry)

    def _compare(self, collection: CollectionSpec, test: TestSpec, student: RunOutcome,
                 reference: RunOutcome | None) -> Verdict | PendingMatch:
        """Compare as _compare_values does; a failure on output cut at the limit says so, and one
        on output that ends where the program exited with code 0 says where (its debug's
        `exited`, as a name not found does)."""
        verdict = self._compare_values(collection, test, student, reference)
        if not isinstance(verdict, Verdict) or verdict.result != FAILED \
                or collection.type != "stdout":
            return verdict
        if student.stdout_truncated:
            verdict = dataclasses.replace(verdict, message=STDOUT_CUT.format(
                message=verdict.message, kept=len(student.stdout or "")))
        if student.exited_at is not None:
            verdict = dataclasses.replace(
                verdict, debug={**(verdict.debug or {}), EXITED: student.exited_at})
        return verdict

    def _compare_values(self, collection: CollectionSpec, test: TestSpec, student: RunOutcome,
                        reference: RunOutcome | None) -> Verdict | PendingMatch:
        name = test.name
        verify = test.qualification == VERIFY_EQUAL
        if collection.type == "stdout":
            obtained: Any = student.stdout or ""
        else:
            entry = (student.values if verify else student.texts).get(name, {})
            if not entry.get("found"):
                self._note_reference_gap(collection, test, reference)
                if "stopped" in entry:
                    return stopped_lookup(entry["stopped"])
                if "flooded" in entry:
                    return fail("Failed", entry["flooded"])
                return not_found(STUDENT_NOT_FOUND.format(name=name), entry.get("raised"),
                                 student.exited_at)
            if not verify:
                if "text" not in entry:
                    return fail("Failed", STR_FAILED.format(name=name, error=entry.get("error")))
                obtained = entry["text"]
            else:
                obtained, problem = decode_entry(name, entry)
                if problem is not None:
                    return fail("Failed", problem)
        if test.qualification == REGEXP:
            return PendingMatch(name, str(obtained), test.pattern)
        if not verify:
            return check_pattern(test.qualification, name, str(obtained), test.pattern,
                                 test.count_requirement)
        expected = self._expected(collection, test, reference)
        if isinstance(expected, Verdict):
            return expected
        return verify_equal(name, obtained, expected, type_check=test.type_check,
                            shape_check=test.shape_check, rel=test.relative_tolerance,
                            abs_tol=test.absolute_tolerance)

    def _expected(self, collection: CollectionSpec, test: TestSpec,
                  reference: RunOutcome | None) -> Any:
        """Return the expected value, or a skipped verdict when the reference cannot give it."""
        if test.value is not None:
            return test.value
        outcome = reference or RunOutcome(COMPLETED)
        if test.eval_string is not None:
            entry = outcome.evals.get(test.eval_string, {})
            if not entry.get("found"):
                self._reference_gap(collection, test, outcome, *_lookup_failed(
                    test.eval_string, entry,
                    REFERENCE_CANNOT_EVALUATE.format(expression=test.eval_string)),
                    stopped="stopped" in entry)
                return skip(EVALUATION_NOT_POSSIBLE.format(expression=test.eval_string))
        elif collection.type == "stdout":
            if outcome.stdout is None or outcome.status != COMPLETED \
                    or self._reference_entry_missing(collection):
                # Without its entry point the reference printed nothing to compare with, and a
                # run that crashed or ran out of time only the start of its output: the test is
                # judged against that, as the original did, but it is the course's.
                lacks = REFERENCE_LACKS_NAME.format(name=test.name)
                self._reference_gap(collection, test, outcome, lacks, lacks)
            if outcome.stdout is None:
                return skip(REFERENCE_NOT_FOUND.format(name=test.name))
            return outcome.stdout
        else:
            entry = outcome.values.get(test.name, {})
            if not entry.get("found"):
                self._reference_gap(collection, test, outcome, *_lookup_failed(
                    test.name, entry, REFERENCE_LACKS_NAME.format(name=test.name)),
                    stopped="stopped" in entry)
                return skip(REFERENCE_NOT_FOUND.format(name=test.name))
        value, problem = decode_entry(test.name, entry)
        return fail("Failed", problem) if problem is not None else value

    def _reference_gap(self, collection: CollectionSpec, test: TestSpec, outcome: RunOutcome,
                       lookup_failed: str, shown_lookup_failed: str | None,
                       wording: tuple[str, str] = (REFERENCE_GAP_AT, REFERENCE_GAP),
                       stopped: bool = False) -> None:
        """Note why the reference gave no expected value (its results stay as the original's:
        the test is skipped), most telling cause first: all of it for staff, for students
        what the course's files say (shown_lookup_failed: of the lookup's failure; None, none).
        The wording is the note's without a cause and with one. A run, or a lookup (stopped),
        that ran out of time is ours to grade again: a busy host may have caused it."""
        if self._reference_entry_missing(collection):
            why = shown_why = REFERENCE_ENTRY_MISSING.format(entry=collection.entry_point)
        elif outcome.status != COMPLETED:
            why = REFERENCE_RUN_ENDED.format(status=outcome.status, message=outcome.message)
            shown_why = None
        else:
            why, shown_why = lookup_failed, shown_lookup_failed
        without_cause, with_cause = wording
        gap = with_cause.format(test=test.name, collection=collection.name, why=why)
        if collection.name in self.hidden:
            shown = HIDDEN_REFERENCE_GAP
        elif shown_why is None:
            shown = without_cause.format(test=test.name, collection=collection.name)
        else:
            shown = with_cause.format(test=test.name, collection=collection.name, why=shown_why)
        self.reference_gaps.append(CourseProblem(gap, shown))
        if (outcome.status == TIMEDOUT or stopped) and self.reference_timeout is None:
            # Ours to grade again, and the reason of a run that ends in error, which students
            # read: a hidden collection's test stays unnamed there, and is named in the log.
            hidden = collection.name in self.hidden
            if hidden:
                log.info("the reference ran out of time: %s", gap)
            self.reference_timeout = shown if hidden else gap

    def _reference_entry_missing(self, collection: CollectionSpec) -> bool:
        entry = collection.entry_point
        return entry is not None and contained_file(self.ctx.reference_base, entry) is None

    def _lint_result(self, collection: CollectionSpec, test: TestSpec) -> LintResult:
        file_name = output_file_name(collection.name, test.name)
        output_path = None if self.ctx.output_dir is None else self.ctx.output_dir / file_name
        shown = file_name if output_path is None else str(self.ctx.shown_output_dir / file_name)
        return run_flake8(collection.file, test.pattern, student_base=self.ctx.student_base,
                          limits=self.ctx.lint_limits, python=self.ctx.python, user=self.ctx.user,
                          output_path=output_path, shown_output=shown,
                          stop=self.ctx.executor.env.stop)

    def _store_artifacts(self, index: int, collection: CollectionSpec,
                         student: RunOutcome | None, reference: RunOutcome | None) -> None:
        if self.ctx.artifact_dir is None or not self._store_graphics(collection):
            return
        for side, outcome in ((STUDENT, student), (REFERENCE, reference)):
            for number, png in (outcome.figures if outcome else []):
                self.ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
                name = ARTIFACT_NAME.format(side=side, index=index, number=number)
                (self.ctx.artifact_dir / name).write_bytes(png)


def _lookup_failed(expression: str, entry: dict[str, Any],
                   otherwise: str) -> tuple[str, str | None]:
    """Word why an expression has no value in the reference's namespace, for staff and for
    students: what evaluating it raised, or that its time limit or the output stop stopped it
    (for staff only), else otherwise."""
    stopped = entry.get("stopped")
    if stopped is not None:
        return REFERENCE_STOPPED.format(expression=expression, error=stopped["errormsg"],
                                        place=stopped_place(stopped)), None
    if "flooded" in entry:
        return entry["flooded"], None
    raised = entry.get("raised")
    if raised is None:
        return otherwise, otherwise
    return REFERENCE_RAISED.format(expression=expression, error=raised["error"],
                                   place=raised_place(raised)), None


def forbidden_imports(path: Path, blacklist: tuple[str, ...]) -> list[str]:
    """Return the blacklisted modules a file imports directly, in source order."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
        return []
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, node.col_offset, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.col_offset, node.module))
    banned = set(blacklist)
    return list(dict.fromkeys(name for _, _, name in sorted(found) if name in banned))


def heavy_modules(base: Path, entry: str | None) -> frozenset[str]:
    """Return which heavy libraries an entry point and the local modules it imports mention."""
    found: set[str] = set()
    pending = [entry] if entry else []
    seen: set[str] = set()
    budget = SCAN_LIMIT_BYTES
    while pending and budget > 0:
        relative = pending.pop()
        path = contained_file(base, relative)
        if relative in seen or path is None:
            continue
        seen.add(relative)
        try:
            data = path.read_bytes()[:budget]
        except OSError:
            continue
        budget -= len(data)
        found |= _heavy_names(data)
        for name in LOCAL_IMPORT.findall(data):
            top = name.decode().split(".")[0]
            pending += [f"{top}.py", f"{top}/__init__.py"]
    return frozenset(found)


def _heavy_names(data: bytes) -> set[str]:
    return {match.decode() for match in HEAVY_MODULES.findall(data)}


def file_missing_in_reference(collection: CollectionSpec, reference_base: Path,
                              hidden: frozenset[str]) -> CourseProblem | None:
    """Return the course problem of a collection with tests checking a file the staged
    reference solution lacks, as staff and students read it; None for any other."""
    if not (collection.tests and collection.checks_file) \
            or not _reference_lacks_file(collection, reference_base):
        return None
    lacks = REFERENCE_LACKS_FILE.format(collection=collection.name, file=collection.file)
    return CourseProblem(lacks, HIDDEN_LACKS_FILE if collection.name in hidden else lacks)


def _reference_lacks_file(collection: CollectionSpec, reference_base: Path) -> bool:
    """Tell whether the reference solution lacks the file a collection checks (for an exist
    collection, any file its glob matches; for a linting one, a folder does too)."""
    if collection.type == "exist":
        try:
            return not matches_in(collection.file, reference_base)
        except (OSError, ValueError):
            return True
    if collection.type == "linting":  # flake8 lints the files of a folder too
        return contained_path(reference_base, collection.file) is None
    return contained_file(reference_base, collection.file) is None


def _collection_report(collection: CollectionSpec, verdicts: list[Verdict],
                       student: RunOutcome | None, reference: RunOutcome | None,
                       started: float, linting: list[str]) -> CollectionReport:
    """Build a collection's report from its verdicts and runs (§7)."""
    results = [verdict.result for verdict in verdicts]
    summary = Summary.of(results)
    if summary.passed == summary.total:
        result, message = PASSED, collection.success_message
    elif summary.skipped > 0:
        result, message = SKIPPED, TESTS_SKIPPED
    else:
        result, message = "FAILED", collection.failure_message
    debug: dict[str, Any] = {
        "executionDurationStudent": student.entry_seconds if student else 0,
        "executionDurationReference": reference.entry_seconds if reference else 0,
        "traceback": student.traceback if student else None,
        "lintingErrors": linting,
    }
    if reference is not None and reference.ran:
        debug["referenceStatus"] = reference.status
        debug["referenceMessage"] = reference.message or None
    tests = [_test_report(test, verdict) for test, verdict in zip(collection.tests, verdicts)]
    return CollectionReport(
        type=collection.type, name=collection.name, description=collection.description,
        status=student.status if student else COMPLETED, result=result, summary=summary,
        result_message=message,
        setup="\n".join(collection.set_up_code) if collection.has_set_up_code else None,
        teardown="\n".join(collection.tear_down_code) if collection.has_tear_down_code else None,
        duration=time.perf_counter() - started,
        execution_duration=student.entry_seconds if student else 0, debug=debug, tests=tests)


def _test_report(test: TestSpec, verdict: Verdict) -> TestCaseReport:
    if verdict.result == SKIPPED:
        message = TEST_SKIPPED
    elif verdict.result == PASSED:
        message = test.success_message
    else:
        message = test.failure_message
    return TestCaseReport(name=test.name, result=verdict.result, result_message=message,
                          details=verdict.details, debug=verdict.debug)
