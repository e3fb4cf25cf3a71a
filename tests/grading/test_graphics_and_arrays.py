"""graphics collections (headless pyplot, artifacts) and numpy/pandas values out of the sandbox."""

from __future__ import annotations

import pytest

from pipeline.grading import GradeOptions, grade
from tests.grading.builders import collection, make_assignment

PLOT = """
    import matplotlib.pyplot as plt
    import numpy as np
    x = np.linspace(0, 1, 5)
    plt.figure(1)
    plt.plot(x, x ** 2)
    plt.title("Squares")
    plt.xlabel("{xlabel}")
    plt.show()
"""
ARRAYS = """
    import numpy as np
    import pandas as pd
    arr = np.arange(3.0){arr_extra}
    frame = pd.DataFrame({{"a": [1, 2], "b": [0.5, 1.5]}})
    series = pd.Series([1, 2, 3], name="s")
    scalar = np.float64(2.5)
    first_random = np.random.rand()
"""
TEST_YAML = """
properties:
  tests:
    - type: graphics
      name: plot
      entryPoint: plot.py
      storeGraphicsArtifacts: true
      tests:
        - name: figure(1).axes[0].get_title()
        - name: figure(1).axes[0].get_xlabel()
        - name: gcf().number
        - name: figure(1).axes[0].lines[0].get_ydata()
        - name: figure(1).axes[0].get_title()
          qualification: startsWith
          pattern: Squ
        - name: no_such_attribute
    - name: arrays
      entryPoint: arrays.py
      tests:
        - name: arr
        - name: frame
        - name: series
        - name: scalar
        - name: scalar
          value: 2.5
        - name: first_random
          value: 0.417022004702574
          typeCheck: false
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("graphics")
    student, reference = make_assignment(
        tmp, TEST_YAML,
        {"plot.py": PLOT.format(xlabel="x"), "arrays.py": ARRAYS.format(arr_extra="")},
        {"plot.py": PLOT.format(xlabel="t"), "arrays.py": ARRAYS.format(arr_extra="[:2]")})
    output = tmp / "output"
    return grade(student, reference, options=GradeOptions(output_dir=output)), output


@pytest.mark.slow
def test_graphics_tests_evaluate_pyplot_paths(graded):
    report, _ = graded
    plot = collection(report, "plot")
    assert plot.status == "COMPLETED"
    assert [(t.result, t.details) for t in plot.tests] == [
        ("PASSED", None),
        ("FAILED", "E   AssertionError: Variable `figure(1).axes[0].get_xlabel()` has incorrect "
                   "value (`t` instead of `x`)"),
        ("PASSED", None),
        ("PASSED", None),
        ("PASSED", None),
        ("FAILED", "E   KeyError: 'Variable `no_such_attribute` not found in student "
                   "namespace'"),
    ]


@pytest.mark.slow
def test_graphics_artifacts_are_saved_per_side(graded):
    _, output = graded
    names = sorted(path.name for path in (output / "artifacts").iterdir())
    assert names == ["reference_test_0_figure_1.png", "student_test_0_figure_1.png"]
    assert (output / "artifacts" / names[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_numpy_and_pandas_values_come_back_typed(graded):
    report, _ = graded
    arrays = collection(report, "arrays")
    assert [(t.result, t.details) for t in arrays.tests] == [
        ("FAILED", "E   AssertionError: Variable `arr` has incorrect shape, expected: (3,), "
                   "obtained (2,)"),
        ("PASSED", None),
        ("PASSED", None),
        ("PASSED", None),
        ("FAILED", "E   AssertionError: Variable `scalar` has incorrect type, expected: "
                   "<class 'float'>, obtained <class 'numpy.float64'>"),
        ("PASSED", None),
    ]


@pytest.mark.slow
def test_a_collection_starting_in_a_plotting_collections_namespace_numbers_its_figures_from_1(
        tmp_path):
    """§4: all figures are closed before and after each collection's run, the replayed ones
    of a setUpCodeDependency included."""
    code = {"first.py": "import matplotlib.pyplot as plt\nplt.figure()\nplt.title('first')\n",
            "second.py": "import matplotlib.pyplot as plt\nplt.figure()\nplt.title('second')\n"}
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - {id: first, type: graphics, name: first, entryPoint: first.py,
               tests: [{name: get_fignums()}]}
            - type: graphics
              name: second
              entryPoint: second.py
              setUpCodeDependency: first
              tests:
                - name: get_fignums()
                  value: [1]
                - name: figure(1).axes[0].get_title()
                  value: second
    """, code, code)
    second = collection(grade(student, reference), "second")
    assert [(t.result, t.details) for t in second.tests] == [("PASSED", None), ("PASSED", None)]
