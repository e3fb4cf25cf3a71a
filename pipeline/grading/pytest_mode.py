"""Assignments without test.yaml: the reference's pytest files run against the student's code.

Each test file is one collection and each test one line; each test of a test file that could not
be imported fails saying so, and a test file that could not run has one line named by the file.
The test files run in the student's sandbox (they must import the student's code), so they are
visible to it; the reference solution is not, nor to the visible test files' run the hidden ones
and, beside hidden ones, the testFiles the visible ones do not name. Outcomes come back through
the result channel,
never from stdout. Each test has a time limit of its own within the run's (pytest_limits,
pytest_watchdog).

The outcomes are only as trustworthy as the student's process: the assertions run in it, so code
the tests import can write forged outcomes to the channel. What is checked outside it: a
collected test must be named in its test file, a run may collect at most MAX_COLLECTED_TESTS
(unless the test files collect more with the reference solution too: then the course's failure),
and every test function (and method of a Test class) a test file defines at its top level must
have an outcome, else it fails as not run.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.grading.assignment import CONFTEST_NAME, PYTEST_PATTERN, Assignment, course_paths
from pipeline.grading.checks import FAILED, PASSED, RAISED, SHADOWED, SKIPPED
from pipeline.grading.course_problems import CourseProblem
from pipeline.grading.errors import PYTEST, CourseError, module_missing, pytest_too_old
from pipeline.grading.execution import CONTROL_DIR, MAX_RESULT_LINE_BYTES, RESULT_PATH, \
    TESTS_DIR, MalformedResult, checked_place, checked_shadowed, log_runner_errors, os_exit_of, \
    os_exited, output_stop_limit, printed_without_end, shown_paths, stop_reason, strict_json, \
    timed_out
from pipeline.grading.report import COMPLETED, CRASHED, FAILED_STATUS, TEST_SKIPPED, \
    TESTS_SKIPPED, TIMEDOUT, CollectionReport, Summary, TestCaseReport
from pipeline.grading.runner import OS_EXIT_EVENT, shorten
from pipeline.grading.staging import StagedAssignment, copy_path, copy_tree_lacking, \
    imported_names, test_files_named
from pipeline.grading.withheld_files import withheld_file_named
from pipeline.sandbox import PYTHON_PLACEHOLDER, SANDBOX_PYTHONPATH, SANDBOX_WORKDIR, Mount, \
    SandboxLimits, SandboxResult, run_sandboxed
from pipeline.sandbox.model import MB

RUNNER_PATH = f"{SANDBOX_PYTHONPATH}/pipeline/grading/pytest_runner.py"
INI_NAME = "pytest.ini"
COLLECTION_TYPE = "pytest"
PYTEST_CRASHED = "Execution of pytest failed, ERROR: {reason}"
PROCESS_ENDED = "process ended before all tests ran (exit code {code})"
# A run reports at most so many tests: each is a line of the report, and one that did not run
# repeats what ended the run (up to 2,000 characters). The student's process writes the list of
# tests collected, and 8 MiB of it named 200,000 tests, a report of 29 MB (436 MB each repeating
# a 2,000-character reason) and 1.5 GB in the worker. One naming more fails each test its test
# files define, saying why; unless the test files collect more with the reference solution too
# (pytest --collect-only in its sandbox, run then alone), which is the course's failure.
MAX_COLLECTED_TESTS = 2000
TOO_MANY_TESTS = "pytest collected {count} tests, more than the {limit} gradehook grades in a run"
COURSE_TOO_MANY_TESTS = ("its pytest files collect {count} tests with the reference solution, "
                         "more than the {limit} gradehook grades in a run: spread them over "
                         "more assignments, or parametrize less")
COLLECT_ONLY = "--collect-only"
PYTEST_STOPPED = "pytest stopped on {message}"
NOT_RUN = "the test did not run"
NOT_RUN_AFTER_END = "the test did not run, as the run ended during an earlier test: {problem}"
IMPORT_FAILED = "the test did not run, as importing {file} failed: {message}"
# How the runner (or pytest.fail) words a failure of its own, as a test that did not run reads:
# said once, before the reason.
FAILED_BY = "Failed: "
NOT_RUN_IMPORTING_CONFTEST = ("the test did not run, as the run ended while {conftest} was "
                              "imported: {problem}")
NOT_RUN_IMPORTING_ANOTHER = ("the test did not run, as the run ended while another test file was "
                             "imported: {problem}")
# A visible test file that loads a testFile by a name built as it runs, which no reading of its
# code finds: beside hidden test files, the visible ones' run lacks it (grade()), and every
# student fails on it.
TEST_FILE_WITHHELD = ("{loading} loads the testFile {test_file} by a name built as it runs, so "
                      "the visible test files' run lacks it and every student fails: beside "
                      "hidden test files, that run holds only the meta.yaml testFiles the visible "
                      "test files import or write the name of in a string, or lie in; write "
                      "'{name}' in {loading}, or move it into a testFiles folder whose name "
                      "{loading} writes")
# A test without a timeout marker has [sandbox] test_timeout_seconds, or this share of the run's
# limit when that is shorter: a test stuck on it leaves the rest of the run's time to the tests
# after it, which still run, where a run's limit at or below test_timeout_seconds (a meta.yaml
# timeout of 20 s) ended the run on the stuck test, naming no line, and the later tests did not run.
DEFAULT_SHARE_OF_RUN = 0.5
# The node ids of the tests' own folder: pytest's for it (".") and the session's ("").
TESTS_FOLDER_IDS = (".", "")
# A test passed or was skipped, then a fixture torn down after it (its own, its file's, or the
# session's after the last test) failed.
TEARDOWN = "teardown"
TEARDOWN_FAILED = "the test {outcome}, but tearing down a fixture after it failed: {message}"
TEARDOWN_AFTER = {PASSED: "passed", SKIPPED: "was skipped"}
LOGGED_WITHOUT_END = ("the program logged more than {size} and was stopped, likely in an endless "
                      "loop")
# A phase of a test may log at most memory_mb / LOG_STOP_DIVISOR MB, and no more than it may print:
# pytest keeps every log record of a test in memory with its line, up to 40 bytes for each
# character of the shortest lines ('WARNING  a:calc.py:8 '), so the log of a phase that logs
# without end stays within a third of the sandbox's memory limit.
LOG_STOP_DIVISOR = 128
# The runner announces it started once pytest is imported, before anything of the student's
# runs: without that event, what the process wrote to stderr is the runner's own.
NO_PYTEST = re.compile(rb"ModuleNotFoundError: No module named 'pytest'")
OLD_PYTEST = re.compile(rb"gradehook's pytest runner needs pytest 8 or newer, not pytest (\S+)")
OUTCOMES = {"passed": PASSED, "failed": FAILED, "skipped": SKIPPED, "xfailed": PASSED}
# A test marked xfail that failed, as the marker expects: pytest counts it a success.
XFAILED = "xfailed"
EXPECTED_FAILURE = "failed, as the tests expect of it (xfail)"
# pytest's notes of an xfail test it did not run (run=False), and of a strict one that passed,
# before the marker's reason.
XFAIL_NOT_RUN = "[NOTRUN]"
EXPECTED_NOT_RUN = "not run, as the tests expect it to fail (xfail)"
XPASS_STRICT = re.compile(r"^\[XPASS\(strict\)\] ?")
UNEXPECTED_PASS = "Failed: the test passed, but the tests expect it to fail (xfail, strict)"
# A file of the student's folder or of the tests' in a message is named by its path in its
# folder, as a place names it (`stats.py`).
SHOWN_FOLDERS = {SANDBOX_WORKDIR: "", TESTS_DIR: ""}
NOT_A_PLACE = MalformedResult("a test's place must be a file, line number and line of the "
                              "solution")
NOT_SHADOWED = MalformedResult("a module passed over must be a module's name and two flags")
EVENT_FIELDS: dict[str, dict[str, type]] = {
    "started": {},
    "collected": {"tests": list},
    "began": {"nodeid": str},
    "test": {"nodeid": str, "outcome": str, "message": str},
    "collecterror": {"nodeid": str, "message": str},
    "stopped": {"message": str},
    "printed": {"nodeid": str},
    "logged": {"nodeid": str},
    "printed_on": {"nodeid": str},
    "done": {"exit": int},
    OS_EXIT_EVENT: {"code": int},
}


# A failure's message, where its error passed last through the student's files, if it did, and
# the module of theirs it is about that Python passed over, if it is (checks.SHADOWED).
Failure = tuple[str, dict[str, Any] | None, dict[str, Any] | None]
# A test's result, message, place and module passed over.
Outcome = tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]


@dataclass(frozen=True)
class DefinedTests:
    """What a course test file defines: every name in it, and the tests pytest must collect."""

    names: frozenset[str]
    required: tuple[str, ...]

    def defines(self, test: str) -> bool:
        """Tell whether every part of a test's name (`Class::function`) is a name of the file."""
        return all(part in self.names for part in test.split("::"))


def defined_tests(source: bytes) -> DefinedTests | None:
    """Read a test file's names and top-level tests; None when this Python cannot parse it."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.update(node.name.split("."))
            names.add(node.asname or node.name)
    required: list[str] = []
    for node in tree.body:
        if _is_test_function(node):
            required.append(node.name)
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            required += [f"{node.name}::{item.name}" for item in node.body
                         if _is_test_function(item)]
    return DefinedTests(frozenset(names), tuple(dict.fromkeys(required)))


def _is_test_function(node: ast.stmt) -> bool:
    """Tell whether pytest collects a function by its name (fixtures named test_ aside)."""
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
        and node.name.startswith("test") \
        and not any(_is_fixture(decorator) for decorator in node.decorator_list)


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Attribute) and target.attr == "fixture") \
        or (isinstance(target, ast.Name) and target.id == "fixture")


def _is_test_class(node: ast.ClassDef) -> bool:
    """Tell whether pytest collects a class: named Test..., without a constructor of its own."""
    constructors = {"__init__", "__new__"}
    return node.name.startswith("Test") and not any(
        isinstance(item, ast.FunctionDef) and item.name in constructors for item in node.body)


def default_test_seconds(test_seconds: float, limits: SandboxLimits) -> float:
    """Return the time limit of a test without a timeout marker, and of each test file's import:
    test_seconds, or DEFAULT_SHARE_OF_RUN of the run's limit when that is shorter (0: no limit
    of its own, as test_seconds 0 says)."""
    if test_seconds == 0:
        return 0.0
    return min(test_seconds, DEFAULT_SHARE_OF_RUN * limits.effective_timeout)


class PytestGrader:
    """Run the assignment's pytest files in the student's sandbox and report per file."""

    def __init__(self, assignment: Assignment, staged: StagedAssignment, limits: SandboxLimits,
                 test_seconds: float, python: str | None, user: str, work: Path) -> None:
        self.assignment = assignment
        self.staged = staged
        self.limits = limits
        self.test_seconds = test_seconds
        self.python = python
        self.user = user
        self.work = work
        # Visible test files that load a testFile withheld from their run (grade()).
        self.test_files_withheld: list[CourseProblem] = []

    def grade(self) -> list[CollectionReport]:
        """Run pytest and build one collection report per test file, in the files' order.

        The test files hidden from students (meta.yaml hiddenTests) run in a sandbox of their
        own: the student's code can read every test file of its run and show it in a visible
        test's failure. The visible ones' run then holds only the meta.yaml testFiles they surely
        load (import, or write the name of in a string) or lie in: a hidden test file may build
        the path of its data as it runs, which no reading of its code finds. A visible test file
        that builds so the path of one it needs fails on it: the course's failure, noted in
        test_files_withheld.
        """
        reports = {report.name: report for name, group, left_out in self._runs()
                   for report in self._reports(group, name, left_out)}
        return [reports[file] for file in self.assignment.pytest_files]

    def check_reference_collections(self) -> None:
        """Raise CourseError when a run's test files collect more tests than a run reports with
        the reference solution: every run of the assignment would end as that course error."""
        for name, group, left_out in self._runs():
            self._check_reference_collects_few_enough(group, name, left_out)

    def _runs(self) -> list[tuple[str, list[str], set[str]]]:
        """Return the runs a grading makes: each one's name, test files and the testFiles it
        leaves out (grade says which)."""
        hidden = self.assignment.hidden
        files = self.assignment.pytest_files
        visible = [file for file in files if file not in hidden]
        hidden_files = [file for file in files if file in hidden]
        withheld = set(self.staged.test_files) - self._helpers_loaded_by(visible) \
            if hidden_files else set()
        groups = [(group, left_out) for group, left_out in ((visible, withheld),
                                                            (hidden_files, set())) if group]
        return [(f"pytest-{number}", group, left_out)
                for number, (group, left_out) in enumerate(groups)]

    def _helpers_loaded_by(self, files: list[str]) -> set[str]:
        """Return the meta.yaml testFiles that test files, or their folders' conftest.py files,
        surely load (imported_names), or that the testFiles they load name in turn, and the
        folders they lie in.

        Of testFiles sharing a file name, a file names only those whose folders, from its own,
        it names too (_names_folders_of): a/test_a.py's 'expected.txt' is a/expected.txt, not
        b/expected.txt.
        """
        source = self.assignment.pytest_dir
        shared = _sharing_a_name(self.staged.test_files)
        named: set[str] = set()
        for file in (*files, *_conftests_of(source, files)):
            names = imported_names((source / file).read_text(encoding="utf-8", errors="replace"))
            folders = frozenset(PurePosixPath(file).parent.parts)
            named |= {test_file for test_file in test_files_named(self.staged, names | folders,
                                                                  imported_names)
                      if test_file not in shared or _names_folders_of(test_file, file, names)}
        return named

    def _run(self, files: list[str], name: str, left_out: set[str],
             solution: Path | None = None, options: tuple[str, ...] = ()) -> SandboxResult:
        """Run pytest on some of the test files and the testFiles but those left out, in a
        sandbox whose folders are named by name, against the student's solution (or another),
        with pytest's options added to the runner's."""
        tests = self.work / f"{name}-tests"
        tests.mkdir()
        source = self.assignment.pytest_dir
        # A testFiles folder may hold test files and conftest.py files too: the run has its own
        # alone, copied in after.
        for file in self.staged.test_files:
            if file not in left_out:
                copy_path(self.staged.tests_dir / file, tests / file,
                          leaving_out=(PYTEST_PATTERN, CONFTEST_NAME))
        for file in (*files, *_conftests_of(source, files)):
            copy_path(source / file, tests / file)
        control = self.work / f"{name}-control"
        control.mkdir()
        (control / INI_NAME).write_text("[pytest]\n", encoding="utf-8")
        return run_sandboxed(
            [PYTHON_PLACEHOLDER, "-s", RUNNER_PATH, TESTS_DIR, f"{CONTROL_DIR}/{INI_NAME}",
             RESULT_PATH, repr(default_test_seconds(self.test_seconds, self.limits)),
             str(output_stop_limit(self.limits)),
             str(log_stop_limit(self.limits)), *options],
            workdir=solution or self.staged.student_base,
            mounts=[Mount(tests, TESTS_DIR), Mount(control, CONTROL_DIR)], limits=self.limits,
            python=self.python, user=self.user, result_path=RESULT_PATH,
            extra_env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})

    def refuse(self, reason: str) -> list[CollectionReport]:
        """Fail every test file with the reason, running nothing: the solution cannot be graded."""
        return [_collection(file, [TestCaseReport(file, FAILED, details=f"E   Failed: {reason}")],
                            FAILED_STATUS, 0.0)
                for file in self.assignment.pytest_files]

    def _reports(self, files: list[str], name: str, left_out: set[str]) -> list[CollectionReport]:
        """Run some of the test files (as _run does) and build their reports."""
        result = self._run(files, name, left_out)
        events = _events(result.result_data)
        if left_out:
            self.test_files_withheld += self._withheld_loaded_by_course(events, files, name,
                                                                        left_out)
        if not events and result.exit_code != 0:
            if NO_PYTEST.search(result.stderr):
                raise module_missing(self.python, PYTEST)
            old = OLD_PYTEST.search(result.stderr)
            if old:
                raise pytest_too_old(self.python, old.group(1).decode("utf-8", "replace"))
        finished = any(event.get("event") == "done" for event in events)
        stopped = [event["message"] for event in events if event["event"] == "stopped"]
        # Tests and test files that printed or logged past their stop limit fail saying so,
        # whatever their outcome; one that printed on after the stop ended the run.
        output_stops = {"printed": printed_without_end(self.limits),
                        "logged": logged_without_end(self.limits)}
        stopped_output = {event["nodeid"]: f"Failed: {output_stops[event['event']]}"
                          for event in events if event["event"] in output_stops}
        printed_on = any(event["event"] == "printed_on" for event in events)
        # What began last (a test, or a test file's import) is what the run ended during.
        began = [event["nodeid"] for event in events if event["event"] == "began"]
        ended_in = began[-1] if began else None
        status, problem, exited_at = COMPLETED, None, None
        if stopped:
            status, problem = CRASHED, PYTEST_CRASHED.format(
                reason=PYTEST_STOPPED.format(message=shorten(stopped[0])))
        elif printed_on:
            status, problem = CRASHED, PYTEST_CRASHED.format(
                reason=printed_without_end(self.limits))
        elif not finished:
            status, problem, exited_at = self._failure(
                result, events[-1] if events else None)
        collected: list[str] = []
        outcomes: dict[str, Outcome] = {}
        failed_imports: dict[str, Failure] = {}
        for event in events:
            kind = event["event"]
            if kind == "collected":
                collected = event["tests"]
            elif kind == "test" and event.get("when") == TEARDOWN:
                _note_teardown(outcomes, event, _failure(event, stopped_output))
            elif kind == "test":
                verdict = FAILED if event["nodeid"] in stopped_output \
                    else OUTCOMES.get(event["outcome"], FAILED)
                failure = _failure(event, stopped_output)
                if verdict == PASSED and event["outcome"] == XFAILED:
                    failure = _expected_failure(failure[0]), None, None
                outcomes[event["nodeid"]] = (verdict, *failure)
            elif kind == "collecterror":
                failed_imports[_file_of(event["nodeid"])] = _failure(event, stopped_output)
        if len(collected) > MAX_COLLECTED_TESTS:
            self._check_reference_collects_few_enough(files, name, left_out)
            return self._each_failed(files, TOO_MANY_TESTS.format(
                count=len(collected), limit=MAX_COLLECTED_TESTS), result.duration_seconds)
        unrun = _unrun_reasons(collected, ended_in, outcomes, problem)
        reports = []
        for file in files:
            defined = defined_tests((self.assignment.pytest_dir / file).read_bytes())
            file_ids = [nodeid for nodeid in collected if _file_of(nodeid) == file
                        and (defined is None or defined.defines(_test_of(nodeid)))]
            lines = [self._line(nodeid, outcomes, unrun,
                                exited_at if nodeid == ended_in else None)
                     for nodeid in file_ids]
            failed_import = _failed_import(file, failed_imports)
            if failed_import is not None:
                lines += _unimported(file, defined, *failed_import)
            elif not collected and problem is not None:
                why = self._import_ended(file, ended_in, problem)
                lines += _failed_each(file, defined, FAILED_BY + why,
                                      exited_at if why == problem else None, None)
            elif defined is not None:
                present = {_test_of(nodeid) for nodeid in file_ids}
                lines += [TestCaseReport(test, FAILED, details=f"E   Failed: {problem or NOT_RUN}")
                          for test in defined.required if test not in present]
            reports.append(_collection(file, lines, status, result.duration_seconds))
        return reports

    def _withheld_loaded_by_course(self, events: list[dict[str, Any]], files: list[str],
                                   name: str, left_out: set[str]) -> list[CourseProblem]:
        """Return the problems of a run's test files that failed to find a testFile withheld
        from it (_withheld_loaded) and fail so with the reference solution too (its run lacking
        the same testFiles): a student's program may name a withheld testFile in an error of its
        own, which is the student's failure, not the course's. The reference solution's folder
        may hold the testFiles too, so its copy run lacks them as well."""
        found = _withheld_loaded(events, left_out, files)
        if not found:
            return []
        solution = self.work / f"{name}-reference-solution"
        copy_tree_lacking(self.staged.reference_base, solution, left_out)
        reference = _events(self._run(files, f"{name}-reference-withheld", left_out,
                                      solution).result_data)
        return [problem for problem in _withheld_loaded(reference, left_out, files)
                if problem in found]

    def _check_reference_collects_few_enough(self, files: list[str], name: str,
                                             left_out: set[str]) -> None:
        """Raise CourseError when the test files collect more tests than a run reports with the
        reference solution too (pytest --collect-only in its sandbox): no run could grade them."""
        events = _events(self._run(files, f"{name}-reference", left_out,
                                   self.staged.reference_base, (COLLECT_ONLY,)).result_data)
        count = max((len(event["tests"]) for event in events if event["event"] == "collected"),
                    default=0)
        if count > MAX_COLLECTED_TESTS:
            raise CourseError(COURSE_TOO_MANY_TESTS.format(count=count,
                                                           limit=MAX_COLLECTED_TESTS))

    def _each_failed(self, files: list[str], reason: str,
                     duration: float) -> list[CollectionReport]:
        """Fail each test the test files define, the run crashed for the reason."""
        problem = FAILED_BY + PYTEST_CRASHED.format(reason=reason)
        return [_collection(file, _failed_each(
            file, defined_tests((self.assignment.pytest_dir / file).read_bytes()), problem,
            None, None), CRASHED, duration) for file in files]

    def _import_ended(self, file: str, ended_in: str | None, problem: str) -> str:
        """Return why a test file has no tests in a run that ended before they were collected:
        the reason, for the file (or a folder holding it) whose import the run ended during;
        that the run ended while another was imported, for the others."""
        if ended_in is None or ended_in == file or _holds(ended_in, file):
            return problem
        if ended_in in self.assignment.pytest_files:
            return NOT_RUN_IMPORTING_ANOTHER.format(problem=problem)
        if not ended_in.endswith(".py"):
            return NOT_RUN_IMPORTING_CONFTEST.format(
                conftest=PurePosixPath(ended_in, CONFTEST_NAME), problem=problem)
        return problem

    def _failure(self, result: SandboxResult,
                 last_event: dict[str, Any] | None) -> tuple[str, str, dict[str, Any] | None]:
        """Return the status and problem of a run that ended before pytest did, and where in
        the student's files it ended if the student's code called os._exit() (the last event
        says so)."""
        reason = stop_reason(result, self.limits, self.limits.effective_timeout)
        if timed_out(result):
            return TIMEDOUT, reason, None
        exited = os_exit_of(last_event, result)
        if exited is not None:
            code, place = exited
            return CRASHED, PYTEST_CRASHED.format(reason=os_exited(code)), place
        log_runner_errors(result)
        return CRASHED, PYTEST_CRASHED.format(
            reason=reason or PROCESS_ENDED.format(code=result.exit_code)), None

    @staticmethod
    def _line(nodeid: str, outcomes: dict[str, Outcome], unrun: dict[str, str],
              exited_at: dict[str, Any] | None) -> TestCaseReport:
        """Report a test by its outcome, else as failed for the reason it has none (or what ended
        the run during it, after its call passed, at exited_at when the student's code ended it
        there with os._exit())."""
        name = nodeid.split("::", 1)[-1]
        if nodeid in unrun and exited_at is not None:
            return _failed(name, FAILED_BY + unrun[nodeid], exited_at, None)
        if nodeid in unrun:
            return TestCaseReport(name, FAILED, details=f"E   Failed: {unrun[nodeid]}")
        result, message, place, shadowed = outcomes[nodeid]
        if result == PASSED:
            return TestCaseReport(name, PASSED, message or None)
        if result == SKIPPED:
            return TestCaseReport(name, SKIPPED, TEST_SKIPPED, message)
        if message.startswith("assert "):
            message = f"AssertionError: {message}"
        if XPASS_STRICT.match(message):
            message = _with_reason(UNEXPECTED_PASS, XPASS_STRICT.sub("", message))
        return _failed(name, message, place, shadowed)


def _withheld_loaded(events: list[dict[str, Any]], withheld: set[str],
                     files: list[str]) -> list[CourseProblem]:
    """Return the problems of the test files (and conftest.py files) of a run whose tests, or
    import, failed to find a testFile withheld from the run, each once."""
    found: dict[str, None] = {}
    for event in events:
        if event["event"] not in ("test", "collecterror"):
            continue
        test_file = withheld_file_named(event["message"], withheld, TESTS_DIR)
        if test_file is None:
            continue
        loading = _file_of(event["nodeid"])
        if loading not in files:  # a folder whose conftest.py failed to import
            loading = str(PurePosixPath(loading, CONFTEST_NAME))
        found[TEST_FILE_WITHHELD.format(loading=loading, test_file=test_file,
                                        name=PurePosixPath(test_file).name)] = None
    return [CourseProblem.open(problem) for problem in found]


def _conftests_of(source: Path, files: list[str]) -> list[str]:
    """Return the conftest.py files pytest loads for some test files: those of their folders and
    of the folders above them (a hidden file's own folder stays out of the visible files' run)."""
    folders = {parent for file in files for parent in PurePosixPath(file).parents}
    return [conftest for conftest in course_paths(source, CONFTEST_NAME)
            if PurePosixPath(conftest).parent in folders]


def _sharing_a_name(test_files: tuple[str, ...]) -> set[str]:
    """Return the testFiles whose file name another testFile has too (a/expected.txt and
    b/expected.txt)."""
    names = Counter(PurePosixPath(test_file).name for test_file in test_files)
    return {test_file for test_file in test_files if names[PurePosixPath(test_file).name] > 1}


def _names_folders_of(test_file: str, naming_file: str, names: frozenset[str]) -> bool:
    """Tell whether the code of naming_file, which names names, names the folders from its own
    to test_file's (all of test_file's when it lies outside naming_file's folder)."""
    folder, own = PurePosixPath(test_file).parent, PurePosixPath(naming_file).parent
    steps = folder.relative_to(own).parts if folder.is_relative_to(own) else folder.parts
    return set(steps) <= names


def _note_teardown(outcomes: dict[str, Outcome], event: dict[str, Any],
                   failure: Failure) -> None:
    """Fail a test whose teardown failed (a fixture of its own, or of its file or session torn
    down after it), saying the test itself passed or was skipped; one that failed already keeps
    its own failure."""
    earlier = outcomes.get(event["nodeid"])
    if earlier is not None and earlier[0] == FAILED:
        return
    message, place, shadowed = failure
    if earlier is not None:
        message = TEARDOWN_FAILED.format(outcome=TEARDOWN_AFTER[earlier[0]], message=message)
    outcomes[event["nodeid"]] = (FAILED, message, place, shadowed)


def _unrun_reasons(collected: list[str], ended_in: str | None, outcomes: dict[str, Outcome],
                   problem: str | None) -> dict[str, str]:
    """Return why each collected test that has no outcome failed, and the test the run ended
    during if its outcome is not a failure (its call passed, then its teardown ended the run):
    what ended the run, for that test; that they did not run after it, for the tests after it."""
    if problem is None:
        return {nodeid: NOT_RUN for nodeid in collected if nodeid not in outcomes}
    after = set(collected[collected.index(ended_in) + 1:]) if ended_in in collected else set()
    reasons = {nodeid: NOT_RUN_AFTER_END.format(problem=problem) if nodeid in after else problem
               for nodeid in collected if nodeid not in outcomes}
    if ended_in in outcomes and outcomes[ended_in][0] != FAILED:
        reasons[ended_in] = problem
    return reasons


def log_stop_limit(limits: SandboxLimits) -> int:
    """Return how many characters of log lines a phase of a pytest test may log before it is
    stopped."""
    return min(output_stop_limit(limits), limits.memory_mb * MB // LOG_STOP_DIVISOR)


def logged_without_end(limits: SandboxLimits) -> str:
    """Return why a test that logged past its log stop limit was stopped."""
    return LOGGED_WITHOUT_END.format(size=f"{log_stop_limit(limits) / MB:g} MB")


def _collection(file: str, lines: list[TestCaseReport], status: str,
                duration: float) -> CollectionReport:
    summary = Summary.of([line.result for line in lines])
    if summary.passed == summary.total:
        result, message = PASSED, None
    elif summary.skipped:
        result, message = SKIPPED, TESTS_SKIPPED
    else:
        result, message = FAILED, None
    return CollectionReport(type=COLLECTION_TYPE, name=file, status=status, result=result,
                            summary=summary, result_message=message, duration=duration,
                            debug={"lintingErrors": []}, tests=lines)


def _failed(name: str, message: str, place: dict[str, Any] | None,
            shadowed: dict[str, Any] | None) -> TestCaseReport:
    """Report a failed test (or a test file's import): its message, with pytest's explanation on
    further lines, where its error passed last through the student's files (its debug's
    `raised`) and the module of theirs it is about that Python passed over (`shadowed`)."""
    lines = message.split("\n")
    debug = {key: value for key, value in (
        (RAISED, {"error": lines[0], **place} if place else None), (SHADOWED, shadowed))
        if value is not None}
    return TestCaseReport(name, FAILED, details="\n".join(f"E   {line}" for line in lines),
                          debug=debug or None)


def _failed_import(file: str, failed_imports: dict[str, Failure]) -> tuple[str, Failure] | None:
    """Return what could not be imported before a test file's tests, and why: the file itself,
    else the conftest.py of the innermost folder holding it whose import failed; None if none."""
    if file in failed_imports:
        return file, failed_imports[file]
    folders = [folder for folder in failed_imports if _holds(folder, file)]
    if not folders:
        return None
    folder = max(folders, key=len)
    return str(PurePosixPath(folder, CONFTEST_NAME)), failed_imports[folder]


def _unimported(file: str, defined: DefinedTests | None, imported: str,
                failure: Failure) -> list[TestCaseReport]:
    """Fail each test a test file defines, whose import (or its folder's conftest.py's) failed,
    saying why (one line named by the file when none is known), so that its tests count as many
    as they are."""
    message, place, shadowed = failure
    reason = shorten(FAILED_BY + IMPORT_FAILED.format(file=imported,
                                                      message=message.removeprefix(FAILED_BY)))
    return _failed_each(file, defined, reason, place, shadowed,
                        file_reason=message if imported == file else reason)


def _failed_each(file: str, defined: DefinedTests | None, reason: str,
                 place: dict[str, Any] | None, shadowed: dict[str, Any] | None, *,
                 file_reason: str | None = None) -> list[TestCaseReport]:
    """Fail each test a test file defines with the reason, so that its tests count as many as
    they are; when none is known, one line named by the file, with file_reason if given."""
    if defined is None or not defined.required:
        return [_failed(file, file_reason or reason, place, shadowed)]
    return [_failed(test, reason, place, shadowed) for test in defined.required]


def _failure(event: dict[str, Any], stopped_output: dict[str, str]) -> Failure:
    """Return what failed a test or a test file's import, as its event says; one that printed or
    logged past its stop limit fails on that."""
    if event["nodeid"] in stopped_output:
        return stopped_output[event["nodeid"]], None, None
    return shorten(shown_paths(event["message"], SHOWN_FOLDERS)), _place(event), \
        _shadowed(event)


def _place(event: dict[str, Any]) -> dict[str, Any] | None:
    """Return where a test's error passed last through the student's files, as the runner noted
    it; None when it noted none, or something else (the student's process writes the events)."""
    if event.get("place") is None:
        return None
    try:
        return checked_place(event["place"], NOT_A_PLACE)
    except MalformedResult:
        return None


def _shadowed(event: dict[str, Any]) -> dict[str, Any] | None:
    """Return the module of the student's files a test's error is about that Python passed
    over, as the runner noted it; None when it noted none, or something else."""
    if event.get(SHADOWED) is None:
        return None
    try:
        return checked_shadowed(event[SHADOWED], NOT_SHADOWED)
    except MalformedResult:
        return None


def _expected_failure(reason: str) -> str:
    """Return what a test marked xfail that failed, as expected (or was not run), shows beside
    its pass."""
    shown = EXPECTED_NOT_RUN if reason.startswith(XFAIL_NOT_RUN) else EXPECTED_FAILURE
    return _with_reason(shown, reason.removeprefix(XFAIL_NOT_RUN).strip())


def _with_reason(text: str, reason: str) -> str:
    """Return a text followed by the xfail marker's reason, if it gives one."""
    return f"{text}: {reason}" if reason else text


def _holds(folder: str, file: str) -> bool:
    """Tell whether a node id is that of a folder holding the file (the tests' own folder, "."
    as pytest names it, holds them all)."""
    return folder in TESTS_FOLDER_IDS or file.startswith(f"{folder}/")


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _test_of(nodeid: str) -> str:
    """Return a test's name in its file without parameters (`T::test_b[1]` gives `T::test_b`)."""
    return nodeid.split("::", 1)[-1].split("[", 1)[0]


def _events(raw: bytes | None) -> list[dict[str, Any]]:
    """Return the well-formed events of the result channel (lines over the cap go unparsed)."""
    events = []
    for line in (raw or b"").splitlines():
        if len(line) > MAX_RESULT_LINE_BYTES:
            continue
        try:
            event = strict_json(line)
        except (ValueError, RecursionError):
            continue
        if _well_formed(event):
            events.append(event)
    return events


def _well_formed(event: Any) -> bool:
    """Tell whether an event has a known kind and the fields of that kind, of their types."""
    if not isinstance(event, dict) or event.get("event") not in EVENT_FIELDS:
        return False
    for name, kind in EVENT_FIELDS[event["event"]].items():
        value = event.get(name)
        if isinstance(value, bool) or not isinstance(value, kind):
            return False
    tests = event.get("tests", [])
    return all(isinstance(nodeid, str) for nodeid in tests)
