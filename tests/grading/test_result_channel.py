"""The sandbox's result channel: what a student's program writes to it cannot break the run."""

from __future__ import annotations

import json

from pipeline.grading.execution import _last_document

DOCUMENT = {"error": None, "values": {"greeting": "hi\x00there\udc80"}, "stdout": "a\x00b"}


def _channel(*lines: str) -> bytes:
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def test_values_reach_the_comparison_as_the_program_made_them():
    # NUL and a lone surrogate are only made storable when the report is recorded.
    assert _last_document(_channel(json.dumps(DOCUMENT))) == DOCUMENT


def test_a_line_nested_too_deeply_to_read_is_skipped():
    deep = "[" * 100_000 + "]" * 100_000
    assert _last_document(_channel(json.dumps(DOCUMENT), deep)) == DOCUMENT
    assert _last_document(_channel(deep)) is None
