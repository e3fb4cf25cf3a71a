"""The builders on a report that the real grading engine wrote (sandboxed runs, real files)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from pipeline.grading import GradeOptions, Report, grade, report_to_json
from pipeline.grading.text_report import render_text
from pipeline.reports import (commit_status_payload, comment_marker, mr_comment_markdown,
                              result_page_html, score_badge)
from tests.reports.report_samples import run

# The head of a test.yaml up to its first collection's tests: variables of main.py.
VALUES_COLLECTION_HEAD = """\
type: python
name: demo
properties:
  tests:
    - type: variable
      name: Values
      entryPoint: main.py
"""
TEST_YAML = VALUES_COLLECTION_HEAD + """\
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


REFERENCE_MAIN = 'x = 3\ny = 1.5\ns = "hello"\nprint("hi")\n'

FEEDBACK_YAML = """\
type: python
name: feedback
properties:
  tests:
    - type: variable
      name: Lists
      entryPoint: main.py
      tests:
        - name: values
        - name: series
        - name: word
        - name: pair
    - type: stdout
      name: Greeting
      entryPoint: main.py
      tests:
        - name: greeting
          qualification: contains
          pattern: "Hello, World!"
"""
FEEDBACK_REFERENCE = """\
values = [1.0, 2.0, 3.0]
series = [float(n) for n in range(100)]
word = "hello"
pair = [1, 2]
print("Hello, World!")
"""
FEEDBACK_STUDENT = """\
values = [1.0, 2.0, 3.5]
series = [float(n) for n in range(100)]
series[70] = 7.5
word = "hello world!"
pair = (1, 2)
print("Hello World <script>alert(1)</script> | `x`")
"""


def graded_report(root: Path, student_main: str, *, test_yaml: str = TEST_YAML,
                  reference_main: str = REFERENCE_MAIN, meta_yaml: str = "title: demo\n"
                  ) -> Report:
    """Grade a student's main.py against a reference main.py, test.yaml and meta.yaml."""
    reference, student = root / "reference", root / "student"
    reference.mkdir()
    student.mkdir()
    (reference / "main.py").write_text(reference_main)
    (reference / "test.yaml").write_text(test_yaml)
    (reference / "meta.yaml").write_text(meta_yaml)
    (student / "main.py").write_text(student_main)
    return grade(Path(student), Path(reference))


def graded(root: Path, student_main: str) -> dict:
    """Grade a student's main.py against the reference of TEST_YAML; return the report."""
    return json.loads(report_to_json(graded_report(root, student_main)))


@pytest.fixture(scope="module")
def engine_report(tmp_path_factory) -> dict:
    return graded(tmp_path_factory.mktemp("assignment"),
                  'x = 2\ny = 1\ns = "<b>|`x`|</b>"\nprint("hi")\n')


def test_engine_failures_become_expected_and_actual_rows(engine_report):
    text = mr_comment_markdown([(run(), engine_report)], comment_marker("mr-1"))

    lines = text.split("\n")
    assert "**Score 50\\% \\(1 of 2 collections passed\\, 1\\/4 tests passed\\)**" in lines
    assert "| ❌ | ` x ` (Values) | ` 3 ` | ` 2 ` | ` incorrect value ` |" in lines
    assert ("| ❌ | ` y ` (Values) | ` type float: 1.5 ` | ` type int: 1 ` "
            "| ` incorrect type ` |") in lines
    assert ("| ❌ | ` s ` (Values) | ` length 5: 'hello' ` "
            "| `` length 12: '<b>\\|`x`\\|</b>' `` | ` incorrect length ` |") in lines
    assert "- ` out ` (Output)" in lines


def test_engine_report_status_badge_and_page(engine_report):
    payload = commit_status_payload(run("failed"), engine_report)
    page = result_page_html(run("failed"), engine_report)

    assert (payload["description"], payload["coverage"]) == (
        "Score 50% (1 of 2 collections passed, 1/4 tests passed)", 50.0)
    assert ">50%</text>" in score_badge(engine_report)
    assert "<pre>type float: 1.5</pre>" in page


def test_a_crash_in_the_engine_report_shows_its_line(tmp_path):
    crash = graded(tmp_path, 'x = 3\ny = 1.5\ns = "hello"\n\nprint(greetin)\n')

    comment = mr_comment_markdown([(run(), crash)], comment_marker("mr-1"))
    page = result_page_html(run(), crash)

    rows = [line for line in comment.split("\n") if line.startswith("| ❌ | ")
            and line.endswith("main.py raised NameError: name 'greetin' is not defined ` at "
                              "line 5: ` print(greetin) ` |")]
    assert [row.split(" | ")[1] for row in rows] == ["all 3 tests (Values)", "` out ` (Output)"]
    assert page.count("main.py raised NameError: name &#x27;greetin&#x27; is not defined</pre>"
                      "</dd><dt>Crashed at</dt><dd><pre>line 5: print(greetin)</pre></dd>") == 2
    assert "<h3>❌ Values › all 3 tests</h3>" in page
    # testSummary.json keeps the original's message (spec §3.2), which leaves the type out.
    assert crash["tests"][0]["tests"][0]["details"].endswith(
        "main.py failed, ERROR: name 'greetin' is not defined")


def test_a_crash_inside_a_library_shows_the_students_line_that_called_it(tmp_path):
    report = graded_report(tmp_path, "import statistics\n\ndef average(values):\n"
                                     "    return statistics.mean(values)\n\nx = average([])\n")
    crash = json.loads(report_to_json(report))

    comment = mr_comment_markdown([(run(), crash)], comment_marker("mr-1"))
    page = result_page_html(run(), crash)

    assert ("raised StatisticsError: mean requires at least one data point ` at line 4: "
            "` return statistics.mean(values) ` |") in comment
    assert ("</dd><dt>Crashed at</dt><dd><pre>line 4: return statistics.mean(values)</pre>"
            "</dd>") in page
    assert "statistics.py" not in comment + page
    # testSummary.json's last frame is still the library's (spec §3.2).
    assert crash["tests"][0]["debug"]["traceback"]["filename"].endswith("statistics.py")
    assert ("    run: raised StatisticsError: mean requires at least one data point at "
            f"{tmp_path / 'student' / 'main.py'}, line 4: return statistics.mean(values)"
            ) in render_text(report).splitlines()


@pytest.mark.parametrize("call", ["sys.exit(1)", "os._exit(1)"])
def test_an_exit_with_a_code_shows_the_line_that_exited(tmp_path, call):
    """Before, a program ending with sys.exit(1) crashed naming no line in the comment, the page
    and gradehook grade, where any other crash names the line that raised; then the page
    labelled that line 'Crashed at', though the program raised nothing: it exited there. One
    ending with os._exit(1) read 'process ended unexpectedly with exit code 1', at no line."""
    report = graded_report(tmp_path, f"import os, sys\n\ndef stop():\n    {call}\n\nstop()\n")
    crash = json.loads(report_to_json(report))

    comment = mr_comment_markdown([(run(), crash)], comment_marker("mr-1"))
    page = result_page_html(run(), crash)

    assert (f"main.py failed, ERROR: program exited with {call} ` at line 4: ` {call} ` |"
            ) in comment
    assert f"</dd><dt>Exited at</dt><dd><pre>line 4: {call}</pre></dd>" in page
    assert "Crashed at" not in page
    assert (f"    run: exited at {tmp_path / 'student' / 'main.py'}, line 4: {call}"
            ) in render_text(report).splitlines()


def test_a_function_that_prints_instead_of_returning_is_told_why_it_gave_none(tmp_path):
    """Before, a test calling a function that prints its result rather than returning it read
    only `incorrect type`, `type int: 3` expected and `type NoneType: None` obtained, which a
    beginner does not read as a missing return. A variable that is None is not told so: no
    function of the test's gave it."""
    test_yaml = VALUES_COLLECTION_HEAD + "      tests:\n        - name: add(1, 2)\n" \
                                         "        - name: total\n"
    report = graded_report(tmp_path, "def add(a, b):\n    print(a + b)\n\ntotal = add(1, 2)\n",
                           test_yaml=test_yaml,
                           reference_main="def add(a, b):\n    return a + b\n\ntotal = 3\n")
    data = json.loads(report_to_json(report))

    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)

    assert ("| ❌ | ` add(1, 2) ` (Values) | ` type int: 3 ` | ` type NoneType: None ` | "
            "` incorrect type ` The function returned None\\, which is what a function without a "
            "return statement gives\\: one that prints its result rather than returning it\\, "
            "say\\. |") in comment.split("\n")
    assert ("| ❌ | ` total ` (Values) | ` type int: 3 ` | ` type NoneType: None ` | "
            "` incorrect type ` |") in comment.split("\n")
    assert page.count("<dt>Why</dt><dd><pre>The function returned None, which is what a "
                      "function without a return statement gives") == 1


def test_a_course_error_names_the_course_folder_not_where_it_lies_on_the_host(tmp_path):
    repository, student = tmp_path / "reference-repository", tmp_path / "student"
    (repository / "week1").mkdir(parents=True)
    student.mkdir()
    (student / "main.py").write_text("x = 3\n")
    report = json.loads(report_to_json(grade(
        student, repository / "week1" / "missing",
        options=GradeOptions(dependency_root=repository))))

    comment = mr_comment_markdown([(run("error"), report)], comment_marker("mr-1"))
    page = result_page_html(run("error"), report)
    status = commit_status_payload(run("error"), report)["description"]

    assert status == ("Not graded: the course's tests for this assignment have a problem: "
                      "the reference directory week1/missing does not exist")
    assert "week1\\/missing" in comment and "week1/missing" in page
    assert str(tmp_path) not in comment + page + status


def test_a_yaml_syntax_error_reads_as_one_line_with_file_line_and_column(tmp_path):
    report = json.loads(report_to_json(graded_report(
        tmp_path, "x = 3\n", test_yaml="name: demo\nproperties:\n  a: b: c\n")))

    status = commit_status_payload(run("error"), report)["description"]
    page = result_page_html(run("error"), report)

    assert status == ("Not graded: the course's tests for this assignment have a problem: "
                      "test.yaml line 3, column 7: mapping values are not allowed here")
    assert ("<p class=\"headline\">⚠️ Not graded: the course&#x27;s tests for this assignment "
            "have a problem: test.yaml line 3, column 7: mapping values are not allowed here"
            "</p>") in page


def test_an_invalid_field_reads_as_one_line_with_file_line_and_path(tmp_path):
    test_yaml = TEST_YAML.replace("        - name: y\n",
                                  "        - name: y\n          qualification: equal\n")
    report = json.loads(report_to_json(graded_report(tmp_path, "x = 3\n", test_yaml=test_yaml)))

    status = commit_status_payload(run("error"), report)["description"]
    comment = mr_comment_markdown([(run("error"), report)], comment_marker("mr-1"))

    assert status == ("Not graded: the course's tests for this assignment have a problem: "
                      "test.yaml line 11: properties.tests[0].tests[1].qualification: must be "
                      "one of verifyEqual, matches, contains, startsWith, endsWith, count, "
                      "regexp, got 'equal'")
    assert ("test\\.yaml line 11\\: properties\\.tests\\[0\\]\\.tests\\[1\\]\\.qualification\\: "
            "must be one of verifyEqual") in comment


# A visible collection and one hidden from students (meta.yaml hiddenTests), each with a fault of
# the course's that tells of the hidden collection: its secret, in what staff read.
HIDDEN_META = "properties:\n  hiddenTests:\n    - Secret\n"
VISIBLE_COLLECTION = VALUES_COLLECTION_HEAD + """\
{dependency}      tests:
        - name: x
"""
HIDDEN_COLLECTION = """\
    - type: {type}
      name: Secret
      id: hidden-one
      entryPoint: main.py
      file: {file}
      tests:
        - name: {test}
"""
WITHHELD_NOTE = "the course's staff see the whole cause in GET /api/runs"
COURSE_ERROR = "Not graded: the course's tests for this assignment have a problem: "


def _hidden_fault(fault: str) -> tuple[str, str]:
    """Return the test.yaml and meta.yaml of an assignment whose fault tells of `secret`."""
    dependency = "      successDependency: hidden-one\n" if fault == "dependency" else ""
    hidden = {"field": dict(type="variable", file="main.py",
                            test="x\n          countRequirement: secret"),
              "expression": dict(type="variable", file="main.py", test="'secret(1'"),
              "dependency": dict(type="variable", file="main.py", test="x"),
              "file": dict(type="exist", file="secret.py", test="secret.py"),
              "meta": dict(type="variable", file="main.py", test="x"),
              "misspelt": dict(type="variable", file="main.py", test="x")}[fault]
    meta = {"meta": "properties:\n  hiddenTests: secret\n",
            "misspelt": HIDDEN_META.replace("Secret", "Secert")}.get(fault, HIDDEN_META)
    return VISIBLE_COLLECTION.format(dependency=dependency) + HIDDEN_COLLECTION.format(
        **hidden), meta


@pytest.mark.parametrize("fault, shown", [
    ("field", "test.yaml line 17: properties.tests[1].tests[0].countRequirement: a problem "
              "with a hidden test"),
    ("expression", "test.yaml line 16: properties.tests[1].tests[0].name: a problem with a "
                   "hidden test; the reference solution gives no expected value for a test of a "
                   "hidden collection"),
    ("dependency", "test.yaml line 8: properties.tests[0].successDependency: a problem with a "
                   "hidden test"),
    ("file", "a hidden collection checks a file which the reference solution does not have, so "
             "the reference would fail it too"),
    ("meta", "meta.yaml line 2: properties.hiddenTests: a problem with a hidden test"),
    ("misspelt", "meta.yaml line 3: properties.hiddenTests[0]: a problem with a hidden test"),
])
def test_a_course_error_telling_of_a_hidden_collection_shows_students_only_where_it_is(
        tmp_path, fault, shown):
    test_yaml, meta_yaml = _hidden_fault(fault)
    report = json.loads(report_to_json(graded_report(
        tmp_path, "x = 3\n", test_yaml=test_yaml, meta_yaml=meta_yaml)))

    status = commit_status_payload(run("error"), report)["description"]
    comment = mr_comment_markdown([(run("error"), report)], comment_marker("mr-1"))
    page = result_page_html(run("error"), report)

    assert "secret" in report["gradehook"]["courseError"].lower()
    # The page and the comment show all of it; the commit status what fits in 255 characters,
    # cut in the cause: where staff read it whole stays.
    whole = f"{COURSE_ERROR}{shown}; {WITHHELD_NOTE}"
    assert whole in html.unescape(page)
    kept, _, _ = status.partition("…")
    assert whole.startswith(kept) and status.endswith(f"; {WITHHELD_NOTE}")
    assert "secret" not in (status + comment + page).lower()


@pytest.fixture(scope="module")
def feedback(tmp_path_factory) -> tuple[Report, dict]:
    report = graded_report(tmp_path_factory.mktemp("feedback"), FEEDBACK_STUDENT,
                           test_yaml=FEEDBACK_YAML, reference_main=FEEDBACK_REFERENCE)
    return report, json.loads(report_to_json(report))


def _failure_cells(comment: str, test: str) -> list[str]:
    """Return the Expected, Actual and Message cells of a test's row in the failures table."""
    row = next(line for line in comment.split("\n") if line.startswith(f"| ❌ | ` {test} ` ("))
    return row.removesuffix(" |").split(" | ")[2:]


def test_values_that_differ_late_show_where_they_differ(feedback):
    report, data = feedback
    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)
    text = render_text(report).split("\n")

    assert _failure_cells(comment, "values") == [
        "` [1.0, 2.0, 3.0] `", "` [1.0, 2.0, 3.5] `", "` incorrect value `"]
    assert ("<dt>Expected</dt><dd><pre>[1.0, 2.0, 3.0]</pre></dd>"
            "<dt>Actual</dt><dd><pre>[1.0, 2.0, 3.5]</pre></dd>") in page
    values = text.index("  FAILED  values  E   AssertionError: Variable `values` has incorrect "
                        "value (`[1.0, 2.0,...` instead of `[1.0, 2.0,...`)")
    assert text[values + 1:values + 3] == ["    expected: [1.0, 2.0, 3.0]",
                                           "    actual:   [1.0, 2.0, 3.5]"]
    expected, actual, _ = _failure_cells(comment, "series")
    assert expected.startswith("` […, 57.0, ") and "69.0, 70.0, 71.0" in expected
    assert actual.startswith("` […, 57.0, ") and "69.0, 7.5, 71.0" in actual
    assert "69.0, 7.5, 71.0, 72.0, 73.0, 74.0, 75.0, 76.0, 77.0, 78.0, 79.0, 80.0, 81.0, 82.0, " \
        "83.0, 84.0, 85.0, 86.0, 87.0, 88.0, 89.0, 90.0, 91.0, 92.0, 93.0, 94.0, 95.0, 96.0, " \
        "97.0, 98.0, 99.0]</pre>" in page


def test_length_and_type_failures_name_what_differs(feedback):
    report, data = feedback
    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)

    assert _failure_cells(comment, "word") == [
        "` length 5: 'hello' `", "` length 12: 'hello world!' `", "` incorrect length `"]
    assert _failure_cells(comment, "pair") == [
        "` type list: [1, 2] `", "` type tuple: (1, 2) `", "` incorrect type `"]
    assert "<pre>length 12: &#x27;hello world!&#x27;</pre>" in page
    assert "<dt>Message</dt><dd><pre>incorrect length</pre></dd>" in page
    assert "<pre>type tuple: (1, 2)</pre>" in page
    word = next(test for test in report.tests[0].tests if test.name == "word")
    assert word.details == ("E   AssertionError: Variable `word` has incorrect len, expected: 5, "
                            "obtained 12")


def test_a_failed_output_pattern_shows_what_the_program_printed_escaped(feedback):
    report, data = feedback
    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)

    assert _failure_cells(comment, "greeting") == [
        "", "`` 'Hello World <script>alert(1)</script> \\| `x`\\n' ``",
        "`` AssertionError: Variable `greeting` does not contain the specified pattern "
        "`Hello, World!` ``"]
    assert ("<dt>Actual</dt><dd><pre>&#x27;Hello World &lt;script&gt;alert(1)&lt;/script&gt; | "
            "`x`\\n&#x27;</pre></dd>") in page
    assert "<script>" not in page
    assert "    actual:   'Hello World <script>alert(1)</script> | `x`\\n'" in \
        render_text(report).split("\n")


CALLS_YAML = """\
type: python
name: calls
properties:
  tests:
    - type: variable
      name: Functions
      entryPoint: main.py
      tests:
        - name: mean([2, 4])
        - name: total([2, 4])
        - name: scale(2)
        - name: missing
"""
CALLS_REFERENCE = """\
def mean(values):
    return sum(values) / len(values)

def total(values):
    return sum(values)

def scale(n):
    return n * 10

missing = 1
"""
CALLS_STUDENT = """\
def mean(values):
    count = 0
    return sum(values) / count

def scale(n, factor):
    return n * factor
"""


def test_a_test_whose_call_raised_names_the_error_and_the_students_line(tmp_path):
    report = graded_report(tmp_path, CALLS_STUDENT, test_yaml=CALLS_YAML,
                           reference_main=CALLS_REFERENCE)
    data = json.loads(report_to_json(report))

    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)

    assert _failure_cells(comment, "mean([2, 4])")[2] == (
        "` ZeroDivisionError: division by zero ` at main\\.py\\, line 3: "
        "` return sum(values) / count `")
    assert _failure_cells(comment, "total([2, 4])")[2] == (
        "` NameError: name 'total' is not defined `")
    assert _failure_cells(comment, "scale(2)")[2] == (
        "` TypeError: scale() missing 1 required positional argument: 'factor' `")
    assert _failure_cells(comment, "missing")[2] == (
        "`` KeyError: 'Variable `missing` not found in student namespace' ``")
    assert ("<dt>Message</dt><dd><pre>ZeroDivisionError: division by zero</pre></dd>"
            "<dt>Crashed at</dt><dd><pre>main.py, line 3: return sum(values) / count</pre></dd>"
            ) in page
    assert str(tmp_path) not in comment + page
    # testSummary.json keeps the original's message (spec §3.3); the text report adds the cause.
    assert data["tests"][0]["tests"][0]["details"] == (
        "E   KeyError: 'Variable `mean([2, 4])` not found in student namespace'")
    assert ("    raised:   ZeroDivisionError: division by zero (main.py, line 3: "
            "return sum(values) / count)") in render_text(report).splitlines()


SANDBOX_YAML = """\
type: python
name: sandbox
properties:
  timeout: 20
  tests:
    - {name: Crash, entryPoint: crash.py, tests: [{name: x}]}
    - {name: Fork, entryPoint: fork.py, tests: [{name: x}]}
    - {name: Lookup, entryPoint: lookup.py, tests: [{name: x}]}
    - {name: Connect, entryPoint: connect.py, tests: [{name: x}]}
    - {name: Own, entryPoint: own.py, tests: [{name: x}]}
    - {name: Flood, entryPoint: flood.py, tests: [{name: x}]}
"""
SANDBOX_STUDENT = {
    "crash.py": "import ctypes\nctypes.string_at(0)\nx = 1\n",
    "fork.py": "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(60)\n",
    "lookup.py": "import socket\nsocket.getaddrinfo('example.com', 80)\nx = 1\n",
    "connect.py": "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=5)\n",
    # The program's own exception, worded as the sandbox's stop: no explanation.
    "own.py": "raise RuntimeError('process was killed by signal SIGSEGV')\n",
    "flood.py": "while True:\n    print('x' * 1000)\n",
}


@pytest.fixture(scope="module")
def sandbox_stops(tmp_path_factory) -> tuple[str, str, Path]:
    root = tmp_path_factory.mktemp("sandbox")
    reference, student = root / "reference", root / "student"
    for folder, files in ((reference, {name: "x = 1\n" for name in SANDBOX_STUDENT}),
                          (student, SANDBOX_STUDENT)):
        folder.mkdir()
        for name, code in files.items():
            (folder / name).write_text(code)
    (reference / "test.yaml").write_text(SANDBOX_YAML)
    data = json.loads(report_to_json(grade(student, reference)))
    return (mr_comment_markdown([(run(), data)], comment_marker("mr-1")),
            result_page_html(run(), data), student)


@pytest.mark.parametrize(("collection", "message"), [
    ("Crash", "` Failed: Execution of {entry}crash.py failed, ERROR: process was killed by signal "
              "SIGSEGV ` The program crashed \\(segmentation fault\\, signal SIGSEGV\\)\\."),
    ("Fork", "` Failed: Execution of {entry}fork.py failed, ERROR: process limit of 64 exceeded ` "
             "Programs cannot run more than 64 processes \\(threads included\\) at once while "
             "they are graded\\."),
    # Raised in the socket library: the student's line that called it is named.
    ("Lookup", "` {entry}lookup.py raised gaierror: [Errno -3] Temporary failure in name "
               "resolution ` at line 2: ` socket.getaddrinfo('example.com', 80) ` Programs "
               "have no network access while they are graded\\."),
    ("Connect", "` {entry}connect.py raised OSError: [Errno 101] Network is unreachable ` at "
                "line 2: ` socket.create_connection(('192.0.2.1', 80), timeout=5) ` Programs "
                "have no network access while they are graded\\."),
    # Stopped from outside, at no line: what to look for is said.
    ("Flood", "` Failed: Execution of {entry}flood.py failed, ERROR: the program printed more than "
              "16 MB and was stopped, likely in an endless loop ` Your program printed more than "
              "16 MB\\, far more than any test needs\\, and was stopped\\, at a line gradehook "
              "cannot name\\. Look for a print\\(\\) in a loop that never ends\\."),
])
def test_what_the_sandbox_had_to_do_with_a_crash_is_explained(sandbox_stops, collection, message):
    comment, _, student = sandbox_stops
    row = next(line for line in comment.split("\n")
               if line.startswith(f"| ❌ | ` x ` ({collection}) |"))
    assert row.removesuffix(" |").split(" | ")[4] == message.format(entry=f"{student}/")


def test_the_page_explains_it_under_the_message_but_not_a_programs_own_error(sandbox_stops):
    comment, page, _ = sandbox_stops
    assert ("<dt>Why</dt><dd><pre>The program crashed (segmentation fault, signal SIGSEGV)."
            "</pre></dd>") in page
    assert page.count("<dt>Why</dt>") == 5
    assert next(line for line in comment.split("\n") if "(Own)" in line).endswith(
        "own.py raised RuntimeError: process was killed by signal SIGSEGV ` at line 1: "
        "` raise RuntimeError('process was killed by signal SIGSEGV') ` |")


LOOP_YAML = """\
type: python
name: loop
properties:
  tests:
    - type: variable
      name: Counting
      entryPoint: main.py
      timeout: 0.5
      tests:
        - name: total
        - name: count
"""
LOOP_REFERENCE = """\
def count_to(n):
    total = 0
    while n != 0: total += n; n -= 1
    return total

count = 3
total = count_to(count)
"""


def test_a_timed_out_run_names_the_line_the_students_program_was_stopped_at(tmp_path):
    report = graded_report(tmp_path, LOOP_REFERENCE.replace("n -= 1", "n -= 2"),
                           test_yaml=LOOP_YAML, reference_main=LOOP_REFERENCE)
    data = json.loads(report_to_json(report))

    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)

    assert ("| ❌ | all 2 tests (Counting) |  |  | ` Failed: Maximum execution time of 0.5 seconds "
            "exceeded ` stopped at main\\.py\\, line 3: ` while n != 0: total += n; n -= 2 ` |"
            ) in comment.split("\n")
    assert ("<dt>Stopped at</dt><dd><pre>main.py, line 3: while n != 0: total += n; n -= 2"
            "</pre></dd>") in page
    assert str(tmp_path) not in comment + page
    assert "    run: stopped at main.py, line 3: while n != 0: total += n; n -= 2" in \
        render_text(report).splitlines()
    # testSummary.json keeps the original's message (spec §3.2); its debug says where.
    assert data["tests"][0]["tests"][0]["details"] == (
        "E   Failed: Maximum execution time of 0.5 seconds exceeded")
    assert data["tests"][0]["debug"]["traceback"] == {
        "name": "count_to", "filename": "main.py", "lineno": 3,
        "line": "while n != 0: total += n; n -= 2",
        "errormsg": "Maximum execution time of 0.5 seconds exceeded"}


MENU_YAML = """\
type: python
name: menu
properties:
  tests:
    - type: variable
      name: Totals
      entryPoint: main.py
      tests:
        - name: count
        - name: total
"""
MENU_REFERENCE = "count = 3\ntotal = 6\n"
MENU_STUDENT = """\
count = 3
while True:
    choice = 'q'
    if choice == 'q': exit()
total = 6
"""


def test_a_program_that_exited_with_0_before_a_name_says_where_it_ended(tmp_path):
    early, at_end = tmp_path / "early", tmp_path / "end"
    early.mkdir()
    at_end.mkdir()
    report = graded_report(early, MENU_STUDENT, test_yaml=MENU_YAML,
                           reference_main=MENU_REFERENCE)
    data = json.loads(report_to_json(report))

    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)

    assert ("| ❌ | ` total ` (Totals) |  |  | `` KeyError: 'Variable `total` not found in student "
            "namespace' `` The program exited at main\\.py\\, line 4: ` if choice == 'q': "
            "exit() ` |") in comment.split("\n")
    assert ("<dt>Exited at</dt><dd><pre>main.py, line 4: if choice == &#x27;q&#x27;: exit()"
            "</pre></dd>") in page
    assert str(tmp_path) not in comment + page
    assert "    the program exited at main.py, line 4: if choice == 'q': exit()" in \
        render_text(report).splitlines()
    # testSummary.json grades it as spec §9 says, with the original's message; the failed
    # test's debug says where.
    collection = data["tests"][0]
    assert (collection["status"], collection["result"], collection["debug"]["traceback"]) == (
        "COMPLETED", "FAILED", {})
    assert collection["tests"][1]["details"] == (
        "E   KeyError: 'Variable `total` not found in student namespace'")
    assert collection["tests"][1]["debug"] == {
        "exited": {"file": "main.py", "lineno": 4, "line": "if choice == 'q': exit()"}}

    # An exit after everything ran, its names found, shows nothing new.
    finished = graded_report(at_end, MENU_REFERENCE + "import sys\nsys.exit(0)\n",
                             test_yaml=MENU_YAML, reference_main=MENU_REFERENCE)
    finished_data = json.loads(report_to_json(finished))
    assert finished_data["result"] == "PASSED"
    assert "exited at" not in (mr_comment_markdown([(run(), finished_data)],
                                                   comment_marker("mr-1"))
                               + result_page_html(run(), finished_data)
                               + render_text(finished)).lower()


PYTEST_REFERENCE = """\
def squares(n):
    return [i * i for i in range(n)]


def mean(values):
    return sum(values) / len(values)
"""
PYTEST_TESTS = """\
from stats import mean, squares


def test_squares():
    assert squares(50) == [i * i for i in range(50)]


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5
"""
PYTEST_STUDENT = """\
def squares(n):
    result = [i * i for i in range(n)]
    result[37] = 0
    return result


def mean(values):
    return sum(values) / helper(values)


def helper(values):
    return len(values) - 4
"""


def test_a_pytest_failure_shows_where_values_differ_and_the_students_line(tmp_path):
    """Before, a failed pytest test showed its first line alone, `assert [0, 1, 4, 9, 16, 25,
    ...] == [0, 1, 4, 9, 16, 25, ...]`, and an error of the student's code no line of theirs."""
    reference, student = tmp_path / "reference", tmp_path / "student"
    for folder, files in ((reference, {"stats.py": PYTEST_REFERENCE,
                                       "test_stats.py": PYTEST_TESTS}),
                          (student, {"stats.py": PYTEST_STUDENT})):
        folder.mkdir()
        for name, code in files.items():
            (folder / name).write_text(code)
    report = grade(student, reference)
    data = json.loads(report_to_json(report))

    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1")).split("\n")
    page = result_page_html(run(), data)
    text = render_text(report).split("\n")

    squares = comment.index("| ❌ | ` test_squares ` (test\\_stats\\.py) |  |  | ` AssertionError: "
                            "assert [0, 1, 4, 9, 16, 25, ...] == [0, 1, 4, 9, 16, 25, ...] ` |")
    assert comment[squares + 1] == (
        "| ❌ | ` test_mean ` (test\\_stats\\.py) |  |  | ` ZeroDivisionError: division by zero ` "
        "at stats\\.py\\, line 8: ` return sum(values) / helper(values) ` |")
    details = comment.index("<details><summary>Details: <code>test_stats.py</code> › "
                            "<code>test_squares</code></summary>")
    assert comment[details + 2:details + 6] == [
        "```text", "E   AssertionError: assert [0, 1, 4, 9, 16, 25, ...] == "
        "[0, 1, 4, 9, 16, 25, ...]", "E     At index 37 diff: 0 != 1369", "```"]
    assert ("<dt>Message</dt><dd><pre>ZeroDivisionError: division by zero</pre></dd>"
            "<dt>Crashed at</dt><dd><pre>stats.py, line 8: return sum(values) / helper(values)"
            "</pre></dd>") in page
    assert "E     At index 37 diff: 0 != 1369" in page
    test_line = "  FAILED  test_squares  "
    at = text.index(test_line + "E   AssertionError: assert [0, 1, 4, 9, 16, 25, ...] == "
                                "[0, 1, 4, 9, 16, 25, ...]")
    assert text[at + 1] == " " * len(test_line) + "E     At index 37 diff: 0 != 1369"
    assert ("    raised:   ZeroDivisionError: division by zero (stats.py, line 8: "
            "return sum(values) / helper(values))") in text
    assert str(tmp_path) not in "\n".join(comment) + page


STYLE_YAML = """\
type: python
name: style
properties:
  tests:
    - type: structural
      name: Style
      file: main.py
      tests:
        - name: for
          allowedOccuranceRange: [1, 5]
"""


@pytest.mark.parametrize("student_main", ["total = sum(numbers\nfor n in numbers:\n    pass\n",
                                          'for n in range(3):\n    """never closed\n'])
def test_a_file_python_cannot_read_to_its_end_says_why_its_words_were_not_counted(
        tmp_path, student_main):
    """Before, a structural test of a file left inside a bracket or a triple-quoted string read
    only `tokenize.TokenError: ('EOF in multi-line statement', (4, 0))`, naming a line past the
    file's end."""
    data = json.loads(report_to_json(graded_report(tmp_path, student_main, test_yaml=STYLE_YAML,
                                                   reference_main="for n in []:\n    pass\n")))
    comment = mr_comment_markdown([(run(), data)], comment_marker("mr-1"))
    page = result_page_html(run(), data)

    row = next(line for line in comment.split("\n") if line.startswith("| ❌ | ` for ` (Style) |"))
    assert row.removesuffix(" |").split(" | ")[4].startswith("` tokenize.TokenError: ('EOF in ")
    assert row.endswith(
        " Your file could not be read as Python\\: it ends inside a bracket\\, or a "
        "triple\\-quoted string\\, that is never closed\\, so its words could not be counted\\. "
        "Look for the one left open\\. |")
    assert ("<dt>Why</dt><dd><pre>Your file could not be read as Python: it ends inside a "
            "bracket, or a triple-quoted string, that is never closed, so its words could not be "
            "counted. Look for the one left open.</pre></dd>") in page
