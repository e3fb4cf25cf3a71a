"""Build gradehook's one merge request comment: every assignment's outcome, tests and failures.

Text that students or their code produced (values, messages, details) appears inside code spans
or fenced code blocks, so it shows literally: no HTML, no links, no @mentions. The one exception
is the file name in where a program raised ("at lib/helper.py, line 2"), written as Markdown text
with every punctuation character backslash-escaped (md_text), which GitLab shows literally too.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable, Mapping, Sequence

from pipeline.reports.failures import (CrashLocation, FailureView, ListedFailure,
                                       describe_failure, listed_failures)
from pipeline.reports.markdown import (cell_code, code_block, html_inline, inline_code, link,
                                       md_text, value_cell_code)
from pipeline.reports.model import (CollectionView, ReportInputError, ReportView, RunSummary,
                                    TestView, read_report)
from pipeline.reports.wording import (COLLECTION_HEADERS, COMMENT_COMMIT_LINE, COMMENT_TITLE,
                                      COMMENT_ASSIGNMENT_HEADING, COMMENT_RESULT_HEADING,
                                      CRASH_LOCATION, DETAILS_SUMMARY,
                                      FAILURE_HEADERS, FAILURES_HEADING, FULL_REPORT_LINK,
                                      HIDDEN_CELL, HIDDEN_NOTE, MORE_DETAILS, MORE_FAILURES,
                                      MORE_PASSED, NOT_LISTED, PASSED_SUMMARY, RESULT_ICONS,
                                      SHORTENED_NOTE, STATUS_ICONS, TEST_NOUNS, counted,
                                      explanation_text, is_scored, outcome_text)

# GitLab takes up to 1,000,000 characters (spec/gitlab.md §6); a readable comment is far shorter.
# Each section's fixed part (outcome, collections) is laid out first; what is left is shared among
# the sections' lists of tests, a section needing less than its share leaving the rest to others.
COMMENT_MAX_CHARS = 100_000
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
    fixed = [_summary(run, view) + _collections_part(run, view) for run, view in entries]
    listed = [_visible(run, view) for run, view in entries]
    # The comment is its lines joined by newlines: counting each line's newline allows one more.
    room = COMMENT_MAX_CHARS + 1 - _size(header) - sum(_size(part) for part in fixed)
    if room >= 0:
        in_full = [_listing(collections, room) for collections in listed]
        shares = _shares([_size(listing) for listing in in_full], room)
        lines = list(header)
        for part, collections, listing, share in zip(fixed, listed, in_full, shares):
            lines += part + (listing if _size(listing) <= share else _listing(collections, share))
        full = "\n".join(lines)
        if len(full) <= COMMENT_MAX_CHARS:
            return full
    compact = [line for run, view in entries for line in _summary(run, view)]
    return "\n".join(header + compact + [f"_{md_text(SHORTENED_NOTE, 200)}_", ""])


def _shares(demands: Sequence[int], room: int) -> list[int]:
    """Share room fairly: the smallest demands are met first, the rest split what they leave."""
    shares = [0] * len(demands)
    left = room
    order = sorted(range(len(demands)), key=lambda index: demands[index])
    for position, index in enumerate(order):
        shares[index] = min(demands[index], left // (len(order) - position))
        left -= shares[index]
    return shares


def _size(lines: Sequence[str]) -> int:
    """Return the characters lines take in the comment, each with its newline."""
    return sum(len(line) + 1 for line in lines)


def _overview(entries: Sequence[tuple[RunSummary, ReportView | None]]) -> list[str]:
    rows = [[STATUS_ICONS[run.status], md_text(run.assignment, MAX_NAME_CHARS),
             md_text(outcome_text(run, view), 300)] for run, view in entries]
    return _table(["", COMMENT_ASSIGNMENT_HEADING, COMMENT_RESULT_HEADING], rows) + [""]


def _summary(run: RunSummary, view: ReportView | None) -> list[str]:
    """Return the start of an assignment's section: its heading, outcome and commit."""
    lines = [f"#### {STATUS_ICONS[run.status]} {md_text(run.assignment, MAX_NAME_CHARS)}", "",
             f"**{md_text(outcome_text(run, view), 400)}**", "", _commit_line(run), ""]
    explanation = explanation_text(run, view)
    if explanation:
        lines += [md_text(explanation, 400), ""]
    return lines


def _collections_part(run: RunSummary, view: ReportView | None) -> list[str]:
    """Return a scored section's collections table and the note on hidden collections."""
    if not is_scored(run, view):
        return []
    lines = _collections_table(view.collections)
    if any(c.hidden for c in view.collections):
        lines += [f"_{md_text(HIDDEN_NOTE, 200)}_", ""]
    return lines


def _visible(run: RunSummary, view: ReportView | None) -> list[CollectionView]:
    """Return the collections whose tests a section lists: none unless the run was scored."""
    if not is_scored(run, view):
        return []
    return [c for c in view.collections if not c.hidden]


def _listing(collections: Sequence[CollectionView], budget: int) -> list[str]:
    """List the tests that did not pass, then those that passed, in at most `budget` characters.

    Passed tests are named only when every test that did not pass is.
    """
    unlisted = _passed_block(collections, [md_text(NOT_LISTED, 200)])
    failures, complete = _failures(collections, budget - _size(unlisted))
    if complete:
        return failures + _passed(collections, budget - _size(failures))
    return failures + (unlisted if _size(failures + unlisted) <= budget else [])


def _commit_line(run: RunSummary) -> str:
    line = COMMENT_COMMIT_LINE.format(sha=inline_code(run.short_sha, 12),
                                      ref=inline_code(run.ref or "", MAX_NAME_CHARS))
    report_link = link(FULL_REPORT_LINK, run.result_url)
    return f"{line} · {report_link}" if report_link else line


def _collections_table(collections: Sequence[CollectionView]) -> list[str]:
    """Tabulate the collections; with one test each, the lists of tests already name the visible
    ones, so only the hidden ones remain."""
    if all(len(c.tests) == 1 for c in collections if not c.hidden):
        collections = [c for c in collections if c.hidden]
    if not collections:
        return []
    rows = [[RESULT_ICONS[c.result], md_text(c.name, MAX_NAME_CHARS), md_text(c.type, 40),
             HIDDEN_CELL if c.hidden else f"{c.passed_count}/{len(c.tests)}"]
            for c in collections]
    return _table(list(COLLECTION_HEADERS), rows) + [""]


def _failures(collections: Sequence[CollectionView], budget: int) -> tuple[list[str], bool]:
    """List the tests that did not pass in a table, then a few with their full details; tell
    whether the table has them all."""
    failing = listed_failures(collections)
    if not failing:
        return [], True
    heading = [f"**{md_text(FAILURES_HEADING, 100)}**", ""]
    table = _table(list(FAILURE_HEADERS), [])
    rows = [_listed_row(listed) for listed in failing]
    details_note = [md_text(MORE_DETAILS, 200), ""]
    more = _more_failures(_tests(failing))
    shown = _fitting(rows, budget - _size(heading + table + [""] + details_note), _size(more))
    if not shown:  # no table without rows
        lines = heading + [md_text(NOT_LISTED, 200), ""]
        return (lines if _size(lines) <= budget else []), False
    lines = heading + table + rows[:shown]
    if shown < len(failing):
        lines += _more_failures(_tests(failing[shown:]))
    lines.append("")
    # A collection's entry is detailed under its name, "all 20 tests".
    named = [(listed.collection, dataclasses.replace(listed.test, name=listed.name))
             for listed in failing[:shown]]
    details = _detail_blocks(named, budget - _size(lines + details_note))
    return lines + details, shown == len(failing)


def _tests(failing: Sequence[ListedFailure]) -> int:
    """Return how many tests listed failures stand for."""
    return sum(listed.count for listed in failing)


def _more_failures(count: int) -> list[str]:
    """Return the note on the tests that did not pass left out of the table."""
    return ["", md_text(MORE_FAILURES.format(count=count, tests=counted(count, TEST_NOUNS)), 200)]


def _fitting(lines: Sequence[str], room: int, note: int, noted: bool = False) -> int:
    """Return how many of the lines fit in room: all (unless `noted`), or as many as fit beside a
    note of `note` characters saying how many more there are."""
    if not noted and _size(lines) <= room:
        return len(lines)
    room -= note
    for count, line in enumerate(lines):
        room -= len(line) + 1
        if room < 0:
            return count
    return len(lines)


def _listed_row(listed: ListedFailure) -> str:
    """Return a test's row, or one row for all of a collection's tests that its run failed."""
    if listed.count == 1:
        return _failure_row(listed.collection, listed.test)
    failure = describe_failure(listed.test)
    name = f"{md_text(listed.name, 40)} ({md_text(listed.collection.name, MAX_NAME_CHARS)})"
    return _row([RESULT_ICONS[listed.test.result], name, "", "", _message_cell(failure)])


def _failure_row(collection: CollectionView, test: TestView) -> str:
    failure = describe_failure(test)
    name = f"{cell_code(test.name, MAX_NAME_CHARS)} ({md_text(collection.name, MAX_NAME_CHARS)})"
    expected = value_cell_code(failure.expected, MAX_VALUE_CHARS) \
        if failure.expected is not None else ""
    actual = value_cell_code(failure.actual, MAX_VALUE_CHARS) if failure.actual is not None \
        else ""
    return _row([RESULT_ICONS[test.result], name, expected, actual, _message_cell(failure)])


def _message_cell(failure: FailureView) -> str:
    """Return a failure's Message cell: the problem, where the program raised, what the
    sandbox had to do with it, and where the program exited."""
    parts = [cell_code(failure.problem, MAX_PROBLEM_CHARS)] if failure.problem else []
    if failure.crash is not None:
        parts.append(_crash_cell_part(failure.crash))
    if failure.explanation is not None:
        parts.append(md_text(failure.explanation, MAX_PROBLEM_CHARS))
    if failure.exited is not None:
        parts.append(_crash_cell_part(failure.exited))
    return " ".join(parts)


def _crash_cell_part(crash: CrashLocation) -> str:
    """Return where the program raised, was stopped or ended, its code in a code span, safe
    inside a table cell."""
    place = md_text(crash.in_message, MAX_NAME_CHARS)
    if not crash.code:
        return place
    return CRASH_LOCATION.format(place=place, code=cell_code(crash.code, MAX_VALUE_CHARS))


def _detail_blocks(failing: Sequence[tuple[CollectionView, TestView]], budget: int) -> list[str]:
    """Show the full details of the first failures that have more than one line of them."""
    with_more = [(c, t) for c, t in failing if describe_failure(t).more]
    lines: list[str] = []
    used = shown = 0
    for collection, test in with_more[:MAX_DETAIL_BLOCKS]:
        # Course-chosen names go in code: GitLab makes references of "#1", "!2" or "@tutor" in
        # any text outside code, and backslashes do not escape them inside HTML.
        summary = html_inline(DETAILS_SUMMARY, 100).format(
            name=f"<code>{html_inline(collection.name, MAX_NAME_CHARS)}</code> › "
                 f"<code>{html_inline(test.name, MAX_NAME_CHARS)}</code>")
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
    """List the passed tests inside a collapsed block, or say there is no room for them."""
    passed = [(c, t) for c in collections for t in c.tests if t.result == "PASSED"]
    items = [f"- {inline_code(test.name, MAX_NAME_CHARS)} "
             f"({md_text(collection.name, MAX_NAME_CHARS)})"
             for collection, test in passed[:MAX_PASSED_LISTED]]
    more = [f"- {md_text(MORE_PASSED.format(count=len(passed)), 100)}"]
    shown = _fitting(items, budget - _size(_passed_block(collections, [])), _size(more),
                     noted=len(items) < len(passed))
    if shown < len(passed):
        items[shown:] = [f"- {md_text(MORE_PASSED.format(count=len(passed) - shown), 100)}"]
    lines = _passed_block(collections, items if shown else [md_text(NOT_LISTED, 200)])
    return lines if _size(lines) <= budget else []


def _passed_block(collections: Sequence[CollectionView], body: list[str]) -> list[str]:
    """Return the collapsed block of passed tests around its body; nothing if none passed."""
    count = sum(c.passed_count for c in collections)
    if not count:
        return []
    summary = html_inline(PASSED_SUMMARY.format(count=count), 100)
    return [f"<details><summary>{summary}</summary>", ""] + body + ["", "</details>", ""]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(headers), _row(["---"] * len(headers))] + [_row(row) for row in rows]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
