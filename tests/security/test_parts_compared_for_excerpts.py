"""A student's value whose parts cannot be compared with the expected ones fails its test; it
cannot end the grading as an error of gradehook's."""

from __future__ import annotations

import pytest

from pipeline.grading import grade
from tests.grading.builders import make_assignment, one_value_yaml

# The student's x and the reference's, each a list whose type alone the test checks: the
# excerpts of a failed test compare their items to find where they differ.
MISMATCHES = {
    # `'a' == array` is an array, whose truth Python cannot tell.
    "text against an array": ('x = ["a"]\n', "import numpy as np\nx = [np.arange(3)]\n"),
    "text against a Series": ('x = ["a"]\n', "import pandas as pd\nx = [pd.Series([1, 2])]\n"),
    # Its keys are the dict's as a set ({False, True} == {0, 1}), but the Series has no label 0.
    "Series of boolean labels against a dict": (
        "import pandas as pd\nx = [pd.Series([5, 6], index=[False, True])]\n",
        "x = [{0: 5, 1: 6}]\n"),
}


@pytest.mark.parametrize("mismatch", sorted(MISMATCHES))
def test_parts_that_cannot_be_compared_differ(tmp_path, mismatch):
    """Before, the excerpts of the two values met an error comparing such parts (ValueError:
    The truth value of an array with more than one element is ambiguous; KeyError: 0) and
    raised it out of the grading: the run ended as an error of gradehook's, not as the
    student's failure. Such parts now differ there, as the test found."""
    student_code, reference_code = MISMATCHES[mismatch]
    student, reference = make_assignment(tmp_path, one_value_yaml(), {"ex.py": reference_code},
                                         {"ex.py": student_code})
    [run] = grade(student, reference).tests
    test = run.tests[0]
    assert test.result == "FAILED"
    assert test.debug["actual"].startswith("[")
