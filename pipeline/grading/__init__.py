"""The grading engine: CodeAbility test.yaml (plus pytest and output comparison) in, a report out.

Public interface::

    from pipeline.grading import grade, GradeOptions, ReferenceCache, report_to_json
    report = grade(student_dir, reference_dir, assignment_dir,      # assignment: default reference
                   settings=config.sandbox,                         # SandboxSettings (course)
                   reference_cache=ReferenceCache(cache_dir),       # optional, shared by workers
                   options=GradeOptions(reference_version=sha, assignment_id="week1/ex1",
                                        output_dir=..., dependency_root=repo_root))
    report.score          # passed collections / all (§8); None on a course error
    report.course_error   # None, or the message for staff (invalid test.yaml, missing reference)
    report.gradehook.course_error_for_students   # what students read of it (no reference code,
                                                 # nothing of a hidden collection)
    report.gradehook      # tests/collections passed, timings, mode, hidden collection names
    report.to_dict(), report_to_json(report)   # testSummary.json (§7) + "gradehook" section

Modes, in this order: test.yaml in the assignment directory (CodeAbility, spec/codeability.md);
else the pytest files (test_*.py) of the assignment or reference directory, run against the
student's code; else the default comparison (entry point output, reference files present).

Isolation: every (collection, side) run is its own bubblewrap sandbox process; runs that execute
exactly the same code share one. The student's sandbox holds a copy of the student's directory
plus meta.yaml additionalFiles and testDependencies, and only those testFiles that its own test
code (setUpCode, tearDownCode, test names) names, or that the Python code of those names in turn;
never the reference solution, test.yaml or the other test files (one the course's code loads by
a name built as it runs, which it therefore fails to find, makes the run a course error:
withheld_files). Values leave as tagged JSON
through the result channel and are compared here; regexp tests are matched in a sandbox of their
own, each match stopped after 5 seconds or at 240 MB.
Limits: SandboxSettings (operator), which meta.yaml executionBackend.settings (timeout,
memoryLimitMB) may lower but never raise; a collection's timeout covers its entry point, setUpCode
and tearDownCode, and each of its tests' lookups has what remains of it (one past it fails that
test alone). In pytest mode the timeout covers the whole pytest run, and each test has a limit of
its own (SandboxSettings.test_timeout_seconds or half the run's timeout, whichever is shorter, or
its timeout marker): a test over it fails and the tests after it run (pytest_watchdog); each test
file's import has that default limit, and one over it fails that file's collection, the other
files run. Student files larger than the
sandbox's work directory are not run: every test fails with their size (graded). Messages the
student's code controls are cut to 2,000 characters; a result document over 8 MiB, or one of the
wrong shape, is a crash of the program. A student's file over 256 KiB fails the structural tests
that count its tokens, and as an entry point a collection with a moduleBlacklist, unrun: the
worker reads them as Python.
pytest mode trusts outcomes reported from inside the student's process (see pytest_mode).

Errors: a broken assignment never raises from grade(); it returns a report with course_error set
(SpecError and CourseError are raised by the loaders). EngineError means the sandbox could not
run at all: our failure, to retry, never a score.
"""

from pipeline.grading.assignment import Assignment, load_assignment
from pipeline.grading.cache import ReferenceCache
from pipeline.grading.errors import CourseError, EngineError, FieldProblem, GradingError, \
    SpecError
from pipeline.grading.grader import ENGINE_VERSION, GradeOptions, grade
from pipeline.grading.meta import MetaSpec, load_meta
from pipeline.grading.report import CollectionReport, GradehookSection, Report, \
    TestCaseReport, report_to_json
from pipeline.grading.spec import CollectionSpec, SuiteSpec, TestSpec, load_test_suite

__all__ = [
    "Assignment", "CollectionReport", "CollectionSpec", "CourseError", "ENGINE_VERSION",
    "EngineError", "FieldProblem", "GradeOptions", "GradehookSection", "GradingError", "MetaSpec",
    "ReferenceCache", "Report", "SpecError", "SuiteSpec", "TestCaseReport", "TestSpec", "grade",
    "load_assignment", "load_meta", "load_test_suite", "report_to_json",
]
