"""Build small assignments on disk and read grading reports back as (result, details) pairs."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pipeline.grading import Report


# A student's module whose hold_every_descriptor() opens /dev/null until the sandbox's limit of
# open descriptors refuses, keeping every one; its own lines are the first 13.
HOLD_EVERY_DESCRIPTOR = ("import os\n\nheld = []\n\n\ndef hold_every_descriptor():\n"
                         "    try:\n        while True:\n"
                         "            held.append(os.open('/dev/null', os.O_RDONLY))\n"
                         "    except OSError:\n        pass\n\n\n")


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write files (dedented) under root and return root."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root


def make_assignment(tmp_path: Path, test_yaml: str | None, reference: dict[str, str],
                    student: dict[str, str], meta_yaml: str | None = None) -> tuple[Path, Path]:
    """Write a reference directory (with test.yaml and meta.yaml) and a student directory."""
    files = dict(reference)
    if test_yaml is not None:
        files["test.yaml"] = test_yaml
    if meta_yaml is not None:
        files["meta.yaml"] = meta_yaml
    reference_dir = write_files(tmp_path / "reference", files)
    student_dir = write_files(tmp_path / "student", student)
    return student_dir, reference_dir


def outcomes(report: Report) -> dict[tuple[str, str], tuple[str, str | None]]:
    """Return (collection name, test name) -> (result, first line of details)."""
    found = {}
    for collection in report.tests:
        for test in collection.tests:
            first = test.details.splitlines()[0] if test.details else None
            found[(collection.name, test.name)] = (test.result, first)
    return found


def collection(report: Report, name: str):
    """Return the collection report with the given name."""
    return next(c for c in report.tests if c.name == name)


def one_value_yaml(extra: str = "", tests: str = "") -> str:
    """Return a test.yaml of one collection `run` (entry point ex.py) testing `x`."""
    return f"""
        properties:
          tests:
            - name: run
              entryPoint: ex.py
              {extra}
              tests:
                - name: x
                {tests}
    """
