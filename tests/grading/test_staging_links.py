"""Course files (meta.yaml additionalFiles) land inside the solution, never through its links."""

from __future__ import annotations

import os

from pipeline.grading import grade
from tests.grading.builders import make_assignment

META = """
properties:
  additionalFiles: [data.txt, inputs/cases.txt, tables]
"""
TEST_YAML = """
properties:
  tests:
    - {name: files, entryPoint: main.py, tests: [{name: data}, {name: cases}, {name: table}]}
"""
MAIN = ("data = open('data.txt').read()\n"
        "cases = open('inputs/cases.txt').read()\n"
        "table = open('tables/t1.csv').read()\n")
REFERENCE = {"main.py": MAIN, "data.txt": "course data\n", "inputs/cases.txt": "cases\n",
             "tables/t1.csv": "a,b\n"}


def test_links_a_student_committed_are_replaced_not_written_through(tmp_path):
    victim_file = tmp_path / "host" / "important.conf"
    victim_dir = tmp_path / "host" / "folder"
    victim_dir.mkdir(parents=True)
    victim_file.write_text("host setting\n")
    student, reference = make_assignment(tmp_path, TEST_YAML, REFERENCE, {"main.py": MAIN},
                                         meta_yaml=META)
    os.symlink(victim_file, student / "data.txt")
    os.symlink(victim_dir, student / "inputs")
    os.symlink(victim_dir, student / "tables")

    report = grade(student, reference)

    assert victim_file.read_text() == "host setting\n"
    assert list(victim_dir.iterdir()) == []
    assert report.course_error is None
    assert [(test.name, test.result) for test in report.tests[0].tests] == \
        [("data", "PASSED"), ("cases", "PASSED"), ("table", "PASSED")]


def test_a_course_folder_is_merged_into_the_students_folder_of_that_name(tmp_path):
    student, reference = make_assignment(
        tmp_path, TEST_YAML, REFERENCE,
        {"main.py": MAIN + "mine = open('tables/mine.csv').read()\n", "tables/mine.csv": "m\n",
         "tables/t1.csv": "student's copy\n"}, meta_yaml=META)

    report = grade(student, reference)

    assert [test.result for test in report.tests[0].tests] == ["PASSED"] * 3
