"""What a student's code writes to the sandbox's stderr reaches the worker's log only quoted."""

from __future__ import annotations

import logging

import pytest

from pipeline.grading import grade
from tests.grading.builders import make_assignment, one_value_yaml

# A record the student's code forges, then a terminal's title set, a screen cleared and a line
# written over by a carriage return: each would show in a terminal reading the log.
FORGED_RECORD = "2026-11-30 20:41:00,000 INFO pipeline.tasks.grading [42] run r1 passed: 1.0"
ESCAPES = "\x1b]0;owned\x07\x1b[2J\r" + FORGED_RECORD
# The student's code writes to every descriptor it may hold (the runner's copy of the sandbox's
# stderr among them), then ends without a result, by a signal (an os._exit would be told by the
# place it notes), so that the worker logs that stderr.
WRITTEN = f"\n{FORGED_RECORD}\n{ESCAPES}\n".encode()
WRITER = f"""
import os
import signal

for fd in range(3, 64):
    try:
        os.write(fd, {WRITTEN!r})
    except OSError:
        pass
os.kill(os.getpid(), signal.SIGKILL)
"""
PYTEST_FILE = "from ex import x\n\n\ndef test_x():\n    assert x == 1\n"


def _test_yaml_mode(tmp_path):
    return make_assignment(tmp_path, one_value_yaml(), {"ex.py": "x = 1\n"}, {"ex.py": WRITER})


def _pytest_mode(tmp_path):
    return make_assignment(tmp_path, None, {"ex.py": "x = 1\n", "test_ex.py": PYTEST_FILE},
                           {"ex.py": WRITER})


@pytest.mark.parametrize("assignment", [_test_yaml_mode, _pytest_mode])
def test_a_students_stderr_cannot_forge_log_records_or_reach_a_terminal(tmp_path, caplog,
                                                                        assignment):
    """Before, the end of the sandbox's stderr was logged as written: the student's code, which
    can write to the runner's copy of it, added log lines of its own making (a record saying a
    run passed) and terminal escapes (a window title set, the screen cleared) to the worker's
    log. Each line of it is now quoted behind a bar, its unprintable characters escaped."""
    student, reference = assignment(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pipeline.grading.execution"):
        grade(student, reference)

    logged = [record.getMessage() for record in caplog.records
              if "ended without its result" in record.getMessage()]
    assert logged, "the run's stderr must be logged for the staff"
    _, *quoted = logged[0].splitlines()
    assert quoted and all(line.startswith("  | ") for line in quoted), quoted
    assert not any(character in logged[0] for character in "\x1b\x07\r")
    # The staff still read what was written, escaped.
    assert f"  | {FORGED_RECORD}" in quoted
    assert "  | \\x1b]0;owned\\x07\\x1b[2J" in quoted
