"""The sandbox's result channel: what a student's program writes to it cannot break the run."""

from __future__ import annotations

import json

from pipeline.grading.execution import _last_document, storable

DOCUMENT = {"error": None, "values": {"greeting": "hi\x00there\udc80"}, "stdout": "a\x00b"}


def _channel(*lines: str) -> bytes:
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def test_nul_and_lone_surrogates_become_one_visible_character_each():
    document = _last_document(_channel(json.dumps(DOCUMENT)))
    assert document["values"] == {"greeting": "hi\u2400there\ufffd"}
    assert document["stdout"] == "a\u2400b"
    # What the ledger sends to PostgreSQL's JSON column: no \\u0000, no lone surrogate escape.
    text = json.dumps(document)
    assert "\\u0000" not in text and "\\udc80" not in text


def test_storable_keeps_valid_text_and_other_values_as_they_are():
    value = {"emoji": "\U0001f600", "n": 3, "items": [1.5, None, True, "caf\u00e9"]}
    assert storable(value) == value
    assert storable({"k\x00": ["\ud800"]}) == {"k\u2400": ["\ufffd"]}


def test_a_line_nested_too_deeply_to_read_is_skipped():
    deep = "[" * 100_000 + "]" * 100_000
    assert _last_document(_channel(json.dumps(DOCUMENT), deep))["stdout"] == "a\u2400b"
    assert _last_document(_channel(deep)) is None
