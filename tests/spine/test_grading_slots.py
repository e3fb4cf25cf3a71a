"""Grading slots: no more runs of a host grade at once than it has slots, and none is kept."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

from pipeline import testing
from pipeline.grading_slots import ALL_BUSY, _take_free_slot, grading_slot
from pipeline.ledger.models import RunStatus, TestRun
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.processes import wait_for

ROOT = Path(__file__).resolve().parents[2]
HOLD_A_SLOT = """
import sys, time
from pathlib import Path
from pipeline.grading_slots import grading_slot
with grading_slot(Path(sys.argv[1]), 1):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_each_slot_is_held_by_one_holder_at_a_time(tmp_path):
    with grading_slot(tmp_path, 2) as first, grading_slot(tmp_path, 2) as second:
        assert {first, second} == {0, 1}
        assert _take_free_slot(tmp_path, 2) is None
    with grading_slot(tmp_path, 2):
        number, lock_file = _take_free_slot(tmp_path, 2)
        lock_file.close()


def test_a_waiter_takes_the_slot_once_it_is_given_back(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline.grading_slots")
    taken = threading.Event()
    with grading_slot(tmp_path, 1):
        waiter = threading.Thread(target=lambda: _hold_briefly(tmp_path, taken))
        waiter.start()
        _wait_until_told_to_wait(caplog)
        assert not taken.is_set()
    waiter.join(timeout=30)
    assert taken.is_set()


def _hold_briefly(folder, taken: threading.Event) -> None:
    with grading_slot(folder, 1):
        taken.set()


def _wait_until_told_to_wait(caplog) -> None:
    wait_for(lambda: any(record.msg == ALL_BUSY for record in caplog.records), timeout=60,
             what="a waiter to find every grading slot busy")


def test_a_slot_of_a_killed_process_is_free_again(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_SLOT, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline() == "holding\n"
        assert _take_free_slot(tmp_path, 1) is None
    finally:
        holder.kill()
        holder.wait()
    number, lock_file = _take_free_slot(tmp_path, 1)
    lock_file.close()
    assert number == 0


def test_a_run_waits_for_a_free_slot_before_it_grades(service_settings, git_server, caplog):
    _, settings = service_settings({"worker": {"grading_slots": 1}})
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {"week1/hello/hello.py": "greeting = 'hello'\n",
                                          "week1/hello/test.yaml": ONE_TEST})
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 'hello'\n"})
    run = queue_run(resources, commit_sha=sha)
    caplog.set_level(logging.INFO, logger="pipeline.grading_slots")
    grading = threading.Thread(
        target=lambda: testing.run_student_testing(resources, run.id, run.celery_task_id))

    with grading_slot(settings.grading_slot_folder, 1):
        grading.start()
        _wait_until_told_to_wait(caplog)
        waiting = _run(resources, run.id)
        assert (waiting.stage, waiting.progress, waiting.tested_at) == ("environment", 40, None)
        assert waiting.cloned_at is not None
        assert grading.is_alive()
    grading.join(timeout=120)

    graded = _run(resources, run.id)
    assert graded.status == RunStatus.PASSED
    assert graded.cloned_at == waiting.cloned_at  # the wait is not counted as cloning


def _run(resources, run_id: str) -> TestRun:
    with resources.sessions() as session:
        return session.get(TestRun, run_id)


def test_a_slot_taken_but_dropped_before_it_is_held_is_free_again(tmp_path):
    # A task's time limit may strike between taking a slot and holding it in the block.
    taken = _take_free_slot(tmp_path, 1)
    assert taken is not None
    del taken
    number, lock_file = _take_free_slot(tmp_path, 1)
    lock_file.close()
    assert number == 0
