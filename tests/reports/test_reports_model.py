"""Reading reports defensively, run summaries from ledger rows, and builders on malformed input."""

from __future__ import annotations

import datetime as dt
import enum
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.reports import (ReportInputError, RunSummary, badge_svg, commit_status_payload,
                              comment_marker, mr_comment_markdown, read_report,
                              result_page_html, score_badge)
from tests.reports.report_samples import (SHA, START, case, collection, mixed_report, report,
                                          run, value_details)


def test_read_report_uses_gradehooks_section():
    view = read_report(mixed_report())

    assert (view.score, view.tests_passed, view.tests_total, view.collections_passed,
            view.collections_total) == (0.25, 2, 6, 1, 4)
    assert [c.name for c in view.collections if c.hidden] == ["Secret checks"]
    assert view.timings == (("clone", 0.25), ("tests", 3.5))
    assert (view.engine_version, view.mode, view.course_error) == ("1.2.0", "test.yaml", None)


def test_read_report_falls_back_to_the_suite_summary():
    bare = {"result": "FAILED", "summary": {"total": 4, "passed": 3},
            "tests": [{"name": "A", "result": "PASSED", "tests": [{"name": "a",
                                                                   "result": "PASSED"}]}]}

    view = read_report(bare)

    assert (view.score, view.tests_passed, view.tests_total) == (0.75, 1, 1)


@pytest.mark.parametrize("broken", [
    {"tests": "not a list"}, {"tests": [1, None, "x"]}, {"gradehook": []},
    {"gradehook": {"score": "high", "hidden": 5, "timings": {"x": "slow"}}},
    {"gradehook": {"score": float("nan")}}, {"gradehook": {"score": 7}},
    {"tests": [{"name": 3, "result": "MAYBE", "tests": [{"details": {"k": 1}}]}]},
    {"tests": [{"tests": [{"result": "FAILED", "debug": {"expected": 5, "actual": ["x"]}},
                          {"result": "FAILED", "debug": "x"}]}]},
])
def test_read_report_tolerates_malformed_fields(broken):
    view = read_report(broken)

    assert view.score is None or 0 <= view.score <= 1
    assert all(c.result in ("PASSED", "FAILED", "SKIPPED") for c in view.collections)


@pytest.mark.parametrize("score", [None, "high", 1.5, float("nan")])
def test_a_given_score_that_is_null_or_malformed_means_no_score(score):
    given = mixed_report()
    given["gradehook"]["score"] = score

    assert read_report(given).score is None


def test_read_report_refuses_what_is_not_an_object():
    assert read_report(None) is None
    with pytest.raises(ReportInputError, match="JSON object"):
        read_report(["not", "a", "report"])


class _Status(str, enum.Enum):
    PASSED = "passed"


def test_run_summary_from_a_ledger_row():
    row = types.SimpleNamespace(
        id="r9", assignment="week2/a", project_path="course/bob", commit_sha=SHA, ref="main",
        status=_Status.PASSED, status_reason=None, received_at=START, queued_at=None,
        started_at=START + dt.timedelta(seconds=1), cloned_at=None, tested_at=None,
        finished_at=START + dt.timedelta(seconds=5))

    summary = RunSummary.from_record(row, result_url="https://g.example/runs/r9")

    assert summary == RunSummary("r9", "week2/a", "course/bob", SHA, "main", "passed", None,
                                 "https://g.example/runs/r9",
                                 {"received": START, "started": START + dt.timedelta(seconds=1),
                                  "finished": START + dt.timedelta(seconds=5)})


def test_run_summary_refuses_unknown_phases():
    with pytest.raises(ReportInputError, match="timing 'cooked'"):
        run(timings={"cooked": START})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "result", "tests", "details", "summary", "gradehook", "score",
                         "hidden", "timings", "courseError", "type", "resultMessage", "debug",
                         "expected", "actual"]),
        inner, max_size=6),
    max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["tests", "summary", "result", "gradehook"]),
                           _json, max_size=4),
       status=st.sampled_from(["queued", "running", "passed", "failed", "error",
                               "superseded", "cancelled"]))
def test_builders_never_crash_on_malformed_reports(raw, status):
    summary = run(status)

    assert isinstance(commit_status_payload(summary, raw)["description"], str)
    assert mr_comment_markdown([(summary, raw)], comment_marker("mr")).startswith("<!--")
    assert result_page_html(summary, raw).startswith("<!DOCTYPE html>")
    assert score_badge(raw).startswith("<svg")


def test_badge_of_empty_text_is_still_valid():
    assert 'width="20"' in badge_svg("", "", "blue")


@pytest.mark.timeout(20)
def test_a_message_repeating_the_engines_phrases_is_read_in_linear_time():
    """A student's exception message (pytest mode) can start like the engine's and repeat its
    phrases: read by backtracking, 110,000 characters of them took many minutes, per page view."""
    phrases = "` has incorrect value (`` instead of `" * 3000
    given = report([collection("Values", [
        case("x", "FAILED", f"E   AssertionError: Variable `x` has incorrect value (`{phrases}"),
        case("y", "FAILED", f"E   AssertionError: Variable `y` has incorrect len, expected: 2"
                            f"{phrases}"),
        case("z", "FAILED", value_details("z", f"1{phrases}", "2"))])])

    lines = mr_comment_markdown([(run(), given)], comment_marker("mr")).split("\n")
    page = result_page_html(run(), given)

    rows = [line for line in lines if line.startswith("| ❌ | ` ")]
    assert [row.split(" | ")[4][:46] for row in rows[:2]] == [
        "``` AssertionError: Variable `x` has incorrect",
        "``` AssertionError: Variable `y` has incorrect"]
    assert rows[2] == "| ❌ | ` z ` (Values) | ` 2 ` | `` ` instead of ` `` | ` incorrect value ` |"
    assert page.count("<dt>Expected</dt>") == 1
