"""A student's code searching its sandbox finds nothing of the hidden tests nor the reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.grading import grade, report_to_json
from pipeline.reports import comment_marker, mr_comment_markdown, result_page_html
from tests.grading.builders import make_assignment, outcomes
from tests.reports.report_samples import run

# Every hidden thing below carries this mark; the probe spells it in two pieces, so that its own
# file holds none.
MARK = "qx7-"
# The student's code: every readable file outside the system's and the interpreter's folders
# (its working directory and those above it among them), its environment, and each process's
# command line, environment and mounts in /proc, searched for the mark.
PROBE = """
import os
import sys

MARK = "qx" + "7-"
SKIPPED = {"/proc", "/sys", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
           "/libx32", os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}


def _read(path):
    try:
        with open(path, "rb") as file:
            return file.read(1 << 20).decode("utf-8", "replace").replace("\\0", " ")
    except OSError:
        return ""


def _marked(place, text):
    return {f"{place}: {text[at:at + 30].split()[0]}" for at in range(len(text))
            if text.startswith(MARK, at)}


def found():
    seen = set()
    for name, value in os.environ.items():
        seen |= _marked("environment", f"{name}={value}")
    for folder, folders, files in os.walk("/"):
        folders[:] = [name for name in folders if os.path.join(folder, name) not in SKIPPED
                      and not os.path.isfile(os.path.join(folder, name, "pyvenv.cfg"))]
        for name in files:
            path = os.path.join(folder, name)
            seen |= _marked(path, _read(path))
    for process in os.listdir("/proc"):
        if process.isdigit() or process == "self":
            for name in ("cmdline", "environ", "mountinfo"):
                path = f"/proc/{process}/{name}"
                seen |= _marked(path, _read(path))
    return sorted(seen)
"""
REFERENCE_PROBE = f"def found():\n    return []  # {MARK}reference-code\n"
# An assignment to probe: the student's and the reference's folders, and a visible and a
# hidden test, each (collection or test file, test).
Case = tuple[Path, Path, tuple[str, str], tuple[str, str]]


VISIBLE_TEST = "from probe import found\n\n\ndef test_found():\n    {body}\n"


def _pytest_case(tmp_path: Path, hidden_files: dict[str, str], hidden_entry: str,
                 test_files: str, *, visible_body: str = "assert found() == []",
                 hidden_test: str = "test_secret.py") -> Case:
    """Build a pytest-mode assignment: the probing visible test (whose body may use a name a
    hidden test's file also has) beside hidden test files and the testFiles only they use."""
    student, reference = make_assignment(tmp_path, None, {
        "probe.py": REFERENCE_PROBE,
        "test_visible.py": VISIBLE_TEST.format(body=visible_body),
        **hidden_files,
    }, {"probe.py": PROBE}, meta_yaml=f"properties:\n  hiddenTests: [{hidden_entry}]\n"
                                      f"  testFiles: [{test_files}]\n")
    return (student, reference, ("test_visible.py", "test_found"), (hidden_test, "test_secret"))


def _pytest_mode(tmp_path: Path) -> Case:
    return _pytest_case(tmp_path, {
        "test_secret.py": f"from secret_data import ANSWER\n\n\ndef test_secret():\n"
                          f"    assert ANSWER == '{MARK}hidden-data'  # {MARK}hidden-source\n",
        "secret_data.py": f"ANSWER = '{MARK}hidden-data'\n",
    }, "test_secret.py", "secret_data.py")


def _pytest_mode_data_file(tmp_path: Path) -> Case:
    return _pytest_case(tmp_path, {
        "test_secret.py": "from pathlib import Path\n\n\ndef test_secret():\n"
                          "    answers = Path(__file__).parent / 'secret-answers.txt'\n"
                          f"    assert answers.read_text() == '{MARK}hidden-data'\n",
        "secret-answers.txt": f"{MARK}hidden-data",
    }, "test_secret.py", "secret-answers.txt")


def _pytest_mode_data_file_named_as_it_runs(tmp_path: Path) -> Case:
    # No reading of the hidden test's code finds the file's name: it is built as the test runs.
    return _pytest_case(tmp_path, {
        "test_secret.py": "from pathlib import Path\n\n\ndef test_secret():\n"
                          "    answers = Path(__file__).parent / ('secret-' + 'answers.txt')\n"
                          f"    assert answers.read_text() == '{MARK}hidden-data'\n",
        "secret-answers.txt": f"{MARK}hidden-data",
    }, "test_secret.py", "secret-answers.txt")


def _pytest_mode_tests_folder(tmp_path: Path) -> Case:
    return _pytest_case(tmp_path, {
        "secret/test_secret.py": "from pathlib import Path\n\n\ndef test_secret():\n"
                                 "    answers = Path(__file__).parent / 'answers.txt'\n"
                                 f"    assert answers.read_text() == '{MARK}hidden-data'\n",
        "secret/answers.txt": f"{MARK}hidden-data",
    }, "secret", "secret", hidden_test="secret/test_secret.py")


def _pytest_mode_data_file_named_like_a_variable(tmp_path: Path) -> Case:
    return _pytest_case(tmp_path, {
        "test_secret.py": "import json\nfrom pathlib import Path\n\n\ndef test_secret():\n"
                          "    expected = Path(__file__).parent / 'expected.json'\n"
                          f"    assert json.loads(expected.read_text()) == ['{MARK}hidden-data']\n",
        "expected.json": f'["{MARK}hidden-data"]',
    }, "test_secret.py", "expected.json",
        visible_body="expected = []\n    assert found() == expected")


def _pytest_mode_helper_named_like_a_variable(tmp_path: Path) -> Case:
    return _pytest_case(tmp_path, {
        "test_secret.py": "from data import ANSWER\n\n\ndef test_secret():\n"
                          f"    assert ANSWER == '{MARK}hidden-data'\n",
        "data.py": f"ANSWER = '{MARK}hidden-data'\n",
    }, "test_secret.py", "data.py", visible_body="data = found()\n    assert data == []")


def _test_yaml_mode(tmp_path: Path) -> Case:
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: visible
              entryPoint: probe.py
              tests:
                - name: found()
            - name: secret
              entryPoint: probe.py
              setUpCode: [import secret_helper]
              tests:
                - name: secret_helper.ANSWER + answer
        """, {"probe.py": f"{REFERENCE_PROBE}answer = '{MARK}hidden-expected'\n",
              "secret_helper.py": f"ANSWER = '{MARK}hidden-data'\n"},
        {"probe.py": f"{PROBE}\nanswer = 'qx' + '7-hidden-expected'\n"},
        meta_yaml="properties:\n  hiddenTests: [secret]\n  testFiles: [secret_helper.py]\n")
    return student, reference, ("visible", "found()"), ("secret", "secret_helper.ANSWER + answer")


def _test_yaml_mode_data_file_named_like_a_variable(tmp_path: Path) -> Case:
    student, reference = make_assignment(tmp_path, """
        properties:
          tests:
            - name: visible
              entryPoint: probe.py
              tests:
                - name: found() + expected
            - name: secret
              entryPoint: probe.py
              setUpCode:
                - import os, sys
                - folder = next(p for p in sys.path if os.path.isfile(f'{p}/expected.txt'))
              tests:
                - name: open(f'{folder}/expected.txt').read()
        """, {"probe.py": f"{REFERENCE_PROBE}expected = []\n",
              "expected.txt": f"{MARK}hidden-data"},
        {"probe.py": f"{PROBE}\nexpected = []\n"},
        meta_yaml="properties:\n  hiddenTests: [secret]\n  testFiles: [expected.txt]\n")
    return (student, reference, ("visible", "found() + expected"),
            ("secret", "open(f'{folder}/expected.txt').read()"))


@pytest.mark.parametrize("assignment", [_pytest_mode, _pytest_mode_data_file,
                                        _pytest_mode_data_file_named_as_it_runs,
                                        _pytest_mode_data_file_named_like_a_variable,
                                        _pytest_mode_helper_named_like_a_variable,
                                        _pytest_mode_tests_folder, _test_yaml_mode,
                                        _test_yaml_mode_data_file_named_like_a_variable])
def test_a_student_searching_the_visible_tests_sandbox_finds_nothing_hidden(
        tmp_path: Path, assignment):
    """Before, pytest mode's visible test files ran beside every meta.yaml testFile, also those
    that only hidden test files import: the student's code read a hidden test's data
    (`secret_data.py: qx7-hidden-data`) and showed it in a visible test's failure. The visible
    tests' run now lacks the testFiles only hidden test files name."""
    student, reference, visible, hidden = assignment(tmp_path)

    report = grade(student, reference)
    data = json.loads(report_to_json(report))
    students_read = mr_comment_markdown([(run(), data)], comment_marker("mr-1")) \
        + result_page_html(run(), data)

    found = outcomes(report)
    assert found[visible] == ("PASSED", None)
    assert MARK not in students_read
    # The hidden tests' own run still has what they need.
    assert found[hidden] == ("PASSED", None)
