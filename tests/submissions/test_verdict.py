"""Judging a submission from its facts and rules: every check, lateness, several reasons."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.submissions.rules import SubmissionRules
from pipeline.submissions.verdict import (MERGE_REQUEST_CLOSED, MERGE_REQUEST_RETARGETED,
                                          NOT_FAST_FORWARD, REASON_SEPARATOR, SubmissionFacts,
                                          Verdict, judge)

DEADLINE = dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=1)))
IN_TIME = DEADLINE - dt.timedelta(seconds=1)
LATE = DEADLINE + dt.timedelta(seconds=1)


def facts(**changes) -> SubmissionFacts:
    values = dict(assignment="week1/hello", counted_at=IN_TIME, present=True, outside_paths=(),
                  test_run_number=1, accepted_before=0)
    return SubmissionFacts(**{**values, **changes})


def test_a_clean_submission_in_time_is_accepted():
    assert judge(facts(), SubmissionRules(deadline=DEADLINE, max_submissions=1,
                                          max_test_runs=1)) == Verdict("accepted", (), False)


def test_the_deadline_itself_is_still_in_time():
    assert judge(facts(counted_at=DEADLINE), SubmissionRules(deadline=DEADLINE)).late is False


@pytest.mark.parametrize("accept_late, outcome, reason", [
    (True, "accepted", "accepted late: gradehook received this commit at 2026-12-01 "
                       "22:59:01 UTC, after the deadline of 2026-12-01 22:59:00 UTC"),
    (False, "refused", "handed in after the deadline of 2026-12-01 22:59:00 UTC: gradehook "
                       "received this commit at 2026-12-01 22:59:01 UTC, and this assignment "
                       "accepts no late submissions")])
def test_late_is_always_marked_and_accepted_or_refused_by_the_rules(
        accept_late, outcome, reason):
    verdict = judge(facts(counted_at=LATE), SubmissionRules(deadline=DEADLINE,
                                                            accept_late=accept_late))
    assert verdict == Verdict(outcome, (reason,), True)


def test_limits_refuse_only_beyond_them():
    rules = SubmissionRules(max_submissions=2, max_test_runs=3)
    assert judge(facts(accepted_before=1, test_run_number=3), rules).outcome == "accepted"
    assert judge(facts(accepted_before=2), rules).reasons == (
        "the limit of 2 accepted submissions of week1/hello is reached",)
    assert judge(facts(test_run_number=4), rules).reasons == (
        "this commit is test run 4 of week1/hello, and only the first 3 test runs may be handed "
        "in",)


def test_a_limit_of_one_is_worded_in_the_singular():
    rules = SubmissionRules(max_submissions=1, max_test_runs=1)
    assert judge(facts(accepted_before=1, test_run_number=2), rules).reasons == (
        "this commit is test run 2 of week1/hello, and only the first 1 test run may be handed in",
        "the limit of 1 accepted submission of week1/hello is reached")


def test_a_limit_of_zero_refuses_everything():
    assert judge(facts(), SubmissionRules(max_submissions=0)).outcome == "refused"


def test_scope_lists_at_most_ten_paths_and_can_be_switched_off():
    paths = tuple(f"other/{n:02d}.py" for n in range(12))
    refused = judge(facts(outside_paths=paths), SubmissionRules())
    assert refused.reasons == ("the submission changes files outside week1/hello/: "
                               + ", ".join(paths[:10]) + " and 2 more",)
    assert judge(facts(outside_paths=paths), SubmissionRules(scope_only=False)).outcome == \
        "accepted"


def test_a_refusal_for_the_merge_requests_state_alone_is_a_withdrawal():
    closed = ("the merge request !3 was closed before it was processed",)
    alone = judge(facts(withdrawn=closed), SubmissionRules(deadline=DEADLINE))
    late_too = judge(facts(withdrawn=closed, counted_at=LATE), SubmissionRules(deadline=DEADLINE))
    assert (alone.outcome, alone.reasons, alone.withdrawn) == ("refused", closed, True)
    assert (late_too.outcome, late_too.withdrawn) == ("refused", False)
    assert judge(facts(), SubmissionRules()).withdrawn is False


def test_every_failed_check_is_a_reason_lateness_first():
    verdict = judge(facts(counted_at=LATE, present=False, accepted_before=1,
                          withdrawn=("the merge request !3 was closed before it was processed",)),
                    SubmissionRules(deadline=DEADLINE, max_submissions=1))
    assert verdict.outcome == "refused" and verdict.late is True
    assert [reason.split(" ")[0:3] for reason in verdict.reasons] == [
        ["handed", "in", "after"], ["the", "merge", "request"], ["week1/hello", "does", "not"],
        ["the", "limit", "of"]]
    assert verdict.reason == "; ".join(verdict.reasons)


def test_no_reason_holds_the_separator_the_ledger_joins_reasons_by():
    """A reason holding it would be read back from the ledger as two, and shown so."""
    every_check = judge(facts(counted_at=LATE, present=False, accepted_before=1,
                              test_run_number=2, outside_paths=("other.py",),
                              blocked=(NOT_FAST_FORWARD.format(branch="submissions",
                                                               head="0" * 12),),
                              withdrawn=(MERGE_REQUEST_CLOSED.format(iid=3, branch="subs"),
                                         MERGE_REQUEST_RETARGETED.format(
                                             iid=3, target="main", branch="subs"))),
                        SubmissionRules(deadline=DEADLINE, max_submissions=1, max_test_runs=1))
    assert len(every_check.reasons) == 8
    assert every_check.reason.split(REASON_SEPARATOR) == list(every_check.reasons)
