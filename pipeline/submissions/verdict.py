"""Judge a submission from its facts and its assignment's rules: a pure decision, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline.reports.wording import counted
from pipeline.submissions.rules import SubmissionRules

ACCEPTED, REFUSED, ERROR, PENDING = "accepted", "refused", "error", "pending"
OUTCOMES = (PENDING, ACCEPTED, REFUSED, ERROR)
MAX_LISTED_PATHS = 10
# The ledger keeps a refusal's reasons as one text, joined by this: no reason may hold it.
REASON_SEPARATOR = "; "

LATE_REFUSED_START = "handed in after the deadline of "
LATE_REFUSED = (LATE_REFUSED_START + "{deadline}: gradehook received this commit at {counted}, "
                "and this assignment accepts no late submissions")
LATE_ACCEPTED = ("accepted late: gradehook received this commit at {counted}, after the "
                 "deadline of {deadline}")
OVER_SUBMISSIONS_START = "the limit of "
OVER_SUBMISSIONS = (OVER_SUBMISSIONS_START
                    + "{limit} accepted {submissions} of {assignment} is reached")
SUBMISSION_NOUNS = ("submission", "submissions")
OVER_TEST_RUNS = ("this commit is test run {number} of {assignment}, and only the first "
                  "{limit} {test_runs} may be handed in")
TEST_RUN_NOUNS = ("test run", "test runs")
OUTSIDE_SCOPE = "the submission changes files outside {assignment}/: {paths}"
MORE_PATHS = " and {count} more"
NOT_PRESENT = "{assignment} does not exist in this commit"
MERGE_REQUEST_MERGED = ("the submission merge request !{iid} was already merged: the "
                        "submission of {assignment} is final")
MERGE_REQUEST_CLOSED = ("the merge request !{iid} was closed before it was processed: reopen it, "
                        "or open a new merge request with this commit into {branch}, to hand "
                        "this commit in")
MERGE_REQUEST_RETARGETED = ("the merge request !{iid} now targets {target}, not the submission "
                            "branch {branch}: point it back at {branch}, or open a new merge "
                            "request with this commit into {branch}, to hand this commit in")
NOT_FAST_FORWARD = ("the branch {branch} is at commit {head}, which is not an ancestor of this "
                    "commit, and gradehook only moves it forward")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


@dataclass(frozen=True)
class SubmissionFacts:
    """What gradehook found out about one submission before judging it.

    `test_run_number` counts the distinct commits of the assignment graded up to this one;
    `accepted_before` counts the student's other accepted submissions of the assignment.
    `blocked` holds refusals found on GitLab (a merged submission merge request, a branch that
    cannot move forward); `withdrawn` those of a student's merge request closed or pointed at
    another branch, which reopening it (or pointing it back) undoes.
    """

    assignment: str
    counted_at: dt.datetime
    present: bool
    outside_paths: tuple[str, ...]
    test_run_number: int
    accepted_before: int
    blocked: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The outcome of judging: accepted or refused, every reason, and whether it was late.

    `withdrawn`: refused only because the merge request was closed or pointed elsewhere.
    """

    outcome: str
    reasons: tuple[str, ...]
    late: bool
    withdrawn: bool = False

    @property
    def reason(self) -> str | None:
        """Return the reasons as one sentence, or None when there are none."""
        return REASON_SEPARATOR.join(self.reasons) or None


def judge(facts: SubmissionFacts, rules: SubmissionRules) -> Verdict:
    """Decide a submission: every failed check is a reason to refuse; lateness is always noted."""
    assignment = facts.assignment
    refusals = [*facts.blocked, *facts.withdrawn]
    if not facts.present:
        refusals.append(NOT_PRESENT.format(assignment=assignment))
    if rules.scope_only and facts.outside_paths:
        refusals.append(OUTSIDE_SCOPE.format(assignment=assignment,
                                             paths=_listed(facts.outside_paths)))
    if rules.max_test_runs is not None and facts.test_run_number > rules.max_test_runs:
        refusals.append(OVER_TEST_RUNS.format(
            number=facts.test_run_number, assignment=assignment, limit=rules.max_test_runs,
            test_runs=counted(rules.max_test_runs, TEST_RUN_NOUNS)))
    if rules.max_submissions is not None and facts.accepted_before >= rules.max_submissions:
        refusals.append(OVER_SUBMISSIONS.format(
            limit=rules.max_submissions, assignment=assignment,
            submissions=counted(rules.max_submissions, SUBMISSION_NOUNS)))
    late = rules.deadline is not None and facts.counted_at > rules.deadline
    notes = []
    if late:
        times = {"deadline": format_time(rules.deadline), "counted": format_time(facts.counted_at)}
        if rules.accept_late:
            notes.append(LATE_ACCEPTED.format(**times))
        else:
            refusals.insert(0, LATE_REFUSED.format(**times))
    if refusals:
        withdrawn = all(reason in facts.withdrawn for reason in refusals)
        return Verdict(REFUSED, tuple(refusals), late, withdrawn)
    return Verdict(ACCEPTED, tuple(notes), late)


def recorded_reasons(outcome: str, reason: str | None) -> tuple[str, ...]:
    """Return a decision's reasons as the ledger keeps them: a verdict's joined in one text, or
    an error's one (whose own text may hold the separator: a git or sandbox message, say)."""
    if not reason:
        return ()
    if outcome == ERROR:
        return (reason,)
    return tuple(reason.split(REASON_SEPARATOR))


def refused_as_late(outcome: str, reason: str | None) -> bool:
    """Tell whether a decision (its outcome and recorded reason) refused a hand-in for coming
    after a deadline that accepts no late ones (judge puts that reason first): nothing more
    can be accepted."""
    reasons = recorded_reasons(outcome, reason)
    return outcome == REFUSED and bool(reasons) and reasons[0].startswith(LATE_REFUSED_START)


def refused_over_limit(outcome: str, reason: str | None) -> bool:
    """Tell whether a decision (its outcome and recorded reason) refused a hand-in for the
    limit of accepted submissions."""
    return outcome == REFUSED and any(each.startswith(OVER_SUBMISSIONS_START)
                                      for each in recorded_reasons(outcome, reason))


def format_time(moment: dt.datetime) -> str:
    """Return a moment as students read it in comments, in UTC."""
    return moment.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def _listed(paths: tuple[str, ...]) -> str:
    shown = ", ".join(paths[:MAX_LISTED_PATHS])
    if len(paths) > MAX_LISTED_PATHS:
        shown += MORE_PATHS.format(count=len(paths) - MAX_LISTED_PATHS)
    return shown
