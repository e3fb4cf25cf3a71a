"""Build gradehook's one merge request comment: every assignment's outcome, tests and failures.

Text that students or their code produced (values, messages, details) only ever appears inside
code spans or fenced code blocks, so it shows literally: no HTML, no links, no @mentions.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from pipeline.reports.failures import CrashLocation, describe_failure
from pipeline.reports.markdown import (cell_code, code_block, html_inline, inline_code, link,
                                       md_text)
from pipeline.reports.model import (CollectionView, ReportInputError, ReportView, RunSummary,
                                    TestView, read_report)
from pipeline.reports.wording import (COLLECTION_HEADERS, COMMENT_COMMIT_LINE, COMMENT_TITLE,
                                      COMMENT_ASSIGNMENT_HEADING, COMMENT_RESULT_HEADING,
                                      CRASH_IN_MESSAGE, CRASH_LOCATION, DETAILS_SUMMARY,
                                      FAILURE_HEADERS, FAILURES_HEADING, FULL_REPORT_LINK,
                                      HIDDEN_CELL, HIDDEN_NOTE, MORE_DETAILS, MORE_FAILURES,
                                      MORE_PASSED, PASSED_SUMMARY, RESULT_ICONS, SHORTENED_NOTE,
                                      STATUS_ICONS, explanation_text, is_scored,
                                      outcome_text)

# GitLab takes up to 1,000,000 characters (spec/gitlab.md §6); a readable comment is far shorter.
# Sections share 90 % of it; the rest covers headings and the closing lines of each section.
COMMENT_MAX_CHARS = 100_000
MIN_SECTION_CHARS = 4_000
MAX_NAME_CHARS = 120
MAX_VALUE_CHARS = 120
MAX_PROBLEM_CHARS = 200
MAX_DETAIL_BLOCKS = 5
DETAIL_MAX_LINES = 25
DETAIL_MAX_CHARS = 2_000
MAX_PASSED_LISTED = 100
MARKER_PREFIX = "gradehook:"
_MARKER = re.compile(r"<!-- gradehook:[A-Za-z0-9_.:/-]+ -->")
_MARKER_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]")
_DASH_RUNS = re.compile(r"-{2,}")  # "--" may not appear inside an HTML comment

Run = tuple[RunSummary, Mapping[str, Any] | None]


def comment_marker(key: str) -> str:
    """Return the hidden first line that identifies gradehook's comment, e.g. for an MR key."""
    if not key:
        raise ReportInputError("a comment marker needs a key")
    safe_key = _DASH_RUNS.sub("-", _MARKER_KEY_UNSAFE.sub("_", key))
    return f"<!-- {MARKER_PREFIX}{safe_key} -->"


def mr_comment_markdown(runs_with_reports: Iterable[Run], marker: str) -> str:
    """Return the comment for one merge request covering its assignments' latest runs."""
    if not _MARKER.fullmatch(marker):
        raise ReportInputError("the marker must come from comment_marker()")
    entries = sorted(((run, read_report(report)) for run, report in runs_with_reports),
                     key=lambda entry: entry[0].assignment)
    if not entries:
        raise ReportInputError("a comment needs at least one run")
    header = [marker, f"### {COMMENT_TITLE}", ""]
    if len(entries) > 1:
        header += _overview(entries)
    budget = max(COMMENT_MAX_CHARS * 9 // 10 // len(entries), MIN_SECTION_CHARS)
    full = "\n".join(header + [_section(run, view, budget) for run, view in entries])
    if len(full) <= COMMENT_MAX_CHARS:
        return full
    compact = [_section(run, view, budget=0) for run, view in entries]
    return "\n".join(header + compact + [f"_{md_text(SHORTENED_NOTE, 200)}_", ""])


def _overview(entries: Sequence[tuple[RunSummary, ReportView | None]]) -> list[str]:
    rows = [[STATUS_ICONS[run.status], md_text(run.assignment, MAX_NAME_CHARS),
             md_text(outcome_text(run, view), 300)] for run, view in entries]
    return _table(["", COMMENT_ASSIGNMENT_HEADING, COMMENT_RESULT_HEADING], rows) + [""]


def _section(run: RunSummary, view: ReportView | None, budget: int) -> str:
    """Return one assignment's part; `budget` (characters) limits the per-test listings."""
    lines = [f"#### {STATUS_ICONS[run.status]} {md_text(run.assignment, MAX_NAME_CHARS)}", "",
             f"**{md_text(outcome_text(run, view), 400)}**", "", _commit_line(run), ""]
    explanation = explanation_text(run, view)
    if explanation:
        lines += [md_text(explanation, 400), ""]
    if budget == 0 or not is_scored(run, view):
        return "\n".join(lines)
    lines += _collections_table(view.collections)
    if any(c.hidden for c in view.collections):
        lines += [f"_{md_text(HIDDEN_NOTE, 200)}_", ""]
    visible = [c for c in view.collections if not c.hidden]
    used = sum(len(line) + 1 for line in lines)
    lines += _failures(visible, budget - used)
    used = sum(len(line) + 1 for line in lines)
    lines += _passed(visible, budget - used)
    return "\n".join(lines)


def _commit_line(run: RunSummary) -> str:
    line = COMMENT_COMMIT_LINE.format(sha=inline_code(run.short_sha, 12),
                                      ref=inline_code(run.ref or "", MAX_NAME_CHARS))
    report_link = link(FULL_REPORT_LINK, run.result_url)
    return f"{line} · {report_link}" if report_link else line


def _collections_table(collections: Sequence[CollectionView]) -> list[str]:
    if not collections:
        return []
    rows = [[RESULT_ICONS[c.result], md_text(c.name, MAX_NAME_CHARS), md_text(c.type, 40),
             HIDDEN_CELL if c.hidden else f"{c.passed_count}/{len(c.tests)}"]
            for c in collections]
    return _table(list(COLLECTION_HEADERS), rows) + [""]


def _failures(collections: Sequence[CollectionView], budget: int) -> list[str]:
    """List the tests that did not pass in a table, then a few with their full details."""
    failing = [(c, t) for c in collections for t in c.tests if t.result != "PASSED"]
    if not failing:
        return []
    lines = [f"**{md_text(FAILURES_HEADING, 100)}**", ""] + _table(list(FAILURE_HEADERS), [])
    used = sum(len(line) + 1 for line in lines)
    shown = 0
    for collection, test in failing:
        row = _failure_row(collection, test)
        if used + len(row) + 1 > budget:
            break
        lines.append(row)
        used += len(row) + 1
        shown += 1
    if shown < len(failing):
        lines.append("")
        lines.append(md_text(MORE_FAILURES.format(count=len(failing) - shown), 200))
    lines.append("")
    lines += _detail_blocks(failing[:shown], budget - used)
    return lines


def _failure_row(collection: CollectionView, test: TestView) -> str:
    failure = describe_failure(test)
    name = f"{cell_code(test.name, MAX_NAME_CHARS)} ({md_text(collection.name, MAX_NAME_CHARS)})"
    expected = cell_code(failure.expected, MAX_VALUE_CHARS) if failure.expected is not None \
        else ""
    actual = cell_code(failure.actual, MAX_VALUE_CHARS) if failure.actual is not None else ""
    problem = cell_code(failure.problem, MAX_PROBLEM_CHARS) if failure.problem else ""
    if failure.crash is not None:
        problem += " " + _crash_cell_part(failure.crash)
    return _row([RESULT_ICONS[test.result], name, expected, actual, problem])


def _crash_cell_part(crash: CrashLocation) -> str:
    """Return where the program raised, its code in a code span, safe inside a table cell."""
    place = md_text(CRASH_IN_MESSAGE.format(place=crash.place), MAX_NAME_CHARS)
    if not crash.code:
        return place
    return CRASH_LOCATION.format(place=place, code=cell_code(crash.code, MAX_VALUE_CHARS))


def _detail_blocks(failing: Sequence[tuple[CollectionView, TestView]], budget: int) -> list[str]:
    """Show the full details of the first failures that have more than one line of them."""
    with_more = [(c, t) for c, t in failing if describe_failure(t).more]
    lines: list[str] = []
    used = shown = 0
    for collection, test in with_more[:MAX_DETAIL_BLOCKS]:
        summary = html_inline(DETAILS_SUMMARY.format(name=f"{collection.name} › {test.name}"),
                              300)
        block = [f"<details><summary>{summary}</summary>", "",
                 code_block(test.details, DETAIL_MAX_LINES, DETAIL_MAX_CHARS), "", "</details>",
                 ""]
        size = sum(len(line) + 1 for line in block)
        if used + size > budget:
            break
        lines += block
        used += size
        shown += 1
    if shown < len(with_more):
        lines += [md_text(MORE_DETAILS, 200), ""]
    return lines


def _passed(collections: Sequence[CollectionView], budget: int) -> list[str]:
    """List the passed tests inside a collapsed block."""
    passed = [(c, t) for c in collections for t in c.tests if t.result == "PASSED"]
    if not passed:
        return []
    summary = html_inline(PASSED_SUMMARY.format(count=len(passed)), 100)
    lines = [f"<details><summary>{summary}</summary>", ""]
    used = sum(len(line) + 1 for line in lines) + 20
    shown = 0
    for collection, test in passed[:MAX_PASSED_LISTED]:
        item = (f"- {inline_code(test.name, MAX_NAME_CHARS)} "
                f"({md_text(collection.name, MAX_NAME_CHARS)})")
        if used + len(item) + 1 > budget:
            break
        lines.append(item)
        used += len(item) + 1
        shown += 1
    if shown < len(passed):
        lines.append(f"- {md_text(MORE_PASSED.format(count=len(passed) - shown), 100)}")
    return lines + ["", "</details>", ""]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(headers), _row(["---"] * len(headers))] + [_row(row) for row in rows]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
