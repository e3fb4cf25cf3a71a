"""Render a run's result page: a standalone HTML document, inline CSS, every text escaped."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any, Mapping, Sequence

from pipeline.reports.failures import ListedFailure, describe_failure, listed_failures
from pipeline.reports.model import PHASES, CollectionView, ReportView, RunSummary, read_report
from pipeline.reports.text import clean, clean_value, shorten
from pipeline.reports.wording import (ACTUAL_LABEL, DETAILS_LABEL, EXPECTED_LABEL,
                                      EXPLANATION_LABEL, FAILURES_HEADING, HIDDEN_CELL,
                                      HIDDEN_NOTE, MESSAGE_LABEL,
                                      PAGE_COLLECTION_HEADERS, PAGE_COLLECTIONS_HEADING,
                                      PAGE_ENGINE_LINE, PAGE_META_LABELS, PAGE_STAGE_HEADERS,
                                      PAGE_STAGE_NAMES, PAGE_STEP_HEADERS, PAGE_STEP_NAMES,
                                      PAGE_TIMINGS_HEADING, PAGE_TITLE,
                                      PASSED_SUMMARY, RESULT_ICONS, RESULT_WORDS, STATUS_ICONS,
                                      explanation_text, is_scored, outcome_text)

MAX_VALUE_CHARS = 5_000
MAX_DETAILS_CHARS = 20_000
# A run still to be graded: its page loads itself again this often, to show the result once
# there is one (it says the result appears there).
PENDING_STATUSES = ("queued", "running")
PENDING_RELOAD_SECONDS = 10
# Lays a page out as wide as the screen: without it a phone lays it out 980 pixels wide, shrunk.
VIEWPORT_META = "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f1f1f;
background:#fafafa}main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:32px;font-size:1.25em}h3{font-size:1em}
.meta{color:#555;margin:0 0 16px}.meta span{margin-right:16px}
.outcome{border-radius:6px;padding:12px 16px;border:1px solid #ddd;background:#fff}
.outcome p{margin:4px 0}.headline{font-size:1.2em;font-weight:600}
.passed{border-left:6px solid #2da44e}.failed,.error{border-left:6px solid #cf222e}
.queued,.running{border-left:6px solid #bf8700}.superseded,.cancelled{border-left:6px solid #888}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}article{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:8px 16px;margin:12px 0}pre{background:#f6f8fa;padding:8px;overflow-x:auto;
white-space:pre-wrap;word-break:break-word;margin:4px 0}dt{font-weight:600}
.note{color:#555;font-style:italic}
h1,h3,.meta,.headline,dd,li,td.name{overflow-wrap:anywhere}td{overflow-wrap:break-word}
.scroll{overflow-x:auto;margin:8px 0}
@media (max-width:600px){main{padding:16px}dd{margin-left:0}}
"""


def result_page_html(run: RunSummary, report: Mapping[str, Any] | None) -> str:
    """Return the complete HTML page of one run and its report."""
    view = read_report(report)
    title = PAGE_TITLE.format(assignment=run.assignment, project=run.project_path)
    parts = [_header(run), _outcome(run, view)]
    if is_scored(run, view):
        visible = [c for c in view.collections if not c.hidden]
        parts += [_collections(view.collections), _failures(visible), _passed(visible)]
    parts.append(_timings(run, view))
    reload = (f"<meta http-equiv=\"refresh\" content=\"{PENDING_RELOAD_SECONDS}\">"
              if run.status in PENDING_STATUSES else "")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"{VIEWPORT_META}{reload}"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n"
            f"<body><main>\n{''.join(parts)}</main></body></html>\n")


def _esc(text: str) -> str:
    return html.escape(clean(text))


def _header(run: RunSummary) -> str:
    facts = {"project": run.project_path, "ref": run.ref or "", "commit": run.short_sha,
             "run": run.run_id}
    # A narrow screen breaks the line between two facts, at the space that parts them, and never
    # between a label and its value, which a no-break space joins.
    meta = " ".join(f"<span>{_esc(PAGE_META_LABELS[key])}:&nbsp;<code>{_esc(value)}</code></span>"
                    for key, value in facts.items() if value)
    return f"<h1>{_esc(run.assignment)}</h1>\n<p class=\"meta\">{meta}</p>\n"


def _outcome(run: RunSummary, view: ReportView | None) -> str:
    explanation = explanation_text(run, view)
    lines = [f"<section class=\"outcome {run.status}\">",
             f"<p class=\"headline\">{STATUS_ICONS[run.status]} "
             f"{_esc(outcome_text(run, view))}</p>"]
    if explanation:
        lines.append(f"<p>{_esc(explanation)}</p>")
    lines.append("</section>\n")
    return "\n".join(lines)


def _collections(collections: Sequence[CollectionView]) -> str:
    if not collections:
        return ""
    # The Message column shows only when test.yaml gave some collection a message to show.
    messages = ["" if c.hidden else c.message for c in collections]
    columns = len(PAGE_COLLECTION_HEADERS) - (0 if any(m.strip() for m in messages) else 1)
    rows = []
    for c, message in zip(collections, messages):
        passed = HIDDEN_CELL if c.hidden else f"{c.passed_count}/{len(c.tests)}"
        cells = [f"{RESULT_ICONS[c.result]} {RESULT_WORDS[c.result]}", c.name, c.type, passed,
                 message]
        rows.append(_row(cells[:columns], name_at=1))
    note = (f"<p class=\"note\">{_esc(HIDDEN_NOTE)}</p>\n"
            if any(c.hidden for c in collections) else "")
    return (f"<h2>{_esc(PAGE_COLLECTIONS_HEADING)}</h2>\n"
            f"{_table(_row(PAGE_COLLECTION_HEADERS[:columns], 'th') + ''.join(rows))}\n{note}")


def _failures(collections: Sequence[CollectionView]) -> str:
    articles = [_failure_card(listed) for listed in listed_failures(collections)]
    if not articles:
        return ""
    return f"<h2>{_esc(FAILURES_HEADING)}</h2>\n{''.join(articles)}"


def _failure_card(listed: ListedFailure) -> str:
    """Return a test's card, or one card for all of a collection's tests that its run failed."""
    test = listed.test
    failure = describe_failure(test)
    facts = [(EXPECTED_LABEL, failure.expected), (ACTUAL_LABEL, failure.actual),
             (MESSAGE_LABEL, failure.problem)]
    if failure.crash is not None:
        facts.append((failure.crash.label, failure.crash.text))
    facts.append((EXPLANATION_LABEL, failure.explanation))
    if failure.exited is not None:
        facts.append((failure.exited.label, failure.exited.text))
    if failure.more:
        facts.append((DETAILS_LABEL, test.details))
    entries = "".join(
        f"<dt>{_esc(label)}</dt><dd><pre>{_shown(label, value)}</pre></dd>"
        for label, value in facts if value)
    name = _esc(listed.name) if listed.count > 1 else f"<code>{_esc(test.name)}</code>"
    return (f"<article><h3>{RESULT_ICONS[test.result]} {_esc(listed.collection.name)} › "
            f"{name}</h3><dl>{entries}</dl></article>\n")


def _shown(label: str, text: str) -> str:
    """Return a failure's fact for HTML; an expected or actual value with every character that
    would not show named, so values that differ do not look alike."""
    text = shorten(text, MAX_DETAILS_CHARS if label == DETAILS_LABEL else MAX_VALUE_CHARS)
    return html.escape(clean_value(text) if label in (EXPECTED_LABEL, ACTUAL_LABEL)
                       else clean(text))


def _passed(collections: Sequence[CollectionView]) -> str:
    items = [f"<li><code>{_esc(t.name)}</code> ({_esc(c.name)})</li>"
             for c in collections for t in c.tests if t.result == "PASSED"]
    if not items:
        return ""
    return (f"<details><summary>{_esc(PASSED_SUMMARY.format(count=len(items)))}</summary>"
            f"<ul>{''.join(items)}</ul></details>\n")


def _timings(run: RunSummary, view: ReportView | None) -> str:
    stages = []
    previous: dt.datetime | None = None
    for phase in PHASES:
        moment = run.timings.get(phase)
        if moment is None:
            continue
        at = moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        after = f"{max(0.0, (moment - previous).total_seconds()):.1f} s" if previous else ""
        stages.append(_row([PAGE_STAGE_NAMES[phase], at, after]))
        previous = moment
    steps = [_row([PAGE_STEP_NAMES.get(name, name), f"{seconds:.2f}"])
             for name, seconds in _in_engine_order(view.timings)] if view else []
    if not stages and not steps:
        return ""
    parts = [f"<h2>{_esc(PAGE_TIMINGS_HEADING)}</h2>\n"]
    if stages:
        parts.append(_table(_row(PAGE_STAGE_HEADERS, 'th') + ''.join(stages)) + "\n")
    if steps:
        parts.append(_table(_row(PAGE_STEP_HEADERS, 'th') + ''.join(steps)) + "\n")
    if view and view.engine_version:
        parts.append(f"<p class=\"note\">"
                     f"{_esc(PAGE_ENGINE_LINE.format(version=view.engine_version, mode=view.mode))}"
                     "</p>\n")
    return "".join(parts)


def _in_engine_order(timings: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Order the engine's steps as they ran (PAGE_STEP_NAMES's order), any others after them as
    given: the ledger keeps a report's keys in an order of its own (JSONB's, shortest first)."""
    known = list(PAGE_STEP_NAMES)
    return sorted(timings, key=lambda step: known.index(step[0]) if step[0] in known
                  else len(known))


def _table(rows: str) -> str:
    """Wrap table rows in a table that scrolls sideways on its own when wider than the screen."""
    return f"<div class=\"scroll\"><table>{rows}</table></div>"


def _row(cells: Sequence[str], tag: str = "td", name_at: int | None = None) -> str:
    """Return a table row; the cell at `name_at` holds a name that may break anywhere."""
    return "<tr>" + "".join(
        f"<{tag} class=\"name\">{_esc(cell)}</{tag}>" if n == name_at
        else f"<{tag}>{_esc(cell)}</{tag}>" for n, cell in enumerate(cells)) + "</tr>"
