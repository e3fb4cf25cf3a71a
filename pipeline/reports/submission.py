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
OUTCOME_HEADLINES = {"accepted": "✅ Accepted", "refused": "⛔ Refused",
                     "error": "⚠️ Not processed", "pending": "⏳ Waiting for its test run"}
LATE_HEADLINE = "✅ Accepted late"
OUTCOME_WORDS = {"accepted": "accepted", "refused": "refused", "error": "not processed",
                 "pending": "waiting"}
LATE_WORD = "accepted late"
COMMIT_LINE = "Commit {sha} · received {received}"
DEADLINE_PART = " · deadline {deadline}"
SCORE_LINE = "Score **{percent}**"
SCORE_BASIS_PART = " ({basis})"
ALLOWANCE_LINE = "Submissions used: {used} of {limit} (only accepted ones count), {left} left"
ERROR_NOTE = ("This is a problem on gradehook's or the course's side, not in your code: no "
              "score was recorded. Submit the same commit again once it is fixed.")
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
    """How many of an assignment's allowed submissions a student has used (accepted ones)."""

    used: int
    limit: int

    @property
    def left(self) -> int:
        """Return how many more submissions may be accepted."""
        return max(self.limit - self.used, 0)


@dataclass(frozen=True)
class SubmissionSummary:
    """The facts about one submission that its comment shows, independent of the ledger.

    The comment shows the latest submission's `allowance`; the history shows none.
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

    def __post_init__(self) -> None:
        if self.outcome not in SUBMISSION_OUTCOMES:
            raise ReportInputError(f"submission outcome {self.outcome!r} is not one of "
                                   f"{', '.join(SUBMISSION_OUTCOMES)}")
        for moment in (self.received_at, self.deadline):
            if moment is not None and (not isinstance(moment, dt.datetime)
                                       or moment.tzinfo is None):
                raise ReportInputError("submission times must be datetimes with a time zone")

    @property
    def scored(self) -> bool:
        """Tell whether a score may be shown: never for a submission not processed."""
        return self.outcome in ("accepted", "refused") and self.score is not None


def submission_comment_markdown(submissions: Sequence[SubmissionSummary], marker: str) -> str:
    """Return the comment for the submissions through one merge request; the last is the latest."""
    if not _MARKER.fullmatch(marker):
        raise ReportInputError("the marker must come from comment_marker()")
    if not submissions:
        raise ReportInputError("a submission comment needs at least one submission")
    latest = submissions[-1]
    lines = [marker, "### " + md_text(SUBMISSION_TITLE.format(assignment=latest.assignment),
                                      MAX_NAME_CHARS + 20), "", f"**{_headline(latest)}**", ""]
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
    if latest.allowance is not None:
        allowance = latest.allowance
        lines += [ALLOWANCE_LINE.format(used=allowance.used, limit=allowance.limit,
                                        left=allowance.left), ""]
    if latest.reasons:
        lines += [f"- {md_text(reason, MAX_REASON_CHARS)}" for reason in latest.reasons]
        lines.append("")
    if latest.outcome == "error":
        lines += [md_text(ERROR_NOTE, 300), ""]
    if len(submissions) > 1:
        lines += _history(submissions)
    return "\n".join(lines)


def _headline(submission: SubmissionSummary) -> str:
    if submission.outcome == "accepted" and submission.late:
        return LATE_HEADLINE
    return OUTCOME_HEADLINES[submission.outcome]


def _history(submissions: Sequence[SubmissionSummary]) -> list[str]:
    shown = list(enumerate(submissions, start=1))[-MAX_HISTORY_ROWS:]
    rows = [_row([str(number), cell_code(s.commit_sha[:12], 12), _time(s.received_at),
                  LATE_WORD if s.outcome == "accepted" and s.late else OUTCOME_WORDS[s.outcome],
                  format_percent(s.score) if s.scored else NO_SCORE])
            for number, s in reversed(shown)]
    return [f"**{md_text(HISTORY_HEADING, 100)}**", "", _row(list(HISTORY_HEADERS)),
            _row(["---"] * len(HISTORY_HEADERS)), *rows, ""]


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
