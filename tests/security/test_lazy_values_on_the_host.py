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
# A MultiIndex of 600,000 labels of two levels, a byte a code (2.4 MB as data), against the same:
# comparing made a tuple of each label in the worker, 190 MB for 3 million labels, each side's.
LABELS = 600_000
MULTI_INDEX = f"import numpy as np\nimport pandas as pd\n" \
              f"x = pd.MultiIndex.from_arrays([np.zeros({LABELS}, 'i1')] * 2)\n"
# The same MultiIndex as its tagged JSON, written to the result channel by the student's code.
FORGED_MULTI_INDEX = f"""
import base64, json, os
def array(count):
    return {{"t": "ndarray", "dtype": "|i1", "shape": [count],
            "v": base64.b64encode(bytes(count)).decode()}}
level = {{"t": "index", "name": {{"t": "none"}}, "data": {{"kind": "numpy", "v": array(1)}}}}
value = {{"t": "multiindex", "levels": [level, level], "codes": [array({LABELS}), array({LABELS})],
         "names": [{{"t": "none"}}, {{"t": "none"}}]}}
document = {{"error": None, "entry_seconds": 0, "stdout": None, "stdout_truncated": False,
            "figures": [], "values": {{"x": {{"found": True, "value": value}}}}, "texts": {{}},
            "evals": {{}}}}
channel = os.open("/opt/gradehook/result", os.O_WRONLY)
os.write(channel, ("\\n" + json.dumps(document) + "\\n").encode())
os._exit(0)
"""
# The same RangeIndex as its tagged JSON, written to the result channel by the student's code,
# which then ends: the runner never writes its own result, and nothing checked it in the sandbox.
FORGED_RANGE_INDEX = f"""
import json, os
value = {{"t": "list", "v": [{{"t": "rangeindex", "v": ["0x0", hex({LENGTH}), "0x1"],
                              "name": {{"t": "none"}}}}]}}
document = {{"error": None, "entry_seconds": 0, "stdout": None, "stdout_truncated": False,
            "figures": [], "values": {{"x": {{"found": True, "value": value}}}}, "texts": {{}},
            "evals": {{}}}}
channel = os.open("/opt/gradehook/result", os.O_WRONLY)
os.write(channel, ("\\n" + json.dumps(document) + "\\n").encode())
os._exit(0)
"""


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


def test_a_multi_index_of_more_labels_than_a_value_may_have_parts_is_not_compared(tmp_path):
    """Each label of a MultiIndex, and each of its levels' values, counts as a part of the
    value, as the items of a list of tuples do."""
    test = _graded_x(tmp_path, MULTI_INDEX, MULTI_INDEX)
    assert (test.result, test.details) == (
        "FAILED", "E   Failed: Variable `x` of type pandas.MultiIndex cannot be compared with the "
        "expected value: value has more than 1000000 parts")


def test_a_forged_multi_index_of_more_labels_than_a_value_may_have_parts_is_refused(tmp_path):
    test = _graded_x(tmp_path, FORGED_MULTI_INDEX, MULTI_INDEX)
    assert (test.result, test.details) == (
        "FAILED", "E   Failed: Variable `x` came back from the sandbox in an unreadable form: "
        "value has more than 1000000 parts")
