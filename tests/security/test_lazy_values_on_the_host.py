"""A value a few bytes long cannot stand for a billion elements the host makes to compare it."""

from __future__ import annotations

import pytest

from pipeline.grading import grade
from tests.grading.builders import make_assignment, one_value_yaml

LENGTH = "10 ** 12"
# The student's x and the reference's: a range against an array, a RangeIndex against a number,
# each inside a list, whose type alone is checked.
LAZY_VALUES = {
    "range": (f"x = [range({LENGTH})]\n", "import numpy as np\nx = [np.arange(3)]\n"),
    "RangeIndex": (f"import pandas as pd\nx = [pd.RangeIndex({LENGTH})]\n", "x = [5]\n"),
}
# The student's program that writes a value's tagged JSON to the result channel and ends: the
# runner never writes its own result, and nothing checked the value in the sandbox. `array(n)` is
# the data of an array of n zero bytes.
FORGERY = """
import base64, json, os
def array(count):
    return {{"t": "ndarray", "dtype": "|i1", "shape": [count],
            "v": base64.b64encode(bytes(count)).decode()}}
value = {value}
document = {{"error": None, "entry_seconds": 0, "stdout": None, "stdout_truncated": False,
            "figures": [], "values": {{"x": {{"found": True, "value": value}}}}, "texts": {{}},
            "evals": {{}}}}
channel = os.open("/opt/gradehook/result", os.O_WRONLY)
os.write(channel, ("\\n" + json.dumps(document) + "\\n").encode())
os._exit(0)
"""
FORGED_RANGE_INDEX = FORGERY.format(value=f"""{{"t": "list", "v": [{{
    "t": "rangeindex", "v": ["0x0", hex({LENGTH}), "0x1"], "name": {{"t": "none"}}}}]}}""")
# Values whose data holds a code of a byte for each of their elements, 1,200,000 in all (two for
# each of 600,000 labels of a MultiIndex), against the same: comparing made an object of each
# element in the worker, and a tuple of each label (190 MB for 3 million labels, each side's);
# and each value as forged data.
ELEMENTS = 600_000
LEVEL = '{"t": "index", "name": {"t": "none"}, "data": {"kind": "numpy", "v": array(1)}}'
CODED_VALUES = {
    "CategoricalIndex": (
        f"x = pd.CategoricalIndex(pd.Categorical.from_codes(np.zeros({2 * ELEMENTS}, 'i1'), "
        "categories=[0]))",
        FORGERY.format(value=f"""{{"t": "index", "name": {{"t": "none"}}, "data": {{
    "kind": "category", "categories": {LEVEL}, "codes": array({2 * ELEMENTS}),
    "ordered": False}}}}""")),
    "MultiIndex": (
        f"x = pd.MultiIndex.from_arrays([np.zeros({ELEMENTS}, 'i1')] * 2)",
        FORGERY.format(value=f"""{{"t": "multiindex", "levels": [{LEVEL}, {LEVEL}],
    "codes": [array({ELEMENTS}), array({ELEMENTS})],
    "names": [{{"t": "none"}}, {{"t": "none"}}]}}""")),
}


def _graded_x(tmp_path, student_code: str, reference_code: str):
    student, reference = make_assignment(tmp_path, one_value_yaml(), {"ex.py": reference_code},
                                         {"ex.py": student_code})
    [run] = grade(student, reference).tests
    return run.tests[0]


@pytest.mark.parametrize("kind", sorted(LAZY_VALUES))
def test_a_range_of_more_elements_than_a_value_may_have_is_not_compared(tmp_path, kind):
    """Before, a range or a pandas RangeIndex, three numbers in its data, was compared as the
    elements it stands for: numpy made them all in the worker (a length of 10 ** 9 took 8 GB),
    and a length it could not make raised MemoryError out of the grading, which ended as our
    error. Its elements now count as parts of the value, of which it may have a million."""
    student_code, reference_code = LAZY_VALUES[kind]
    test = _graded_x(tmp_path, student_code, reference_code)
    assert (test.result, test.details) == (
        "FAILED", "E   Failed: Variable `x` of type list cannot be compared with the expected "
        "value: value has more than 1000000 parts")


def test_a_forged_range_index_of_more_elements_than_a_value_may_have_is_refused(tmp_path):
    """The host counts the elements itself: the student's code can hand back any data."""
    test = _graded_x(tmp_path, FORGED_RANGE_INDEX, "x = [5]\n")
    assert (test.result, test.details) == (
        "FAILED", "E   Failed: Variable `x` came back from the sandbox in an unreadable form: "
        "value has more than 1000000 parts")


@pytest.mark.parametrize("kind", sorted(CODED_VALUES))
def test_a_value_coded_in_fewer_parts_than_it_has_elements_is_not_compared(tmp_path, kind):
    """Each element counts as a part of the value (each label of a MultiIndex and each of its
    levels' values, as the items of a list of tuples do)."""
    code = "import numpy as np\nimport pandas as pd\n" + CODED_VALUES[kind][0] + "\n"
    test = _graded_x(tmp_path, code, code)
    assert (test.result, test.details) == (
        "FAILED", f"E   Failed: Variable `x` of type pandas.{kind} cannot be compared with the "
        "expected value: value has more than 1000000 parts")


@pytest.mark.parametrize("kind", sorted(CODED_VALUES))
def test_a_forged_value_coded_in_fewer_parts_than_it_has_elements_is_refused(tmp_path, kind):
    test = _graded_x(tmp_path, CODED_VALUES[kind][1], "x = 5\n")
    assert (test.result, test.details) == (
        "FAILED", "E   Failed: Variable `x` came back from the sandbox in an unreadable form: "
        "value has more than 1000000 parts")


CATEGORICAL_FRAME = ("import numpy as np\nimport pandas as pd\n"
                     f"c = pd.Categorical.from_codes(np.zeros({ELEMENTS * 2 // 3}, 'i1'), "
                     "categories=[0])\nframe = pd.DataFrame({'p': c, 'q': c})\n")


def test_a_dataframe_of_categorical_columns_is_compared_as_before(tmp_path):
    """A variable's DataFrame (or Series) is compared by its `equals`, its categorical columns
    by their codes, making no object of an element. Before, their elements counted as parts of
    the value: 400,000 rows of two such columns, 1,200,000 parts with the RangeIndex, failed a
    correct answer, 'value has more than 1000000 parts'."""
    code = CATEGORICAL_FRAME + "x = frame\n"
    test = _graded_x(tmp_path, code, code)
    assert (test.result, test.details) == ("PASSED", None)


def test_a_dataframe_of_categorical_columns_inside_a_list_is_not_compared(tmp_path):
    """Inside a list, it is compared as an array of its elements, an object each (a list of
    that DataFrame of 2 million rows took 140 MB): those of its categorical columns count."""
    code = CATEGORICAL_FRAME + "x = [frame]\n"
    test = _graded_x(tmp_path, code, code)
    assert (test.result, test.details) == (
        "FAILED", "E   Failed: Variable `x` of type list cannot be compared with the expected "
        "value: value has more than 1000000 parts")
