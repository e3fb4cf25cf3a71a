"""Grading slots: at most so many runs of a host grade at once, however many processes wait."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from pipeline.lock_files import open_lock_file

SLOT_FILE = "slot-{number}.lock"
# Waiters look for a free slot again after these pauses (doubling up to the longest): the kernel
# cannot wait for any one of several locks, and a slot stays held for a grading's length.
FIRST_PAUSE_SECONDS, LONGEST_PAUSE_SECONDS = 0.005, 0.05
ALL_BUSY = "all %d grading slots of the host are busy; waiting for one"

log = logging.getLogger(__name__)


@contextlib.contextmanager
def grading_slot(folder: Path, slots: int, *,
                 on_wait: Callable[[], None] | None = None) -> Iterator[int]:
    """Hold one of a host's `slots` grading slots while the block runs; return its number.

    Worker processes beyond the slots fetch, extract and report while others grade, so the
    cores stay busy when GitLab is slow to answer; the slots keep the sandboxes running at once,
    and their memory, to what the host was sized for. A slot is an exclusive lock on a file of
    the folder, which every worker process of the host shares: the kernel drops it when its
    process dies, so a killed worker never keeps one. `on_wait` is called once when every slot
    is busy, before waiting for one. Slots are not handed out in order of arrival, and the wait
    counts toward the task's time limit.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pause = FIRST_PAUSE_SECONDS
    taken = _take_free_slot(folder, slots)
    if taken is None:
        if on_wait is not None:
            on_wait()
        log.info(ALL_BUSY, slots)
    while taken is None:
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
        taken = _take_free_slot(folder, slots)
    number, lock_file = taken
    with lock_file:  # closing it drops the lock
        yield number


def _take_free_slot(folder: Path, slots: int) -> tuple[int, BinaryIO] | None:
    """Lock the first free slot, looking from a place of this process's own; None if none is.

    The lock is held through a file object: should an exception (a task's time limit) arrive
    before the caller holds it, dropping the object closes the file and frees the slot.
    """
    start = os.getpid() % slots
    for number in (*range(start, slots), *range(start)):
        lock_file = open_lock_file(folder / SLOT_FILE.format(number=number))
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            continue
        except BaseException:
            lock_file.close()
            raise
        return number, lock_file
    return None
