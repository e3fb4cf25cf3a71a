"""successDependency and setUpCodeDependency (§3.2 steps 1-2), replayed per §9."""

from __future__ import annotations

import pytest

from pipeline.grading import grade
from tests.grading.builders import make_assignment

TEST_YAML = """
properties:
  tests:
    - {id: setup, name: setup, entryPoint: ex.py, setUpCode: "counter = [1]", tests: [{name: x}]}
    - {name: needs setup, successDependency: setup, entryPoint: ex.py, tests: [{name: x}]}
    - {name: failing, entryPoint: ex.py, tests: [{name: y, value: 99}]}
    - {name: needs failing, successDependency: [setup, 3], entryPoint: ex.py,
       tests: [{name: x}, {name: y}]}
    - {name: invalid dep, successDependency: [99], entryPoint: ex.py, tests: [{name: x}]}
    - {name: later dep, successDependency: 12, entryPoint: ex.py, tests: [{name: x}]}
    - {id: self, name: self dep, successDependency: self, entryPoint: ex.py, tests: [{name: x}]}
    - {name: uses namespace, setUpCodeDependency: setup, setUpCode: "counter.append(2)",
       tests: [{name: counter, value: [1, 2]}, {name: x}]}
    - {name: shares mutation, setUpCodeDependency: 1, tests: [{name: counter}]}
    - {name: dep not valid, setUpCodeDependency: nothing, tests: [{name: x}]}
    - {name: dep not found, setUpCodeDependency: 12, tests: [{name: x}]}
    - {name: later, entryPoint: ex.py, tests: [{name: x}]}
    - {id: empty, name: empty, tests: []}
    - {name: needs empty, successDependency: empty, entryPoint: ex.py, tests: [{name: x}]}
    - {name: ns of empty, setUpCodeDependency: empty, tests: [{name: x}]}
"""
CODE = {"ex.py": "x = 1\ny = 2\n"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    student, reference = make_assignment(tmp_path_factory.mktemp("deps"), TEST_YAML, CODE, CODE)
    return grade(student, reference)


def summary(report, index):
    collection = report.tests[index]
    return (collection.status, collection.result,
            [(test.result, test.details) for test in collection.tests])


def test_a_satisfied_success_dependency_runs(report):
    assert summary(report, 0) == ("COMPLETED", "PASSED", [("PASSED", None)])
    assert summary(report, 1) == ("COMPLETED", "PASSED", [("PASSED", None)])
    assert summary(report, 2)[1] == "FAILED"


def test_an_unsatisfied_success_dependency_skips_every_test(report):
    message = "Skipped: Success-Dependency `['setup', 3]` not satisfied"
    assert summary(report, 3) == ("SKIPPED", "SKIPPED", [("SKIPPED", message)] * 2)
    assert report.tests[3].result_message == "Tests skipped"


def test_an_unknown_success_dependency_fails(report):
    assert summary(report, 4) == ("FAILED", "FAILED", [
        ("FAILED", "E   Failed: Success-Dependency `[99]` not valid")])


def test_later_and_self_references_are_never_satisfied(report):
    assert summary(report, 5) == ("SKIPPED", "SKIPPED", [
        ("SKIPPED", "Skipped: Success-Dependency `[12]` not satisfied")])
    assert summary(report, 6) == ("SKIPPED", "SKIPPED", [
        ("SKIPPED", "Skipped: Success-Dependency `['self']` not satisfied")])


def test_set_up_code_dependency_starts_in_the_dependency_namespace(report):
    assert summary(report, 7) == ("COMPLETED", "PASSED", [("PASSED", None), ("PASSED", None)])


def test_mutations_of_a_shared_namespace_are_seen_by_later_collections(report):
    assert summary(report, 8) == ("COMPLETED", "PASSED", [("PASSED", None)])


def test_set_up_code_dependency_errors(report):
    assert summary(report, 9) == ("FAILED", "FAILED", [
        ("FAILED", "E   Failed: Setup-Code-Dependency `nothing` not valid")])
    assert summary(report, 10) == ("FAILED", "FAILED", [
        ("FAILED", "E   Failed: ERROR: Setup-Code-Dependency `12` not found")])
    assert summary(report, 14) == ("FAILED", "FAILED", [
        ("FAILED", "E   Failed: ERROR: Setup-Code-Dependency `empty` not found")])


def test_a_collection_without_tests_satisfies_dependencies(report):
    assert summary(report, 12) == ("COMPLETED", "PASSED", [])
    assert summary(report, 13) == ("COMPLETED", "PASSED", [("PASSED", None)])


def test_scores_count_collections(report):
    assert (report.summary.total, report.summary.passed, report.summary.failed,
            report.summary.skipped) == (15, 7, 5, 3)


def test_dependencies_no_run_can_meet_are_the_courses_failure_named_at_their_lines(report):
    # The results above stay the original's; but every student's run of these collections
    # fails or is skipped, so the run is the course's failure, not scored, each mistake named.
    assert report.score is None
    assert report.course_error.splitlines() == [
        "test.yaml line 9: properties.tests[4].successDependency: `99` names no collection: it "
        "is neither a collection's id (setup, self, empty) nor a number from 1 to 15",
        "test.yaml line 10: properties.tests[5].successDependency: `12` names collection 12 "
        "(`later`), which runs after this one and so has no results yet: this collection's "
        "tests are skipped for every student; name a collection above it",
        "test.yaml line 11: properties.tests[6].successDependency: `self` names this "
        "collection, which has no results yet when its tests run, so they are skipped for "
        "every student; name a collection above it",
        "test.yaml line 15: properties.tests[9].setUpCodeDependency: `nothing` names no "
        "collection: it is neither a collection's id (setup, self, empty) nor a number from 1 "
        "to 15",
        "test.yaml line 16: properties.tests[10].setUpCodeDependency: `12` names collection 12 "
        "(`later`), which runs after this one and so has no namespace yet: this collection's "
        "tests fail for every student; name a collection above it",
        "test.yaml line 20: properties.tests[14].setUpCodeDependency: `empty` names collection "
        "13 (`empty`), which has no tests and so never runs to make a namespace: this "
        "collection's tests fail for every student; name a collection with tests"]


def test_a_misspelt_dependency_id_is_a_course_error_even_where_every_test_has_its_value(
        tmp_path):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {id: setup, name: setup, entryPoint: ex.py, tests: [{name: x, value: 1}]}
            - name: after setup
              successDependency: [setup, stup]
              entryPoint: ex.py
              tests: [{name: y, value: 2}]
    """, CODE, CODE)
    report = grade(student, reference)
    assert [test.details for test in report.tests[1].tests] == [
        "E   Failed: Success-Dependency `['setup', 'stup']` not valid"]
    assert (report.score, report.course_error) == (
        None, "test.yaml line 6: properties.tests[1].successDependency: `stup` names no "
              "collection: it is neither a collection's id (setup) nor a number from 1 to 2")


def test_a_dependency_that_gates_no_tests_or_on_a_collection_without_tests_is_no_course_error(
        tmp_path):
    # A success dependency on a collection without tests, even a later one, is met (none of its
    # results failed to pass); a collection without tests is never gated.
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {name: run, successDependency: notes, entryPoint: ex.py, tests: [{name: x}]}
            - {id: notes, name: notes, tests: []}
            - {id: later, name: later, successDependency: [later, stup], tests: []}
    """, CODE, CODE)
    report = grade(student, reference)
    assert [test.result for test in report.tests[0].tests] == ["PASSED"]
    assert (report.score, report.course_error) == (1.0, None)
