"""test.yaml reading: defaults, coercion, inheritance (§2) and exact validation errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.grading import SpecError, load_meta, load_test_suite
from pipeline.grading.spec import parse_test_suite


def parse(text: str):
    return parse_test_suite(yaml.safe_load(textwrap.dedent(text)))


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse(text)
    return str(caught.value).splitlines()


def test_an_empty_file_gives_every_default():
    suite = parse("")
    assert (suite.type, suite.name, suite.description, suite.version) == (
        "python", "Python Test Suite", "Checks subtests and graphics", "1.0")
    assert (suite.qualification, suite.success_message, suite.failure_message) == (
        "verifyEqual", "Congratulations! All tests passed", "Some or all tests failed")
    assert (suite.relative_tolerance, suite.absolute_tolerance, suite.timeout) == (
        1e-12, 1e-4, 180.0)
    assert suite.collections == ()


def test_collection_and_test_defaults():
    suite = parse("""
        properties:
          tests:
            - name: c
              tests:
                - name: x
    """)
    collection = suite.collections[0]
    test = collection.tests[0]
    assert collection.type == "variable"
    assert collection.timeout == 180.0
    assert (collection.set_up_code, collection.input_answers, collection.success_dependency) == (
        (), (), ())
    assert (test.qualification, test.relative_tolerance, test.absolute_tolerance) == (
        "verifyEqual", 1e-12, 1e-4)
    assert (test.allowed_occurance_range, test.occurance_type) == ((0, 0), "NAME")
    assert (test.type_check, test.shape_check, test.verbosity) == (True, True, None)
    assert (test.value, test.eval_string, test.pattern, test.count_requirement) == (
        None, None, None, None)


def test_fields_inherit_suite_to_collection_to_test_and_explicit_values_win():
    suite = parse("""
        properties:
          qualification: contains
          relativeTolerance: 0.5
          absoluteTolerance: 0.25
          allowedOccuranceRange: [1, 3]
          occuranceType: STRING
          typeCheck: false
          shapeCheck: false
          verbosity: 2
          timeout: 7
          storeGraphicsArtifacts: true
          competency: loops
          successMessage: suite ok
          failureMessage: suite bad
          tests:
            - name: c
              absoluteTolerance: 0.75
              timeout: 0.5
              tests:
                - name: inherits
                  pattern: "1"
                - name: explicit
                  qualification: verifyEqual
                  absoluteTolerance: 0
                  typeCheck: true
                  verbosity: 0
    """)
    collection = suite.collections[0]
    inherits, explicit = collection.tests
    assert (collection.timeout, collection.store_graphics_artifacts, collection.competency) == (
        0.5, True, "loops")
    assert (collection.success_message, collection.failure_message) == (None, None)
    assert (inherits.qualification, inherits.relative_tolerance, inherits.absolute_tolerance) == (
        "contains", 0.5, 0.75)
    assert (inherits.allowed_occurance_range, inherits.occurance_type) == ((1, 3), "STRING")
    assert (inherits.type_check, inherits.shape_check, inherits.verbosity) == (False, False, 2)
    assert (inherits.success_message, inherits.failure_message) == (None, None)
    assert (explicit.qualification, explicit.absolute_tolerance) == ("verifyEqual", 0.0)
    assert (explicit.type_check, explicit.verbosity) == (True, 0)


def test_numbers_in_string_fields_become_strings_and_value_is_never_coerced():
    suite = parse("""
        properties:
          tests:
            - name: 5
              setUpCodeDependency: 3
              inputAnswers: [7, 2.5]
              setUpCode: x = 1
              successDependency: [1, setup, 2.0]
              moduleBlacklist: os
              tests:
                - name: 12
                  qualification: contains
                  pattern: 42
                  value: 42
                - name: y
                  value: "42"
    """)
    collection = suite.collections[0]
    assert collection.name == "5"
    assert collection.set_up_code_dependency == "3"
    assert collection.input_answers == ("7", "2.5")
    assert collection.set_up_code == ("x = 1",)
    assert collection.success_dependency == (1, "setup", "2.0")
    assert collection.module_blacklist == ("os",)
    first, second = collection.tests
    assert (first.name, first.pattern, first.value) == ("12", "42", 42)
    assert second.value == "42"


def test_an_empty_input_answers_list_counts_as_absent():
    suite = parse("""
        properties:
          tests:
            - name: c
              inputAnswers: []
              tests: []
    """)
    assert suite.collections[0].input_answers == ()


@pytest.mark.parametrize("text, expected", [
    ("""
     properties:
       tests:
         - name: c
           tests:
             - name: x
             - name: y
               foo: 1
     """, "test.yaml: properties.tests[0].tests[1].foo: unknown field"),
    ("""
     properties:
       tests:
         - name: a
           tests: []
         - name: b
           tests: []
         - name: c
           tests:
             - name: x
               qualification: equal
     """, "test.yaml: properties.tests[2].tests[0].qualification: must be one of verifyEqual, "
          "matches, contains, startsWith, endsWith, count, regexp, got 'equal'"),
    ("""
     properties:
       tests:
         - tests: []
     """, "test.yaml: properties.tests[0].name: is required"),
    ("""
     properties:
       tests:
         - name: c
     """, "test.yaml: properties.tests[0].tests: is required"),
    ("""
     properties:
       tests:
         - name: c
           tests:
             - name: x
               pattern: true
     """, "test.yaml: properties.tests[0].tests[0].pattern: must be a string, got True"),
    ("""
     properties:
       relativeTolerance: 0
     """, "test.yaml: properties.relativeTolerance: must be greater than 0, got 0"),
    ("""
     properties:
       absoluteTolerance: -1
     """, "test.yaml: properties.absoluteTolerance: must be at least 0, got -1"),
    ("""
     properties:
       timeout: soon
     """, "test.yaml: properties.timeout: must be a number, got 'soon'"),
    ("version: 1.0.0.0.0",
     "test.yaml: version: must be a version like 1.0 or 2.1.3, got '1.0.0.0.0'"),
    ("version: '01.0'", "test.yaml: version: must be a version like 1.0 or 2.1.3, got '01.0'"),
    ("""
     properties:
       verbosity: 4
     """, "test.yaml: properties.verbosity: must be at most 3, got 4"),
    ("""
     properties:
       tests:
         - name: c
           type: plot
           tests: []
     """, "test.yaml: properties.tests[0].type: must be one of variable, error, warning, help, "
          "stdout, graphics, structural, linting, exist, got 'plot'"),
    ("""
     properties:
       allowedOccuranceRange: [1]
     """, "test.yaml: properties.allowedOccuranceRange: must be a list of two integers "
          "[min, max], got [1]"),
    ("""
     properties:
       tests:
         - {type: structural, name: loops, file: ex.py,
            tests: [{name: while, allowedOccuranceRange: [3, 1]}]}
     """, "test.yaml: properties.tests[0].tests[0].allowedOccuranceRange: must be [min, max] "
          "with min at most max, or no count passes, got [3, 1]"),
    # CodeAbility skipped each structural test counting a token type that is none, scored as
    # the student's.
    ("""
     properties:
       tests:
         - {type: structural, name: loops, file: ex.py, occuranceType: name,
            tests: [{name: while}]}
     """, "test.yaml: properties.tests[0].occuranceType: must be a token type of Python's token "
          "module, such as NAME, OP, STRING or NUMBER, got 'name'; did you mean NAME?"),
    ("""
     properties:
       tests:
         - name: ''
           tests: []
     """, "test.yaml: properties.tests[0].name: must not be empty"),
    ("""
     properties:
       typeCheck: 'yes'
     """, "test.yaml: properties.typeCheck: must be true or false, got 'yes'"),
    ("""
     properties:
       tests:
         - name: c
           successDependency: [1, true]
           tests: []
     """, "test.yaml: properties.tests[0].successDependency[1]: must be a string, an integer "
          "or a list of them, got True"),
    ("""
     properties:
       tests:
         - name: c
           inputAnswers: [false]
           tests: []
     """, "test.yaml: properties.tests[0].inputAnswers[0]: must be a string, got False"),
    ("""
     properties:
       tests:
         - name: c
           tests:
             - name: x
               countRequirement: -1
     """, "test.yaml: properties.tests[0].tests[0].countRequirement: must be at least 0, got -1"),
    ("""
     properties:
       tests:
         - name: c
           qualification: regexp
           tests:
             - name: x
               pattern: "("
     """, "test.yaml: properties.tests[0].tests[0].pattern: is not a valid regular expression: "
          "missing ), unterminated subpattern at position 0"),
    ("""
     properties:
       tests:
         - name: c
           tests:
             - name: x
               qualification: regexp
     """, "test.yaml: properties.tests[0].tests[0].pattern: is required for qualification "
          "regexp"),
    ("""
     properties:
       tests:
         - name: c
           type: stdout
           qualification: contains
           tests:
             - name: out
     """, "test.yaml: properties.tests[0].tests[0].pattern: is required for qualification "
          "contains"),
    ("""
     properties:
       tests:
         - name: c
           tests:
             - name: x
               qualification: count
               pattern: a
     """, "test.yaml: properties.tests[0].tests[0].countRequirement: is required for "
          "qualification count"),
    ("""
     properties:
       tests:
         - name: c
           type: structural
           tests:
             - name: for
     """, "test.yaml: properties.tests[0].file: is required for collection type structural"),
    ("""
     properties:
       tests:
         - name: c
           type: linting
           entryPoint: ex.py
           tests:
             - name: style
     """, "test.yaml: properties.tests[0].file: is required for collection type linting"),
    ("""
     properties:
       tests:
         - name: c
           type: exist
           tests:
             - name: ex.py
     """, "test.yaml: properties.tests[0].file: is required for collection type exist"),
    ("properties: [1]", "test.yaml: properties: must be a mapping of fields, got [1]"),
    ("- 1", "test.yaml: (top level): must be a mapping of fields, got [1]"),
    ("""
     properties:
       tests:
         - name: c
           tests: 3
     """, "test.yaml: properties.tests[0].tests: must be a list, got 3"),
])
def test_invalid_files_name_the_field_and_the_problem(text, expected):
    assert problems(text) == [expected]


def test_every_problem_of_a_file_is_reported():
    found = problems("""
        speed: 3
        properties:
          tests:
            - name: c
              timeout: -2
              tests:
                - value: 1
    """)
    assert found == ["test.yaml: speed: unknown field",
                     "test.yaml: properties.tests[0].timeout: must be at least 0, got -2",
                     "test.yaml: properties.tests[0].tests[0].name: is required"]


# A line indented otherwise than the lines above it lead to, as staff are told it (PyYAML's words:
# "expected <block end>, but found '<block mapping start>'").
NOT_INDENTED_AS_ABOVE = ("this line is not indented as the lines above it: a field starts exactly "
                         "under the other fields it belongs with, a list item (`- `) under the "
                         "other items of its list")


@pytest.mark.parametrize("text, expected", [
    ("name: x\nproperties:\n  a: b: c\n",
     "line 3, column 7: mapping values are not allowed here"),
    ("properties:\n\t- name: values\n",
     "line 2, column 1: a tab character, which YAML does not take as indentation: indent with "
     "spaces"),
    ("properties:\n  tests:\n    - name: values\n  \t  tests: []\n",
     "line 4, column 3: a tab character, which YAML does not take as indentation: indent with "
     "spaces"),
    ("properties: [\n",
     "line 2, column 1: expected the node content, but found '<stream end>' "
     "(while parsing a flow node)"),
    ("values: [1, 2\n",
     "line 2, column 1: expected ',' or ']', but got '<stream end>' "
     "(while parsing a flow sequence at line 1, column 9)"),
    ("a:\n  - x\n  y: 1\n", f"line 3, column 3: {NOT_INDENTED_AS_ABOVE}"),
    ("properties:\n    tests: []\n  timeout: 3\n", f"line 3, column 3: {NOT_INDENTED_AS_ABOVE}"),
    ("properties:\n  tests:\n    - name: a\n   - name: b\n",
     f"line 4, column 4: {NOT_INDENTED_AS_ABOVE}"),
    ("name: one\nvalue: \"bell \x07\"\n",
     "line 2, column 14: unacceptable character #x0007: special characters are not allowed"),
])
@pytest.mark.parametrize("file_name", ["test.yaml", "meta.yaml"])
def test_a_yaml_syntax_error_is_one_line_naming_file_line_and_column(
        tmp_path: Path, file_name: str, text: str, expected: str):
    path = tmp_path / file_name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        (load_test_suite if file_name == "test.yaml" else load_meta)(path)
    assert str(caught.value) == f"{file_name} {expected}"


@pytest.mark.timeout(30)
def test_a_billion_laughs_in_a_field_is_refused_without_being_expanded(tmp_path: Path):
    anchors = ['&a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for name, previous in zip("bcdefghi", "abcdefgh"):
        anchors.append(f"&{name} [{', '.join([f'*{previous}'] * 9)}]")
    path = tmp_path / "test.yaml"
    path.write_text("properties:\n  tests:\n    - name: c\n      inputAnswers:\n"
                    + "".join(f"        - {anchor}\n" for anchor in anchors)
                    + "      tests: [{name: x}]\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_test_suite(path)
    problems = str(caught.value).splitlines()
    assert len(problems) == 9
    assert problems[0] == ("test.yaml line 5: properties.tests[0].inputAnswers[0]: must be a "
                           "string, got ['lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', "
                           "...")
    assert problems[8] == ("test.yaml line 13: properties.tests[0].inputAnswers[8]: must be a "
                           "string, got [[[[...], [...], [...], [...], [...], [...], [...], "
                           "[...]...")


@pytest.mark.parametrize("text, reason", [
    ("value: " + "[" * 1000 + "]" * 1000, "it is nested too deeply to be read"),
    ("deadline: 2024-02-30", "day is out of range for month"),
    ("value: " + "1" * 5000, "Exceeds the limit (4300 digits) for integer string conversion"),
])
@pytest.mark.parametrize("file_name", ["test.yaml", "meta.yaml"])
def test_yaml_too_deep_or_with_values_python_cannot_build_is_invalid(
        tmp_path: Path, file_name: str, text: str, reason: str):
    path = tmp_path / file_name
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        (load_test_suite if file_name == "test.yaml" else load_meta)(path)
    assert str(caught.value).startswith(f"{file_name}: (file): is not valid YAML: {reason}")
