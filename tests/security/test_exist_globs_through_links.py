"""Links a student commits to their own folders cannot make an exist test's glob run for hours."""

from __future__ import annotations

import os

import pytest

from pipeline.grading import grade
from tests.grading.builders import make_assignment, outcomes

PATTERN = "*/*/*/x.py"
EXIST = f"""
    properties:
      tests:
        - {{type: exist, name: layout, file: "{PATTERN}", tests: [{{name: layout}}]}}
"""
# Links to the student's own folder: each is a folder holding them all again.
LINKS = 1000


@pytest.mark.timeout(60)
@pytest.mark.parametrize("student_files, verdict", [
    ({}, ("FAILED", f"E   FileNotFoundError: File with pattern `{PATTERN}` not found in student "
                    "namespace")),
    ({"x.py": ""}, ("PASSED", None)),
], ids=["no match", "a match through the links"])
def test_links_to_the_students_own_folder_are_globbed_through_once(tmp_path, student_files,
                                                                   verdict):
    """Before, glob looked into a folder again for each path leading to it: through a thousand
    links to `.`, `*/*/*/x.py` looked into the student's folder a million times and checked a
    billion paths, holding the worker for hours. Each folder is now matched against each part
    of the pattern once; the links still lead where they lead (`l1/l2/l3/x.py` matches)."""
    student, reference = make_assignment(tmp_path, EXIST, {"a/b/c/x.py": ""}, student_files)
    for number in range(LINKS):
        os.symlink(".", student / f"l{number}")

    assert outcomes(grade(student, reference))[("layout", "layout")] == verdict
