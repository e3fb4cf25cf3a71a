"""Untrusted text before formatting: terminal escapes go, invisible characters are named."""

from __future__ import annotations

import pytest

from pipeline.reports.text import clean, one_line


@pytest.mark.parametrize("written, shown", [
    ("\x1b[1;31mFAILED\x1b[0m: 2 != 3", "FAILED: 2 != 3"),           # colours
    ("50%\x1b[2K\x1b[1G100%", "50%100%"),                             # progress line
    ("\x1b]8;;https://example.org\x07link\x1b]8;;\x1b\\ end", "link end"),  # hyperlink
    ("\x1b]0;title\x07out", "out"),                                   # window title
    ("\x1b7saved\x1b8 \x1b(Bascii", "saved ascii"),                   # other escapes
    ("8-bit \x9b31mcsi\x9bm and \x9d0;t\x9cosc", "8-bit csi and osc"),
    ("C1 a\x85b\x90c", "C1 abc"),
    ("line\r\nbreaks\rkept\ttab", "line\nbreaks\nkept\ttab"),
])
def test_terminal_escapes_and_controls_are_dropped(written, shown):
    """Before, only the escape character went: coloured output showed `[1;31mFAILED[0m`."""
    assert clean(written) == shown


@pytest.mark.parametrize("written, shown", [
    ("ab\u200bc", "ab⟨U+200B⟩c"),
    ("\ufeffhello", "⟨U+FEFF⟩hello"),
    ("x = \u202e321", "x = ⟨U+202E⟩321"),
    ("\u2066isolated\u2069", "⟨U+2066⟩isolated⟨U+2069⟩"),
])
def test_invisible_characters_are_named_so_a_difference_shows(written, shown):
    """Before, `ab\\u200bc` read as `abc` beside an expected `abc`, and an override turned a
    value around."""
    assert clean(written) == shown


def test_text_in_other_scripts_and_emoji_stays():
    text = "שלום, مرحبا, 👩‍💻, naïve"
    assert clean(text) == text


def test_an_escape_left_open_does_not_swallow_the_rest():
    assert one_line("\x1b]never closed, then the output", 80) == "never closed, then the output"
