"""Draw a shields.io-style flat badge as SVG, and the score badge of a grading report."""

from __future__ import annotations

import re
from typing import Any, Mapping
from xml.sax.saxutils import escape

from pipeline.reports.text import one_line
from pipeline.reports.model import ReportInputError, read_report
from pipeline.reports.wording import (BADGE_LABEL, BADGE_NO_RESULT, BADGE_NOT_GRADED,
                                      BADGE_UNAVAILABLE, format_percent)

NAMED_COLORS = {"brightgreen": "#4c1", "green": "#97ca00", "yellowgreen": "#a4a61d",
                "yellow": "#dfb317", "orange": "#fe7d37", "red": "#e05d44",
                "blue": "#007ec6", "lightgrey": "#9f9f9f", "grey": "#555"}
# Lowest score for each colour, best first.
SCORE_COLORS = ((0.9, "brightgreen"), (0.75, "green"), (0.6, "yellowgreen"), (0.4, "yellow"),
                (0.2, "orange"), (0.0, "red"))
MAX_BADGE_TEXT = 60
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
_PADDING = 10  # horizontal space around each text, as shields.io draws it

# Approximate advance widths of Verdana at 11 px, the badge font.
_WIDTHS = {**dict.fromkeys("ijl'|", 3.1), **dict.fromkeys("frt()[]{}", 4.3),
           **dict.fromkeys(" .,:;!", 3.9), **dict.fromkeys("mw", 10.7),
           **dict.fromkeys("MW", 11.7), "%": 11.9, "-": 4.6, "/": 4.9, "_": 7.0}


def text_width(text: str) -> float:
    """Estimate the rendered width of badge text in pixels."""
    def width(char: str) -> float:
        if char in _WIDTHS:
            return _WIDTHS[char]
        if char.isupper():
            return 7.6
        if char.islower():
            return 6.8
        return 7.0
    return sum(width(char) for char in text)


def badge_svg(label: str, message: str, color: str) -> str:
    """Return a flat two-part badge: grey `label`, then `message` on `color` (name or #hex)."""
    fill = NAMED_COLORS.get(color, color)
    if not _HEX_COLOR.fullmatch(fill):
        raise ReportInputError(f"badge colour must be one of {', '.join(NAMED_COLORS)} or "
                               f"#rgb/#rrggbb, got {color!r}")
    label, message = one_line(label, MAX_BADGE_TEXT), one_line(message, MAX_BADGE_TEXT)
    label_width = round(text_width(label) + _PADDING)
    message_width = round(text_width(message) + _PADDING)
    total = label_width + message_width
    title = escape(f"{label}: {message}", {'"': "&quot;"})
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{label_width}" height="20" fill="#555"/>'
        f'<rect x="{label_width}" width="{message_width}" height="20" fill="{fill}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'{_text(label, label_width / 2)}{_text(message, label_width + message_width / 2)}'
        '</g></svg>')


def score_badge(report: Mapping[str, Any] | None, *, label: str = BADGE_LABEL) -> str:
    """Return the badge of a report's score; grey when there is no report or no score."""
    view = read_report(report)
    if view is None:
        return badge_svg(label, BADGE_NO_RESULT, "lightgrey")
    if not view.scored:
        return badge_svg(label, BADGE_NOT_GRADED, "lightgrey")
    color = next(name for lowest, name in SCORE_COLORS if view.score >= lowest)
    return badge_svg(label, format_percent(view.score), color)


def unavailable_badge() -> str:
    """Return the badge shown while no score can be read (the ledger down for a moment)."""
    return badge_svg(BADGE_LABEL, BADGE_UNAVAILABLE, "lightgrey")


def _text(text: str, center: float) -> str:
    """Return one text with its shadow, centred at `center` pixels."""
    shown = escape(text)
    return (f'<text x="{center:.1f}" y="15" fill="#010101" fill-opacity=".3" '
            f'aria-hidden="true">{shown}</text><text x="{center:.1f}" y="14">{shown}</text>')
