"""The commit status payload: state, name, description, coverage and target URL per run status."""

from __future__ import annotations

import pytest

from pipeline.reports import ReportInputError, RunSummary, commit_status_payload, status_name
from tests.reports.report_samples import (RESULT_URL, SHA, case, collection, mixed_report,
                                          report, run)


def test_a_graded_run_reports_tests_score_and_coverage():
    assert commit_status_payload(run("failed"), mixed_report()) == {
        "state": "failed", "ref": "main", "name": "gradehook/week1/assignment1",
        "description": "Score 25% (1 of 4 collections passed, 2/6 tests passed, 1 of the 6 "
                       "hidden)",
        "target_url": RESULT_URL, "coverage": 25.0}


def test_a_passed_run_is_success():
    passed = report([collection("A", [case("a"), case("b")]), collection("B", [case("c")])])

    payload = commit_status_payload(run("passed"), passed)

    assert (payload["state"], payload["description"], payload["coverage"]) == (
        "success", "Score 100% (2 of 2 collections passed, 3/3 tests passed)", 100.0)


def test_percent_is_never_rounded_to_a_full_or_empty_score():
    almost = report([collection(f"C{n}", [case("t")]) for n in range(199)]
                    + [collection("last", [case("t", "FAILED", "E   x")])])
    barely = report([collection("first", [case("t")])]
                    + [collection(f"C{n}", [case("t", "FAILED", "E   x")]) for n in range(299)])

    assert commit_status_payload(run(), almost)["description"] == \
        "199/200 tests passed, score 99%"
    assert commit_status_payload(run(), barely)["description"] == \
        "1/300 tests passed, score 1%"
    assert commit_status_payload(run(), barely)["coverage"] == 0.33


def test_a_score_of_collections_holding_several_tests_names_both_counts_briefly():
    given = report([collection("A", [case("a")]),
                    collection("B", [case("b", "FAILED", "E   x"), case("c", "FAILED", "E   x")]),
                    collection("C", [case("d", "FAILED", "E   x"), case("e", "FAILED", "E   x")])])

    description = commit_status_payload(run(), given)["description"]

    assert description == "Score 33% (1 of 3 collections passed, 1/5 tests passed)"
    assert len(description) < 80


@pytest.mark.parametrize("tests, description", [
    ([["FAILED"]], "0/1 test passed, score 0%"),
    ([["PASSED", "FAILED"]], "Score 0% (0 of 1 collection passed, 1/2 tests passed)"),
    ([["PASSED", "PASSED"]], "Score 100% (1 of 1 collection passed, 2/2 tests passed)"),
    ([["PASSED"], ["FAILED", "FAILED"]],
     "Score 50% (1 of 2 collections passed, 1/3 tests passed)"),
])
def test_a_count_of_one_takes_the_singular(tests, description):
    given = report([collection(f"C{n}", [case(f"t{m}", result, None if result == "PASSED"
                                              else "E   x") for m, result in enumerate(results)])
                    for n, results in enumerate(tests)])

    assert commit_status_payload(run(), given)["description"] == description


@pytest.mark.parametrize("hidden, description", [
    (["H1", "H2"], "Score 60% (3 of 5 collections passed, 12/14 tests passed, 4 of the 14 "
                   "hidden)"),
    (["V", "H1", "H2", "F", "P"], "Score 60% (3 of 5 collections passed, 12/14 tests passed, "
                                  "all hidden)"),
])
def test_a_count_of_tests_some_of_which_are_hidden_says_how_many(hidden, description):
    """Before, the count took in the tests of hidden collections, which students see only as
    passed or failed, without saying so: a student counting the tests listed (10 here) could not
    make 14. The numbers stay; how many of them are hidden is said."""
    given = report([collection("V", [case(f"v{n}") for n in range(7)]),
                    collection("F", [case("f", "FAILED", "E   x")]),
                    collection("H1", [case("h1"), case("h2"), case("h3")]),
                    collection("H2", [case("h4", "FAILED", "E   x")]),
                    collection("P", [case(f"p{n}") for n in range(2)])], hidden=hidden)

    assert commit_status_payload(run(), given)["description"] == description


def test_one_test_per_collection_keeps_the_short_description():
    given = report([collection(f"C{n}", [case("t")]) for n in range(8)]
                   + [collection(f"F{n}", [case("t", "FAILED", "E   x")]) for n in range(2)])

    assert commit_status_payload(run(), given)["description"] == "8/10 tests passed, score 80%"


@pytest.mark.parametrize("status, reason, state, description", [
    ("queued", None, "pending", "Waiting to be graded"),
    ("running", None, "running", "Grading in progress"),
    ("error", "database unavailable", "failed",
     "Not graded: gradehook ran into a problem: database unavailable"),
    ("superseded", None, "canceled",
     "Not graded: a newer push to this branch replaced this commit"),
    ("cancelled", "cancelled by staff", "canceled",
     "Grading was cancelled: cancelled by staff"),
])
def test_runs_without_a_score_never_send_coverage(status, reason, state, description):
    payload = commit_status_payload(run(status, status_reason=reason), None)

    assert (payload["state"], payload["description"], payload["coverage"]) == (
        state, description, None)


def test_an_error_with_a_zero_score_report_still_sends_no_score():
    zero = report([collection("A", [case("a", "FAILED", "E   x")])])

    payload = commit_status_payload(run("error", status_reason="worker lost"), zero)

    assert payload["coverage"] is None
    assert payload["description"] == "Not graded: gradehook ran into a problem: worker lost"


def test_a_course_error_is_not_a_zero_score():
    broken = report([], course_error="test.yaml: collection 'A' has no tests")

    payload = commit_status_payload(run("failed"), broken)

    assert payload == {
        "state": "failed", "ref": "main", "name": "gradehook/week1/assignment1",
        "description": "Not graded: the course's tests for this assignment have a problem: "
                       "test.yaml: collection 'A' has no tests",
        "target_url": RESULT_URL, "coverage": None}


def test_a_course_error_of_several_problems_lists_them_apart():
    broken = report([], course_error="test.yaml line 4: properties.timeout: must be a number\n"
                                     "test.yaml line 9:  properties.tests[0].name: is required\n")

    payload = commit_status_payload(run("failed"), broken)

    assert payload["description"] == (
        "Not graded: the course's tests for this assignment have a problem: "
        "test.yaml line 4: properties.timeout: must be a number; "
        "test.yaml line 9: properties.tests[0].name: is required")


def test_students_read_of_a_course_error_only_what_the_engine_wrote_for_them():
    cause = "the reference solution gives no expected value for `f(4711)` in collection `Secret`"
    kept = report([], course_error=cause + ": ... (ex.py, line 4: return secret_formula / 0)",
                  course_error_for_students="a test of a hidden collection has no value")
    older = report([], course_error=cause)
    del older["gradehook"]["courseErrorForStudents"]

    descriptions = [commit_status_payload(run("error"), given)["description"]
                    for given in (kept, older)]

    # A report written before the engine wrote the students' text apart shows none of it.
    assert descriptions == [
        "Not graded: the course's tests for this assignment have a problem: a test of a hidden "
        "collection has no value",
        "Not graded: the course's tests for this assignment have a problem"]


def test_description_fits_255_characters_on_one_line():
    payload = commit_status_payload(run("error", status_reason="boom\n" * 200), None)

    whole = "Not graded: gradehook ran into a problem: " + "; ".join(["boom"] * 200)
    assert payload["description"] == whole[:254] + "…"
    assert len(payload["description"]) == 255


def test_a_long_course_error_is_cut_in_its_cause_keeping_where_staff_read_it_whole():
    """Before, the cut at 255 characters fell at the end, where the students' text of a course
    error says where staff read its whole cause: a long cause cut that pointer off."""
    pointer = "the course's staff see the whole cause in GET /api/runs"
    shown = ("test.yaml line 17: properties.tests[1].tests[0].countRequirement: a problem with a "
             "hidden test\n" * 4 + pointer)
    broken = report([], course_error="the whole cause", course_error_for_students=shown)

    description = commit_status_payload(run("error"), broken)["description"]

    assert len(description) == 255
    assert description.startswith("Not graded: the course's tests for this assignment have a "
                                  "problem: test.yaml line 17: properties.tests[1].tests[0]")
    assert description.endswith("…; " + pointer)


def test_an_overlong_result_url_is_left_out():
    payload = commit_status_payload(run(result_url="https://x.example/" + "a" * 300), None)

    assert payload["target_url"] is None


def test_status_name_prefix_and_validation():
    assert status_name("week3/fib", prefix="grader") == "grader/week3/fib"
    with pytest.raises(ReportInputError):
        status_name("")


def test_unknown_run_status_is_refused():
    with pytest.raises(ReportInputError, match="run status 'done'"):
        RunSummary("r", "a", "p", SHA, "main", "done")
