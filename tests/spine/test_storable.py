"""What the ledger stores of a report: the characters PostgreSQL refuses, replaced."""

from __future__ import annotations

import json

from pipeline.ledger.storable import storable


def test_nul_and_lone_surrogates_become_one_visible_character_each():
    report = {"values": {"greeting": "hi\x00there\udc80"}, "stdout": ["a\x00b"]}
    assert storable(report) == {"values": {"greeting": "hi\u2400there\ufffd"},
                                "stdout": ["a\u2400b"]}
    # What goes to PostgreSQL's JSON column: no \\u0000, no lone surrogate escape.
    text = json.dumps(storable(report))
    assert "\\u0000" not in text and "\\udc80" not in text


def test_valid_text_and_other_values_stay_as_they_are():
    value = {"emoji": "\U0001f600", "n": 3, "items": [1.5, None, True, "caf\u00e9"]}
    assert storable(value) == value
    assert storable({"k\x00": ["\ud800"]}) == {"k\u2400": ["\ufffd"]}
