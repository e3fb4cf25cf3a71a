"""The submission comment: exact lines, no score for errors, history, hostile text stays text."""

from __future__ import annotations

import datetime as dt

import pytest
from markdown_it import MarkdownIt

from pipeline.reports import ReportInputError, comment_marker
from pipeline.reports.model import ScoreBasis
from pipeline.reports.submission import (SubmissionAllowance, SubmissionSummary,
                                         nothing_handed_in_markdown,
                                         submission_comment_markdown)

MARKER = comment_marker("submission:students/alice!3:week1/hello")
RECEIVED = dt.datetime(2026, 12, 1, 22, 0, 5, tzinfo=dt.timezone.utc)
DEADLINE = dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=1)))
HOSTILE = "</details><script>alert(1)</script> [x](javascript:y) @all ``"


def summary(**changes) -> SubmissionSummary:
    values = dict(assignment="week1/hello", commit_sha="0123456789abcdef" * 2 + "01234567",
                  outcome="accepted", received_at=RECEIVED, deadline=DEADLINE, score=0.75,
                  basis=ScoreBasis(tests_passed=3, tests_total=4, collections_passed=3,
                                   collections_total=4),
                  result_url="https://grader.example/results/r1")
    return SubmissionSummary(**{**values, **changes})


def test_an_accepted_submission_shows_its_score_commit_and_deadline():
    body = submission_comment_markdown([summary()], MARKER)
    assert body.splitlines() == [
        MARKER, "### Submission of week1\\/hello", "", "**✅ Accepted**", "",
        "Commit ` 0123456789ab ` · received 2026-12-01 22:00:05 UTC · deadline 2026-12-01 "
        "22:59:00 UTC", "",
        "Score **75%** (3/4 tests passed) · [Full report](https://grader.example/results/r1)"]


def test_a_score_of_collections_holding_several_tests_names_both_counts():
    body = submission_comment_markdown([summary(score=1 / 3, basis=ScoreBasis(
        tests_passed=1, tests_total=5, collections_passed=1, collections_total=3))], MARKER)

    assert "Score **33%** (1 of 3 collections passed, 1/5 tests passed) · [Full report](" \
        "https://grader.example/results/r1)" in body.splitlines()


def test_a_score_counting_hidden_tests_says_how_many_are_hidden():
    body = submission_comment_markdown([summary(score=0.8, basis=ScoreBasis(
        tests_passed=12, tests_total=14, collections_passed=4, collections_total=5,
        tests_hidden=4))], MARKER)

    assert "Score **80%** (4 of 5 collections passed, 12/14 tests passed, 4 of the 14 hidden) · " \
        "[Full report](https://grader.example/results/r1)" in body.splitlines()


def test_the_allowed_submissions_used_and_left_are_counted():
    accepted = submission_comment_markdown(
        [summary(allowance=SubmissionAllowance(used=2, limit=3))], MARKER)
    refused = submission_comment_markdown(
        [summary(outcome="refused", reasons=("over the limit",),
                 allowance=SubmissionAllowance(used=3, limit=3))], MARKER)

    assert accepted.splitlines()[7:] == [
        "Score **75%** (3/4 tests passed) · [Full report](https://grader.example/results/r1)", "",
        "Submissions used: 2 of 3 (only accepted ones count), 1 left"]
    assert "Submissions used: 3 of 3 (only accepted ones count), 0 left" in refused
    assert "Submissions used" not in submission_comment_markdown([summary()], MARKER)


def test_a_closed_allowance_says_none_is_left_after_the_deadline():
    closed = submission_comment_markdown(
        [summary(outcome="refused", late=True, reasons=("too late",),
                 allowance=SubmissionAllowance(used=1, limit=3, closed=True))], MARKER)

    assert "Submissions used: 1 of 3 (only accepted ones count); none left, as the deadline " \
        "has passed" in closed.splitlines()


def test_a_refusal_lists_each_reason_and_an_error_never_shows_a_score():
    refused = submission_comment_markdown(
        [summary(outcome="refused", late=True, reasons=("too late", "over the limit"))], MARKER)
    assert "**⛔ Refused**" in refused and "\n- too late\n- over the limit\n" in refused
    errored = submission_comment_markdown(
        [summary(outcome="error", reasons=("the run ended in error",))], MARKER)
    assert "**⚠️ Not processed**" in errored and "Score" not in errored
    assert "no score was recorded" in errored


def test_an_error_to_be_processed_again_says_when_it_was_received_and_that_it_is_not_lost():
    body = submission_comment_markdown(
        [summary(outcome="error", retrying=True, deadline=None, score=None,
                 reasons=("gave up after 5 attempts: GitLab answered 503",))], MARKER)
    assert body.replace("\\", "").splitlines()[3:] == [
        "**⏳ Not processed yet**", "",
        "Commit ` 0123456789ab ` · received 2026-12-01 22:00:05 UTC", "",
        "- gave up after 5 attempts: GitLab answered 503", "",
        "gradehook received this commit at 2026-12-01 22:00:05 UTC but could not process it "
        "yet, because of a problem on gradehook's side, not in your code. The submission is not "
        "lost: gradehook will process it again automatically and update this comment."]
    history = submission_comment_markdown(
        [summary(outcome="error", retrying=True, score=None), summary()], MARKER)
    assert "| 1 | ` 0123456789ab ` | 2026-12-01 22:00:05 UTC | not processed yet | – |" in history


def test_an_assignment_not_handed_in_after_all_says_why():
    body = nothing_handed_in_markdown("week1/hello", "the merge request does not change "
                                      "week1/hello", MARKER)
    assert body.splitlines() == [
        MARKER, "### Submission of week1\\/hello", "",
        "Nothing is handed in for this assignment\\: the merge request does not change "
        "week1\\/hello\\."]


def test_a_late_acceptance_says_so():
    assert "**✅ Accepted late**" in submission_comment_markdown([summary(late=True)], MARKER)


def test_the_history_lists_every_submission_newest_first():
    first = summary(commit_sha="a" * 40, outcome="refused", score=0.0, reasons=("late",))
    second = summary(commit_sha="b" * 40, outcome="error", score=None)
    third = summary(commit_sha="c" * 40, late=True, score=1.0)
    body = submission_comment_markdown([first, second, third], MARKER)
    table = body.split("**Submissions through this merge request**")[1].strip().splitlines()
    assert table == ["| # | Commit | Received | Outcome | Score |",
                     "| --- | --- | --- | --- | --- |",
                     "| 3 | ` cccccccccccc ` | 2026-12-01 22:00:05 UTC | accepted late | 100% |",
                     "| 2 | ` bbbbbbbbbbbb ` | 2026-12-01 22:00:05 UTC | not processed | – |",
                     "| 1 | ` aaaaaaaaaaaa ` | 2026-12-01 22:00:05 UTC | refused | 0% |"]


def test_reasons_quoting_student_file_names_render_as_plain_text():
    body = submission_comment_markdown(
        [summary(outcome="refused", reasons=(f"changes outside: {HOSTILE}",))], MARKER)
    html = MarkdownIt("commonmark").enable("table").render(body)
    assert "<script>" not in html and 'href="javascript' not in html
    assert html.count("<a ") == 1  # only the link to the full report


@pytest.mark.parametrize("call", [
    lambda: submission_comment_markdown([], MARKER),
    lambda: submission_comment_markdown([summary()], "<!-- not ours -->"),
    lambda: summary(outcome="graded"),
    lambda: summary(outcome="accepted", retrying=True),
    lambda: nothing_handed_in_markdown("week1/hello", "no change", "<!-- not ours -->"),
    lambda: summary(received_at=dt.datetime(2026, 1, 1))])
def test_bad_input_is_a_report_input_error(call):
    with pytest.raises(ReportInputError):
        call()
