"""Tell which testFile withheld from a run an error of that run failed to find: the course's."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import PurePosixPath

from pipeline.grading.staging import IMPORTED_SUFFIXES

# The module an import could not find (ModuleNotFoundError), and the name `from module import
# name` could not find in a module (ImportError), which may be a submodule.
MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")
MISSING_NAME = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
# What may follow a testFile's path in a message: the path of a file inside it (of a testFiles
# folder), then where a path ends: a quote, a blank, a punctuation mark or the message's end (`No
# such file or directory: '/opt/gradehook/tests/case1.txt'`, numpy's `... case1.txt not found.`).
AT_OR_INSIDE = r"""(?:/[^'"\s]*)?(?=['"\s,:;)]|$)"""


def withheld_file_named(message: str, withheld: Collection[str], tests_dir: str) -> str | None:
    """Return the testFile withheld from a run (a path in its tests' folder, tests_dir in the
    sandbox) that an error of the run names, None if it names none: a path at or inside it in
    that folder, which the run lacks (FileNotFoundError), or a module it would be, by its path
    from any of the folders above it (ModuleNotFoundError, ImportError)."""
    modules = [found.split(".") for found in MISSING_MODULE.findall(message)] \
        + [[*module.split("."), name] for name, module in MISSING_NAME.findall(message)]
    for test_file in sorted(withheld):
        if re.search(re.escape(f"{tests_dir}/{test_file}") + AT_OR_INSIDE, message):
            return test_file
        parts = _module_parts(test_file)
        if parts and any(parts[-len(module):] == module for module in modules):
            return test_file
    return None


def _module_parts(test_file: str) -> list[str]:
    """Return the parts of the module path a testFile is imported by (`helpers/checks.py`:
    helpers, checks), none for a data file."""
    path = PurePosixPath(test_file)
    if path.suffix not in IMPORTED_SUFFIXES:
        return []
    return [*path.parent.parts, path.stem]
