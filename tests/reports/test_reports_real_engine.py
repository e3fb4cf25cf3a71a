"""The builders on a report that the real grading engine wrote (sandboxed runs, real files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.grading import grade, report_to_json
from pipeline.reports import (commit_status_payload, comment_marker, mr_comment_markdown,
                              result_page_html, score_badge)
from tests.reports.report_samples import run

TEST_YAML = """\
type: python
name: demo
properties:
  tests:
    - type: variable
      name: Values
      entryPoint: main.py
      tests:
        - name: x
        - name: y
        - name: s
    - type: stdout
      name: Output
      entryPoint: main.py
      tests:
        - name: out
"""


@pytest.fixture(scope="module")
def engine_report(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("assignment")
    reference, student = root / "reference", root / "student"
    reference.mkdir()
    student.mkdir()
    (reference / "main.py").write_text('x = 3\ny = 1.5\ns = "hello"\nprint("hi")\n')
    (reference / "test.yaml").write_text(TEST_YAML)
    (reference / "meta.yaml").write_text("title: demo\n")
    (student / "main.py").write_text('x = 2\ny = 1\ns = "<b>|`x`|</b>"\nprint("hi")\n')
    return json.loads(report_to_json(grade(Path(student), Path(reference))))


def test_engine_failures_become_expected_and_actual_rows(engine_report):
    text = mr_comment_markdown([(run(), engine_report)], comment_marker("mr-1"))

    lines = text.split("\n")
    assert "**1\\/4 tests passed\\, score 50\\%**" in lines
    assert "| ❌ | ` x ` (Values) | ` 3 ` | ` 2 ` | ` incorrect value ` |" in lines
    assert ("| ❌ | ` y ` (Values) | ` <class 'float'> ` | ` <class 'int'> ` "
            "| ` incorrect type ` |") in lines
    assert "| ❌ | ` s ` (Values) | ` 5 ` | ` 12 ` | ` incorrect len ` |" in lines
    assert "- ` out ` (Output)" in lines


def test_engine_report_status_badge_and_page(engine_report):
    payload = commit_status_payload(run("failed"), engine_report)
    page = result_page_html(run("failed"), engine_report)

    assert (payload["description"], payload["coverage"]) == ("1/4 tests passed, score 50%", 50.0)
    assert ">50%</text>" in score_badge(engine_report)
    assert "<pre>&lt;class &#x27;float&#x27;&gt;</pre>" in page
