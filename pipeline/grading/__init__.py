"""The grading engine: CodeAbility test.yaml (plus pytest and output comparison) in, a report out.

Public interface::

    from pipeline.grading import grade, GradeOptions, ReferenceCache, Report, report_to_json
    report = grade(student_dir, reference_dir, assignment_dir, settings=sandbox_settings,
                   reference_cache=ReferenceCache(cache_dir), options=GradeOptions(...))
    report.score, report.course_error, report.gradehook.hidden, report_to_json(report)

Errors: SpecError (an invalid test.yaml or meta.yaml; grade() turns it into a report with
``course_error`` set), CourseError (its base), EngineError (the sandbox could not run: ours).
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
