"""A student's module named like one Python or the grader already has: the failure says so."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

from pipeline.grading import grade, pytest_mode, report_to_json
from pipeline.reports import comment_marker, mr_comment_markdown, result_page_html
from tests.grading.builders import make_assignment
from tests.reports.report_samples import run

STANDARD_FILE = ("Your random.py has the name of a Python standard module, which was imported "
                 "instead of yours: rename your file (and your imports).")
# A failure's card on the result page: its heading, and the "Why" entry if it has one.
CARD = re.compile(r"<h3>❌ (?P<name>.*?)</h3><dl>.*?(?:<dt>Why</dt><dd><pre>(?P<why>.*?)</pre>"
                  r"</dd>.*?)?</dl>")


def _explained(student_dir: Path, reference_dir: Path) -> tuple[dict[str, str | None], str]:
    """Grade a student's folder; return each failure card's "Why" by its heading, and the
    merge-request comment."""
    data = json.loads(report_to_json(grade(student_dir, reference_dir)))
    page = result_page_html(run(), data)
    whys = {unescape(re.sub("</?code>", "", card["name"])): card["why"] and unescape(card["why"])
            for card in CARD.finditer(page)}
    return whys, mr_comment_markdown([(run(), data)], comment_marker("mr-1"))


PICK_TESTS = "from random import pick\n\n\ndef test_pick():\n    assert pick() == 4\n\n\n" \
             "def test_pick_again():\n    assert pick() == 4\n"
TOTAL_TESTS = "from calc import total\n\n\ndef test_total():\n    assert total() == 3\n"
MEAN_TESTS = "from stats import mean\n\n\ndef test_mean():\n    assert mean([1, 3]) == 2\n"
STUDENT_PYTEST_FILES = {
    "random.py": "def pick():\n    return 4\n",
    # pluggy: a module pytest, which runs the tests, has imported.
    "calc.py": "import pluggy\n\n\ndef total():\n    return pluggy.total()\n",
    "pluggy.py": "def total():\n    return 3\n",
    # Their own module, which lacks the function: no module was passed over.
    "stats.py": "def average(values):\n    return sum(values) / len(values)\n",
}


def test_a_pytest_mode_failure_on_a_module_python_had_says_the_students_was_passed_over(
        tmp_path):
    """Before, a test file importing the student's random.py failed with `ImportError: cannot
    import name 'pick' from 'random' (/usr/lib/python3.11/random.py)` alone, and a helper of
    theirs calling their pluggy.py with `AttributeError: module 'pluggy' has no attribute
    'total'`: nothing said that Python had imported its own module of that name instead."""
    reference = {"random.py": STUDENT_PYTEST_FILES["random.py"], "test_pick.py": PICK_TESTS,
                 "calc.py": "def total():\n    return 3\n", "test_total.py": TOTAL_TESTS,
                 "stats.py": "def mean(values):\n    return sum(values) / len(values)\n",
                 "test_stats.py": MEAN_TESTS}
    whys, comment = _explained(*make_assignment(tmp_path, None, reference,
                                                STUDENT_PYTEST_FILES))

    assert whys == {
        "test_pick.py › all 2 tests": STANDARD_FILE,
        "test_total.py › test_total": "Your pluggy.py has the name of a module installed with "
                                      "the grader, which was imported instead of yours: "
                                      "rename your file (and your imports).",
        "test_stats.py › test_mean": None,
    }
    row = next(line for line in comment.split("\n") if "(test\\_pick\\.py)" in line)
    # After the error, whose standard module's path depends on the sandbox's Python.
    assert row.endswith(
        "/random.py) ` Your random\\.py has the name of a Python standard module\\, which was "
        "imported instead of yours\\: rename your file \\(and your imports\\)\\. |")


def test_a_module_installed_beside_the_grader_that_it_never_imports_is_named_so(tmp_path):
    """Before, a student's click.py passed over for the click package installed with gradehook
    (which no runner imports) read 'Your click.py has the name of a module the grader already
    uses', which it does not."""
    tests = "from click import clicks\n\n\ndef test_clicks():\n    assert clicks() == 3\n"
    student = {"click.py": "def clicks():\n    return 3\n"}
    whys, _ = _explained(*make_assignment(tmp_path, None, {**student, "test_clicks.py": tests},
                                          student))

    assert whys == {"test_clicks.py › test_clicks": (
        "Your click.py has the name of a module installed with the grader, which was imported "
        "instead of yours: rename your file (and your imports).")}


SHADOWING_YAML = """\
type: python
name: shadowing
properties:
  tests:
    - {name: Import, entryPoint: draw.py, tests: [{name: x}]}
    - {name: Folder, entryPoint: load.py, tests: [{name: x}]}
    - {name: Lookup, entryPoint: spread.py, tests: [{name: "spread([1, 3])"}]}
    - {name: Own, entryPoint: area.py, tests: [{name: x}]}
    - {name: Entry, entryPoint: random.py, tests: [{name: x}]}
"""
STUDENT_YAML_FILES = {
    "draw.py": "from random import pick\n\nx = pick()\n",
    "random.py": "def pick():\n    return 4\n\n\nx = pick()\n",
    "load.py": "from json.reader import load\n\nx = load()\n",
    "json/reader.py": "def load():\n    return 4\n",
    "spread.py": "import statistics\n\n\ndef spread(values):\n"
                 "    return statistics.spread(values)\n",
    "statistics.py": "def spread(values):\n    return max(values) - min(values)\n",
    # Their own module, which lacks the function: no module was passed over.
    "area.py": "from shapes import circle\n\nx = circle()\n",
    "shapes.py": "def square():\n    return 4\n",
}
REFERENCE_YAML_FILES = {"draw.py": "x = 4\n", "load.py": "x = 4\n", "area.py": "x = 4\n",
                        "random.py": "x = 4\n",
                        "spread.py": "def spread(values):\n    return max(values) - min(values)\n",
                        "test.yaml": SHADOWING_YAML}


def test_a_test_yaml_run_failing_on_a_module_python_had_says_the_students_was_passed_over(
        tmp_path):
    """Before, an entry point importing from the student's random.py crashed with `cannot
    import name 'pick' from 'random' (/usr/lib/python3.11/random.py)`, one importing their
    json folder with `No module named 'json.reader'`, and a test whose function called their
    statistics.py was not found, having raised `AttributeError: module 'statistics' has no
    attribute 'spread'`, none saying that Python had imported its own module instead. An entry
    point named random.py runs as any other (it is not imported)."""
    whys, _ = _explained(*make_assignment(tmp_path, None, REFERENCE_YAML_FILES,
                                          STUDENT_YAML_FILES))

    assert whys == {
        "Import › x": STANDARD_FILE,
        "Folder › x": "Your json folder has the name of a Python standard module, which was "
                      "imported instead of yours: rename your folder (and your imports).",
        "Lookup › spread([1, 3])": "Your statistics.py has the name of a Python standard "
                                   "module, which was imported instead of yours: rename your "
                                   "file (and your imports).",
        "Own › x": None,
    }


@pytest.mark.parametrize("shadowed", [
    None, "random", ["random", False, True], {"module": "random", "folder": False},
    {"module": "random", "folder": 0, "standard": True},
    {"module": "<b>random</b>", "folder": False, "standard": True},
])
def test_a_module_passed_over_that_is_not_a_runners_note_is_left_out(shadowed):
    """The events come from the student's process: a note of another shape is no runner's."""
    event = {"event": "test", "nodeid": "test_pick.py::test_pick", "outcome": "failed",
             "message": "ImportError: no", "place": None, "shadowed": shadowed}

    assert pytest_mode._shadowed(event) is None
    assert pytest_mode._shadowed({**event, "shadowed": {
        "module": "random", "folder": False, "standard": True}}) == {
        "module": "random", "folder": False, "standard": True}


@pytest.mark.parametrize("test_yaml, reference, student", [
    (None, {"runner.py": "def pick():\n    return 4\n",
            "test_pick.py": PICK_TESTS.replace("from random", "from runner")},
     {"runner.py": "def pick():\n    return 4\n"}),
    ("properties:\n  tests:\n    - {name: run, entryPoint: ex.py, tests: [{name: x}]}\n",
     {"ex.py": "x = 4\n"},
     {"ex.py": "from descriptor_meter import level\n\nx = level()\n",
      "descriptor_meter.py": "def level():\n    return 4\n"}),
])
def test_a_module_named_like_one_of_the_runners_own_is_the_students(
        tmp_path, test_yaml, reference, student):
    """Before, the sandbox's runners kept their own modules (runner, descriptor_meter,
    pytest_limits, pytest_watchdog) imported, so a student's runner.py in pytest mode, or
    descriptor_meter.py in test.yaml mode, was passed over for the grader's: `ImportError:
    cannot import name 'pick' from 'runner' (/opt/gradehook/lib/pipeline/grading/runner.py)`."""
    report = grade(*make_assignment(tmp_path, test_yaml, reference, student))

    results = [(test.result, test.details) for collection in report.tests
               for test in collection.tests]
    assert results and set(results) == {("PASSED", None)}
