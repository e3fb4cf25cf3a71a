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


def graded(root: Path, student_main: str) -> dict:
    """Grade a student's main.py against the reference of TEST_YAML; return the report."""
    reference, student = root / "reference", root / "student"
    reference.mkdir()
    student.mkdir()
    (reference / "main.py").write_text('x = 3\ny = 1.5\ns = "hello"\nprint("hi")\n')
    (reference / "test.yaml").write_text(TEST_YAML)
    (reference / "meta.yaml").write_text("title: demo\n")
    (student / "main.py").write_text(student_main)
    return json.loads(report_to_json(grade(Path(student), Path(reference))))


@pytest.fixture(scope="module")
def engine_report(tmp_path_factory) -> dict:
    return graded(tmp_path_factory.mktemp("assignment"),
                  'x = 2\ny = 1\ns = "<b>|`x`|</b>"\nprint("hi")\n')


def test_engine_failures_become_expected_and_actual_rows(engine_report):
    text = mr_comment_markdown([(run(), engine_report)], comment_marker("mr-1"))

    lines = text.split("\n")
    assert "**Score 50\\% \\(1 of 2 collections passed\\, 1\\/4 tests passed\\)**" in lines
    assert "| ❌ | ` x ` (Values) | ` 3 ` | ` 2 ` | ` incorrect value ` |" in lines
    assert ("| ❌ | ` y ` (Values) | ` <class 'float'> ` | ` <class 'int'> ` "
            "| ` incorrect type ` |") in lines
    assert "| ❌ | ` s ` (Values) | ` 5 ` | ` 12 ` | ` incorrect len ` |" in lines
    assert "- ` out ` (Output)" in lines


def test_engine_report_status_badge_and_page(engine_report):
    payload = commit_status_payload(run("failed"), engine_report)
    page = result_page_html(run("failed"), engine_report)

    assert (payload["description"], payload["coverage"]) == (
        "Score 50% (1 of 2 collections passed, 1/4 tests passed)", 50.0)
    assert ">50%</text>" in score_badge(engine_report)
    assert "<pre>&lt;class &#x27;float&#x27;&gt;</pre>" in page


def test_a_crash_in_the_engine_report_shows_its_line(tmp_path):
    crash = graded(tmp_path, 'x = 3\ny = 1.5\ns = "hello"\n\nprint(greetin)\n')

    comment = mr_comment_markdown([(run(), crash)], comment_marker("mr-1"))
    page = result_page_html(run(), crash)

    assert "failed, ERROR: name 'greetin' is not defined ` at line 5: ` print(greetin) ` |" \
        in comment
    assert "<dt>Crashed at</dt><dd><pre>line 5: print(greetin)</pre></dd>" in page
