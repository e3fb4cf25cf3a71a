"""Build the merge request comment of a submission: its outcome, score, reasons and history.

Reasons may quote file names from the student's project, so every text goes through md_text or
a code span: it shows literally, with no HTML, links or @mentions.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Sequence

from pipeline.reports.markdown import cell_code, inline_code, link, md_text
from pipeline.reports.model import ReportInputError, ScoreBasis
from pipeline.reports.wording import FULL_REPORT_LINK, format_percent, score_basis_text

SUBMISSION_OUTCOMES = ("pending", "accepted", "refused", "error")
SUBMISSION_TITLE = "Submission of {assignment}"
# Keyed by a submission's state: its outcome, or "late" (accepted late) or "retrying" (an
# error of gradehook's that is to be processed again).
STATE_HEADLINES = {"accepted": "✅ Accepted", "refused": "⛔ Refused",
                   "error": "⚠️ Not processed", "pending": "⏳ Waiting for its test run",
                   "late": "✅ Accepted late", "retrying": "⏳ Not processed yet"}
STATE_WORDS = {"accepted": "accepted", "refused": "refused", "error": "not processed",
               "pending": "waiting", "late": "accepted late", "retrying": "not processed yet"}
COMMIT_LINE = "Commit {sha} · received {received}"
DEADLINE_PART = " · deadline {deadline}"
SCORE_LINE = "Score **{percent}**"
SCORE_BASIS_PART = " ({basis})"
# A decided submission whose commit a later run graded, whose score it shows: a regrade staff
# asked for, or another run (a /retest, the commit pushed to another branch, the API's or the
# command line's request).
REGRADED_LINE = "Regraded at {time}: the score above is from the latest test run of this commit."
REGRADED_CELL = "{percent} (regraded)"
GRADED_AGAIN_LINE = ("Graded again at {time}: the score above is from the latest test run of "
                     "this commit.")
GRADED_AGAIN_CELL = "{percent} (graded again)"
ALLOWANCE_LINE = "Submissions used: {used} of {limit} (only accepted ones count), {left} left"
CLOSED_ALLOWANCE_LINE = ("Submissions used: {used} of {limit} (only accepted ones count); none "
                         "left, as the deadline has passed")
ERROR_NOTE = ("This is a problem on gradehook's or the course's side, not in your code: no "
              "score was recorded. Submit the same commit again once it is fixed.")
RETRYING_NOTE = ("gradehook received this commit at {received} but could not process it yet, "
                 "because of a problem on gradehook's side, not in your code. The submission is "
                 "not lost: gradehook will process it again automatically and update this "
                 "comment.")
NOTHING_HANDED_IN = "Nothing is handed in for this assignment: {reason}."
DECIDED_THROUGH = ("Commit {sha} is already handed in through the merge request !{iid}, where "
                   "it was {state}.")
DECIDED_THROUGH_API = "Commit {sha} is already handed in, and was {state}."
HANDED_IN_ONCE = ("A commit is handed in once: this merge request hands nothing in again, and "
                  "the submission above is unchanged. To hand in something else, push a new "
                  "commit to this merge request.")
HISTORY_HEADING = "Submissions through this merge request"
HISTORY_HEADERS = ("#", "Commit", "Received", "Outcome", "Score")
NO_SCORE = "–"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
MAX_NAME_CHARS = 120
MAX_REASON_CHARS = 600
MAX_HISTORY_ROWS = 50
_MARKER = re.compile(r"<!-- gradehook:[A-Za-z0-9_.:/-]+ -->")


@dataclass(frozen=True)
class SubmissionAllowance:
    """How many of an assignment's allowed submissions a student has used (accepted ones);
    `closed`: the deadline has passed and accepts no late ones, so none is left."""

    used: int
    limit: int
    closed: bool = False

    @property
    def left(self) -> int:
        """Return how many more submissions may be accepted."""
        return 0 if self.closed else max(self.limit - self.used, 0)

    @property
    def line(self) -> str:
        """Return the comment's line counting them."""
        if self.closed:
            return CLOSED_ALLOWANCE_LINE.format(used=self.used, limit=self.limit)
        return ALLOWANCE_LINE.format(used=self.used, limit=self.limit, left=self.left)


@dataclass(frozen=True)
class SubmissionSummary:
    """The facts about one submission that its comment shows, independent of the ledger.

    The comment shows the latest submission's `allowance`; the history shows none. `retrying`:
    an error of gradehook's that is to be processed again. `graded_again_at`: when a later run
    of the commit than the one it was decided on graded it, whose score it shows; `regraded`:
    that run is a regrade staff asked for.
    """

    assignment: str
    commit_sha: str
    outcome: str
    received_at: dt.datetime
    reasons: tuple[str, ...] = ()
    late: bool = False
    deadline: dt.datetime | None = None
    score: float | None = None
    basis: ScoreBasis | None = None
    result_url: str | None = None
    allowance: SubmissionAllowance | None = None
    retrying: bool = False
    graded_again_at: dt.datetime | None = None
    regraded: bool = False

    def __post_init__(self) -> None:
        if self.outcome not in SUBMISSION_OUTCOMES:
            raise ReportInputError(f"submission outcome {self.outcome!r} is not one of "
                                   f"{', '.join(SUBMISSION_OUTCOMES)}")
        if self.retrying and self.outcome != "error":
            raise ReportInputError("only a submission in error is processed again")
        for moment in (self.received_at, self.deadline, self.graded_again_at):
            if moment is not None and (not isinstance(moment, dt.datetime)
                                       or moment.tzinfo is None):
                raise ReportInputError("submission times must be datetimes with a time zone")

    @property
    def scored(self) -> bool:
        """Tell whether a score may be shown: never for a submission not processed."""
        return self.outcome in ("accepted", "refused") and self.score is not None


def submission_comment_markdown(submissions: Sequence[SubmissionSummary], marker: str) -> str:
    """Return the comment for the submissions through one merge request; the last is the latest."""
    if not submissions:
        raise ReportInputError("a submission comment needs at least one submission")
    latest = submissions[-1]
    lines = [*_heading(latest.assignment, marker), f"**{STATE_HEADLINES[_state(latest)]}**", ""]
    commit_line = COMMIT_LINE.format(sha=inline_code(latest.commit_sha[:12], 12),
                                     received=_time(latest.received_at))
    if latest.deadline is not None:
        commit_line += DEADLINE_PART.format(deadline=_time(latest.deadline))
    lines += [commit_line, ""]
    if latest.scored:
        score_line = SCORE_LINE.format(percent=format_percent(latest.score))
        if latest.basis is not None:
            score_line += SCORE_BASIS_PART.format(basis=score_basis_text(latest.basis))
        report_link = link(FULL_REPORT_LINK, latest.result_url)
        lines += [f"{score_line} · {report_link}" if report_link else score_line, ""]
        if latest.graded_again_at is not None:
            line = REGRADED_LINE if latest.regraded else GRADED_AGAIN_LINE
            lines += [line.format(time=_time(latest.graded_again_at)), ""]
    if latest.allowance is not None:
        lines += [latest.allowance.line, ""]
    if latest.reasons:
        lines += [f"- {md_text(reason, MAX_REASON_CHARS)}" for reason in latest.reasons]
        lines.append("")
    if latest.retrying:
        lines += [md_text(RETRYING_NOTE.format(received=_time(latest.received_at)), 300), ""]
    elif latest.outcome == "error":
        lines += [md_text(ERROR_NOTE, 300), ""]
    if len(submissions) > 1:
        lines += _history(submissions)
    return "\n".join(lines)


def nothing_handed_in_markdown(assignment: str, reason: str, marker: str) -> str:
    """Return the comment of an assignment that a merge request turned out not to hand in."""
    return "\n".join([*_heading(assignment, marker),
                      md_text(NOTHING_HANDED_IN.format(reason=reason), MAX_REASON_CHARS)])


def decided_elsewhere_markdown(decided: SubmissionSummary, through: int | None,
                               history: Sequence[SubmissionSummary], marker: str) -> str:
    """Return the comment of a merge request that handed in a commit already decided through
    another (`through`, None when handed in through the API without one): where, its outcome
    and reasons, and what to do instead; `history` holds the submissions through this one."""
    state = STATE_WORDS[_state(decided)]
    sha = decided.commit_sha[:12]
    where = DECIDED_THROUGH.format(sha=sha, iid=through, state=state) if through is not None \
        else DECIDED_THROUGH_API.format(sha=sha, state=state)
    lines = [*_heading(decided.assignment, marker), md_text(where, 200), ""]
    lines += [f"- {md_text(reason, MAX_REASON_CHARS)}" for reason in decided.reasons]
    if decided.reasons:
        lines.append("")
    lines += [md_text(HANDED_IN_ONCE, 300), ""]
    if history:
        lines += _history(history)
    return "\n".join(lines)


def _heading(assignment: str, marker: str) -> list[str]:
    if not _MARKER.fullmatch(marker):
        raise ReportInputError("the marker must come from comment_marker()")
    return [marker, "### " + md_text(SUBMISSION_TITLE.format(assignment=assignment),
                                     MAX_NAME_CHARS + 20), ""]


def _state(submission: SubmissionSummary) -> str:
    if submission.outcome == "accepted" and submission.late:
        return "late"
    return "retrying" if submission.retrying else submission.outcome


def _history(submissions: Sequence[SubmissionSummary]) -> list[str]:
    shown = list(enumerate(submissions, start=1))[-MAX_HISTORY_ROWS:]
    rows = [_row([str(number), cell_code(s.commit_sha[:12], 12), _time(s.received_at),
                  STATE_WORDS[_state(s)], _score_cell(s)])
            for number, s in reversed(shown)]
    return [f"**{md_text(HISTORY_HEADING, 100)}**", "", _row(list(HISTORY_HEADERS)),
            _row(["---"] * len(HISTORY_HEADERS)), *rows, ""]


def _score_cell(submission: SubmissionSummary) -> str:
    if not submission.scored:
        return NO_SCORE
    percent = format_percent(submission.score)
    if submission.graded_again_at is None:
        return percent
    return (REGRADED_CELL if submission.regraded else GRADED_AGAIN_CELL).format(percent=percent)


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
