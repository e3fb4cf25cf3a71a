"""Every collection type and qualification through real sandboxed runs, with exact messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SandboxSettings
from pipeline.grading import EngineError, GradeOptions, grade, report_to_json
from tests.grading.builders import collection, make_assignment, outcomes

REFERENCE = {"ex.py": """
    a = 3
    b = 2.5
    c = [1.0, 2.0, 3.0]
    d = {"k": [1, 2], "n": {"x": 1.0}}
    nested = [[1.0, 2.0], [3.0]]
    text = "Hello World"
    def square(n):
        return n * n
    class Point:
        def __init__(self, x):
            self.x = x
    p = Point(4)
    print("answer:", a)
"""}
STUDENT = {"ex.py": """
    a = 3
    b = 2
    c = [1.0, 2.0]
    d = {"k": [1, 2], "n": {"x": 1.00001}}
    nested = [[1.0, 2.00001], [3.0]]
    ghost = 1
    text = "Hello There"  # the word for is in a comment
    def square(n):
        return n * n
    class Point:
        def __init__(self, x):
            self.x = x
    p = Point(4)
    print("answer:", a)
    s = "for"
""", "lint_me.py": "import os\n"}
TEST_YAML = """
properties:
  tests:
    - type: variable
      name: values
      entryPoint: ex.py
      successMessage: all values right
      tests:
        - name: a
        - name: b
        - name: c
        - name: d
        - name: nested
        - name: square(5)
        - name: p.x
        - name: missing
        - name: ghost
        - name: a
          value: 4
        - name: a
          evalString: square(2) - 1
        - name: a
          evalString: undefined_name
        - name: p
        - name: __name__
          value: builtins
    - type: variable
      name: texts
      entryPoint: ex.py
      failureMessage: text is off
      tests:
        - {name: text, qualification: matches, pattern: Hello There}
        - {name: text, qualification: contains, pattern: World}
        - {name: text, qualification: startsWith, pattern: Hello}
        - {name: text, qualification: endsWith, pattern: World}
        - {name: text, qualification: count, pattern: l, countRequirement: 3}
        - {name: text, qualification: regexp, pattern: "H.llo"}
        - {name: a, qualification: matches, pattern: 3}
    - type: stdout
      name: output
      entryPoint: ex.py
      tests:
        - name: stdout
        - name: stdout
          qualification: contains
          pattern: "answer: 3"
    - type: structural
      name: structure
      file: ex.py
      tests:
        - {name: print, allowedOccuranceRange: [1, 1]}
        - {name: import}
        - {name: for, allowedOccuranceRange: [1, 2]}
        - {name: def, allowedOccuranceRange: [0, 1], occuranceType: NAME}
        - {name: '"for"', allowedOccuranceRange: [1, 1], occuranceType: STRING}
    - type: structural
      name: structure of a missing file
      file: nothere.py
      tests:
        - {name: print}
    - type: exist
      name: files
      file: "*.py"
      tests:
        - name: any name
    - type: exist
      name: data
      file: "data*.csv"
      tests:
        - name: data
    - type: error
      name: error type
      entryPoint: ex.py
      tests:
        - name: a
    - type: linting
      name: lint it
      file: lint_me.py
      tests:
        - name: all rules
        - name: unused imports allowed
          pattern: F401
    - name: no tests
      tests: []
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("types")
    student, reference = make_assignment(tmp, TEST_YAML, REFERENCE, STUDENT)
    output = tmp / "output"
    report = grade(student, reference, options=GradeOptions(output_dir=output))
    return report, student, output


def test_variable_values(graded):
    report, student, _ = graded
    found = outcomes(report)
    assert collection(report, "values").tests[0].result == "PASSED"
    assert found[("values", "b")] == ("FAILED", "E   AssertionError: Variable `b` has incorrect "
                                                "type, expected: <class 'float'>, obtained "
                                                "<class 'int'>")
    assert found[("values", "c")] == ("FAILED", "E   AssertionError: Variable `c` has incorrect "
                                                "len, expected: 3, obtained 2")
    assert found[("values", "d")] == ("PASSED", None)
    assert found[("values", "nested")] == ("PASSED", None)
    assert found[("values", "square(5)")] == ("PASSED", None)
    assert found[("values", "p.x")] == ("PASSED", None)
    assert found[("values", "missing")] == (
        "FAILED", "E   KeyError: 'Variable `missing` not found in student namespace'")
    assert found[("values", "ghost")] == (
        "SKIPPED", "Skipped: Variable `ghost` not found in reference namespace")
    assert found[("values", "p")] == (
        "FAILED", "E   Failed: Variable `p` of type Point cannot be compared with the expected "
                  "value: only values such as numbers, strings, lists, tuples, dicts, sets, numpy "
                  "arrays and pandas objects can be compared")
    assert found[("values", "__name__")] == ("PASSED", None)


def test_repeated_names_keep_one_line_each_in_order(graded):
    report, _, _ = graded
    lines = [(t.name, t.result, t.details) for t in collection(report, "values").tests]
    assert [line[0] for line in lines] == ["a", "b", "c", "d", "nested", "square(5)", "p.x",
                                           "missing", "ghost", "a", "a", "a", "p", "__name__"]
    assert lines[9] == ("a", "FAILED", "E   AssertionError: Variable `a` has incorrect value "
                                       "(`3` instead of `4`)")
    assert lines[10] == ("a", "PASSED", None)
    assert lines[11] == ("a", "SKIPPED", "Skipped: Evaluation of `undefined_name` not possible")


def test_collection_result_is_skipped_when_any_test_skipped(graded):
    report, _, _ = graded
    values = collection(report, "values")
    assert (values.result, values.result_message, values.status) == (
        "SKIPPED", "Tests skipped", "COMPLETED")
    assert (values.summary.total, values.summary.passed, values.summary.failed,
            values.summary.skipped) == (14, 7, 5, 2)
    skipped_test = values.tests[8]
    assert skipped_test.result_message == "Test skipped"


def test_pattern_qualifications(graded):
    report, _, _ = graded
    found = outcomes(report)
    prefix = "E   AssertionError: Variable `text` "
    lines = [(t.result, t.details) for t in collection(report, "texts").tests]
    assert lines == [
        ("PASSED", None),
        ("FAILED", prefix + "does not contain the specified pattern `World`"),
        ("PASSED", None),
        ("FAILED", prefix + "does not end with the specified pattern `World`"),
        ("FAILED", prefix + "does not contain the specified pattern `l` 3-times"),
        ("PASSED", None),
        ("PASSED", None),
    ]
    texts = collection(report, "texts")
    assert (texts.result, texts.result_message) == ("FAILED", "text is off")
    assert found[("output", "stdout")] == ("PASSED", None)


def test_stdout_collection(graded):
    report, _, _ = graded
    output = collection(report, "output")
    assert [(t.result, t.details) for t in output.tests] == [("PASSED", None), ("PASSED", None)]
    assert (output.result, output.result_message) == ("PASSED", None)


def test_structural_counts_tokens_of_the_given_type(graded):
    report, student, _ = graded
    lines = [(t.result, t.details) for t in collection(report, "structure").tests]
    assert lines == [
        ("PASSED", None),
        ("PASSED", None),
        ("FAILED", "E   AssertionError: `for` found 0-times, minimum required: 1"),
        ("FAILED", "E   AssertionError: `def` found 2-times, maximum required: 1"),
        ("PASSED", None),
    ]
    missing = collection(report, "structure of a missing file").tests[0]
    assert (missing.result, missing.details) == (
        "FAILED", f"E   FileNotFoundError: [Errno 2] No such file or directory: "
                  f"'{student / 'nothere.py'}'")


def test_exist_globs_the_student_then_the_reference(graded):
    report, _, _ = graded
    found = outcomes(report)
    assert found[("files", "any name")] == ("PASSED", None)
    assert found[("data", "data")] == (
        "FAILED", "E   FileNotFoundError: File with pattern `data*.csv` not found in student "
                  "namespace")


def test_error_type_behaves_like_variable(graded):
    report, _, _ = graded
    assert outcomes(report)[("error type", "a")] == ("PASSED", None)


def test_linting_runs_flake8_and_keeps_its_output(graded):
    report, _, output = graded
    lint = collection(report, "lint it")
    output_file = output / "lint-it-all-rules-linting.txt"
    assert [(t.result, t.details) for t in lint.tests] == [
        ("FAILED", f"E   SyntaxError: 1 Syntax Error in file `lint_me.py` (see: {output_file})"),
        ("PASSED", None),
    ]
    assert output_file.read_text() == "lint_me.py:1:1: F401 'os' imported but unused\n"
    assert (output / "lint-it-unused-imports-allowed-linting.txt").read_text() == ""
    assert lint.debug["lintingErrors"] == []


def test_a_sandbox_interpreter_without_flake8_is_our_error_not_a_skip(tmp_path: Path,
                                                                      bare_python: str):
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {type: linting, name: lint it, file: lint_me.py, tests: [{name: all rules}]}
    """, {}, {"lint_me.py": "import os\n"})
    with pytest.raises(EngineError) as caught:
        grade(student, reference, settings=SandboxSettings(python=bare_python))
    assert str(caught.value) == (
        f"the sandbox interpreter {bare_python} has no flake8 module, which linting tests run: "
        f"install flake8 into it (the `runtime` extra pins it) or set [sandbox] python to an "
        f"interpreter that has it")


def test_collection_without_tests_passes_and_never_runs(graded):
    report, _, _ = graded
    empty = collection(report, "no tests")
    assert (empty.result, empty.status, empty.summary.total) == ("PASSED", "COMPLETED", 0)
    assert empty.to_dict()["debug"] == {"executionDurationStudent": 0,
                                        "executionDurationReference": 0, "lintingErrors": []}


def test_suite_summary_counts_collections_and_withholds_the_score_of_reference_gaps(graded):
    report, _, _ = graded
    assert (report.summary.total, report.summary.passed, report.summary.failed,
            report.summary.skipped) == (10, 4, 5, 1)
    assert (report.result, report.result_message) == ("FAILED", "Some or all tests failed")
    assert report.gradehook.collections_passed == 4
    assert report.gradehook.mode == "codeability"
    # `missing` (which the student lacks too), `ghost` and `undefined_name` have no expected
    # value, and three collections check files the reference lacks: the course's failure, not
    # scored.
    assert report.gradehook.score is None
    assert report.course_error.splitlines() == [
        "collection `structure of a missing file` checks the file `nothere.py`, which the "
        "reference solution does not have, so the reference would fail it too",
        "collection `data` checks the file `data*.csv`, which the reference solution does not "
        "have, so the reference would fail it too",
        "collection `lint it` checks the file `lint_me.py`, which the reference solution does "
        "not have, so the reference would fail it too",
        "the reference solution gives no expected value for `missing` in collection `values`: "
        "its run defines no `missing` (and 2 more tests without an expected value)"]
    assert '"gradehook": {' in report_to_json(report)


def test_a_collection_checking_a_file_the_reference_lacks_is_a_course_error(tmp_path: Path):
    # `calcs.py` misspelt for `calc.py`: neither solution has it, and every student would fail.
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {type: structural, name: loops, file: calcs.py, tests: [{name: while}]}
            - {type: exist, name: data, file: "*.csv", tests: [{name: data}]}
            - {type: structural, name: present, file: calc.py, tests: [{name: while}]}
            - {type: exist, name: sources, file: "*.py", tests: [{name: sources}]}
    """, {"calc.py": "x = 1\n"}, {"calc.py": "x = 1\n"})
    report = grade(student, reference)
    # The results are the original's.
    assert [c.result for c in report.tests] == ["FAILED", "FAILED", "PASSED", "PASSED"]
    assert report.score is None
    assert report.course_error.splitlines() == [
        "collection `loops` checks the file `calcs.py`, which the reference solution does not "
        "have, so the reference would fail it too",
        "collection `data` checks the file `*.csv`, which the reference solution does not have, "
        "so the reference would fail it too"]


def test_a_file_field_of_a_collection_that_checks_no_file_is_no_course_error(tmp_path: Path):
    # A variable collection reads its entryPoint's namespace and leaves `file` unused: a file
    # the reference lacks there fails no one.
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {name: values, entryPoint: calc.py, file: solution.py, tests: [{name: x}]}
    """, {"calc.py": "x = 1\n"}, {"calc.py": "x = 1\n"})
    report = grade(student, reference)
    assert (report.score, report.course_error) == (1.0, None)


def test_linting_a_folder_the_reference_has_grades_the_students_style(tmp_path: Path):
    # flake8 lints every file of a folder: the student's style mistake there is theirs.
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {type: linting, name: style, file: ., tests: [{name: all, pattern: E501}]}
    """, {"calc.py": "x = 1\n"}, {"calc.py": "x=1\n"})
    report = grade(student, reference)
    assert [c.result for c in report.tests] == ["FAILED"]
    assert (report.score, report.course_error) == (0.0, None)


LINT_BAD_PY = """
    properties:
      tests:
        - type: linting
          name: lint
          file: bad.py
          tests:
            - name: style
"""


def test_linting_findings_go_to_the_collection_debug(tmp_path: Path):
    student, reference = make_assignment(tmp_path, LINT_BAD_PY, {}, {"bad.py": "import os\nx=1\n"})
    report = grade(student, reference)
    lint = report.tests[0]
    assert lint.debug["lintingErrors"] == ["bad.py:1:1 F401 'os' imported but unused",
                                           "bad.py:2:2 E225 missing whitespace around operator"]
    assert lint.tests[0].details == ("E   SyntaxError: 2 Syntax Errors in file `bad.py` "
                                     "(see: lint-style-linting.txt)")


def test_a_collections_debug_keeps_the_first_findings_cut_short_and_counts_the_others(
        tmp_path: Path):
    # Every finding went into the report, up to the sandbox's output cap (a megabyte, some 20,000
    # findings, by default), each quoting a name whole, however long.
    long_name = "n" * 5000
    bad = f"{long_name}\n" + "x=1\n" * 2000
    student, reference = make_assignment(tmp_path, LINT_BAD_PY, {}, {"bad.py": bad})
    output = tmp_path / "output"
    lint = grade(student, reference, options=GradeOptions(output_dir=output)).tests[0]
    findings = lint.debug["lintingErrors"]
    assert len(findings) == 101
    assert findings[0] == f"bad.py:1:1 F821 undefined name '{long_name}'"[:299] + "…"
    assert findings[1:3] == ["bad.py:1:80 E501 line too long (5000 > 79 characters)",
                             "bad.py:2:2 E225 missing whitespace around operator"]
    assert findings[-1] == "... and 1902 more"
    assert lint.tests[0].details == ("E   SyntaxError: 2002 Syntax Errors in file `bad.py` "
                                     f"(see: {output / 'lint-style-linting.txt'})")
    assert len((output / "lint-style-linting.txt").read_text().splitlines()) == 2002


def test_a_file_flake8_cannot_lint_within_the_limits_fails_saying_which_stopped_it(
        tmp_path: Path):
    # flake8 prints a file's findings once it has read it all: stopped at the memory limit before,
    # it had printed nothing, and the linting test passed, the unused import at the end unseen.
    meta = "properties:\n  executionBackend:\n    settings:\n      memoryLimitMB: 64\n"
    student, reference = make_assignment(tmp_path, LINT_BAD_PY, {},
                                         {"bad.py": "x = 1\n" * 1_000_000 + "import os\n"}, meta)
    lint = grade(student, reference).tests[0]
    assert (lint.result, lint.tests[0].details, lint.debug["lintingErrors"]) == (
        "FAILED", "E   Failed: flake8 was stopped before it finished linting `bad.py`: memory "
                  "limit of 64 MB exceeded", [])


def test_a_linting_failure_names_its_output_file_as_shown_not_where_it_lies(tmp_path: Path):
    student, reference = make_assignment(tmp_path, LINT_BAD_PY, {}, {"bad.py": "import os\n"})
    output = tmp_path / "worker-workspace" / "output"
    report = grade(student, reference, options=GradeOptions(
        output_dir=output, shown_output_dir=Path("/week1/output")))
    assert report.tests[0].tests[0].details == (
        "E   SyntaxError: 1 Syntax Error in file `bad.py` "
        "(see: /week1/output/lint-style-linting.txt)")
    assert (output / "lint-style-linting.txt").read_text() == \
        "bad.py:1:1: F401 'os' imported but unused\n"


def test_a_file_flake8_cannot_read_is_skipped_with_flake8s_error(tmp_path: Path):
    """flake8 stops with a traceback on a NUL byte: students read its error, not the bytes."""
    student, reference = make_assignment(tmp_path, LINT_BAD_PY, {}, {"bad.py": "x = '\0'\n"})
    test = grade(student, reference).tests[0].tests[0]
    assert (test.result, test.details) == (
        "SKIPPED", "Skipped: Linting Error occurred: ValueError: source code string cannot "
                   "contain null bytes")


def test_a_student_flake8_module_or_config_does_not_replace_flake8(tmp_path: Path):
    student, reference = make_assignment(tmp_path, LINT_BAD_PY, {}, {
        "bad.py": "import os\nx=1\n", "flake8.py": "import sys\nsys.exit(0)\n",
        "pycodestyle.py": "raise SystemExit(0)\n", ".flake8": "[flake8]\nignore = E,F,W\n",
        "setup.cfg": "[flake8]\nselect = X\n"})
    lint = grade(student, reference).tests[0]
    assert lint.debug["lintingErrors"] == ["bad.py:1:1 F401 'os' imported but unused",
                                           "bad.py:2:2 E225 missing whitespace around operator"]
