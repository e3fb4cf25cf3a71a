"""Values that cannot leave the sandbox fail their tests as the original engine's checks would."""

from __future__ import annotations

import pytest

from pipeline.grading import grade
from tests.grading.builders import make_assignment, outcomes

TEST_YAML = """
    properties:
      tests:
        - name: values
          entryPoint: calc.py
          tests:
            - name: add(2, 3)
            - name: mean
            - name: point
            - name: shape
            - name: big
            - name: same
            - name: nested
            - name: loose
              typeCheck: false
            - name: theirs
            - name: theirs_loose
              typeCheck: false
"""
REFERENCE = {"calc.py": """
    def add(a, b):
        return a + b
    mean = 2.5
    point = 3
    shape = (1, 2)
    big = [0]
    same = map(float, [1])
    nested = [1.0]
    loose = 2.5
    theirs = map(int, [])
    theirs_loose = map(int, [])
"""}
STUDENT = {"calc.py": """
    from geo import Shape
    def add(a, b):
        yield a + b
    class Point:
        pass
    mean = map(float, [2.5])
    point = Point()
    shape = Shape()
    big = list(range(1_000_001))
    same = map(float, [1])
    nested = [map(float, [1])]
    loose = map(float, [2.5])
    theirs = 3
    theirs_loose = 3
""", "geo.py": "class Shape:\n    pass\n"}
INCORRECT_TYPE = "E   AssertionError: Variable `{name}` has incorrect type, expected: <class " \
    "'{expected}'>, obtained <class '{obtained}'>"
OF_THIS_TYPE = "only values such as numbers, strings, lists, tuples, dicts, sets, numpy arrays " \
    "and pandas objects can be compared"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    student, reference = make_assignment(tmp_path_factory.mktemp("uncomparable"), TEST_YAML,
                                         REFERENCE, STUDENT)
    report = grade(student, reference)
    return outcomes(report), {test.name: test for test in report.tests[0].tests}


@pytest.mark.parametrize(("name", "expected", "obtained"), [
    ("add(2, 3)", "int", "generator"),
    ("mean", "float", "map"),
    ("point", "int", "Point"),  # the entry point's classes are in builtins, as in the original
    ("shape", "tuple", "geo.Shape"),
    ("theirs", "map", "int"),
])
def test_a_value_of_another_type_fails_the_type_check_naming_its_type(graded, name, expected,
                                                                      obtained):
    found, _ = graded
    assert found[("values", name)] == ("FAILED", INCORRECT_TYPE.format(
        name=name, expected=expected, obtained=obtained))


def test_the_failed_type_check_shows_the_value_as_the_program_wrote_it(graded):
    _, tests = graded
    assert tests["mean"].debug["expected"] == "2.5"
    assert tests["mean"].debug["actual"].startswith("<map object at 0x")


@pytest.mark.parametrize(("name", "details"), [
    ("big", "Variable `big` of type list cannot be compared with the expected value: value has "
            "more than 1000000 parts"),
    ("same", f"Variable `same` of type map cannot be compared with the expected value: "
             f"{OF_THIS_TYPE}"),
    ("loose", f"Variable `loose` of type map cannot be compared with the expected value: "
              f"{OF_THIS_TYPE}"),
    ("theirs_loose", f"Variable `theirs_loose` cannot be compared with the expected value, of "
                     f"type map: {OF_THIS_TYPE}"),
])
def test_a_value_of_the_same_type_that_cannot_be_compared_says_why(graded, name, details):
    found, _ = graded
    assert found[("values", name)] == ("FAILED", f"E   Failed: {details}")


def test_a_value_kept_without_its_text_has_no_excerpt(graded):
    _, tests = graded
    assert tests["big"].debug == {"expected": "[0]"}


def test_a_value_inside_a_compared_one_is_quoted_as_the_program_wrote_it(graded):
    found, _ = graded
    assert found[("values", "nested")] == (
        "FAILED", "E   AssertionError: Variable `nested` has incorrect value (`[<map obje...` "
                  "instead of `[1.0]`)")
