"""Plain-text tables for CLI output: a header row, aligned columns, two spaces apart."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import click

from pipeline.reports.wording import format_percent
from webhooks.api.schemas import MAX_PAGE

SHORT_SHA = 12
# A table's --page: the pages the API's listings take, none beyond what the ledger can count to.
PAGE = click.IntRange(1, MAX_PAGE)


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return rows under a header as aligned text lines (None shows as '-')."""
    cells = [[str(h) for h in header]]
    cells += [["-" if value is None else str(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in cells)


def format_minute(moment: dt.datetime | None) -> str | None:
    """Return a ledger time as its UTC minute for a table (None shows as '-')."""
    return moment.strftime("%Y-%m-%d %H:%M") if moment else None


def format_wait(seconds: int) -> str:
    """Return a wait in whole seconds as hours, minutes and seconds: '1 h 05 min', '4 min 20 s'."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def score_cell(run) -> str | None:
    """Return a test run's score as a percentage for a table (None shows as '-')."""
    return None if run is None or run.score is None else format_percent(run.score)


def tests_cell(run) -> str | None:
    """Return a test run's passed/total tests for a table (None shows as '-')."""
    if run is None or run.tests_total is None:
        return None
    return f"{run.tests_passed}/{run.tests_total}"
