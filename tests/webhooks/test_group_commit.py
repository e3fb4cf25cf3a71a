"""Group commit: concurrent callers' items share batches, and each caller gets its own result."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from tests.infra.processes import wait_for
from webhooks.group_commit import GroupCommit


class Writer:
    """A batch writer that records its batches and holds the first one until released."""

    def __init__(self, fail_batch: int | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.fail_batch = fail_batch

    def __call__(self, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.release.wait(timeout=30)
        if len(self.batches) == self.fail_batch:
            raise ConnectionError("ledger down")
        return [ValueError(item) if item.startswith("bad") else item.upper() for item in items]


def submit_while_first_is_written(writer: Writer, later: list[str]):
    group = GroupCommit(writer)
    with concurrent.futures.ThreadPoolExecutor(len(later) + 1) as pool:
        first = pool.submit(group.submit, "first")
        wait_for(lambda: writer.batches, timeout=30, what="the first batch to start")
        others = [pool.submit(group.submit, item) for item in later]
        wait_for(lambda: group.queued() == len(later), timeout=30,
                 what="the later items to queue up")
        writer.release.set()
        return group, first, others


def test_items_arriving_during_a_batch_are_written_together_next():
    writer = Writer()
    _, first, others = submit_while_first_is_written(writer, ["a", "b", "c"])
    assert first.result() == "FIRST"
    assert [future.result() for future in others] == ["A", "B", "C"]
    assert writer.batches[0] == ["first"]
    assert sorted(writer.batches[1]) == ["a", "b", "c"]
    assert len(writer.batches) == 2


def test_an_item_failed_by_the_writer_raises_for_its_caller_only():
    writer = Writer()
    _, first, (good, bad) = submit_while_first_is_written(writer, ["good", "bad"])
    assert first.result() == "FIRST" and good.result() == "GOOD"
    with pytest.raises(ValueError, match="bad"):
        bad.result()


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs():
    writer = Writer(fail_batch=2)
    group, first, others = submit_while_first_is_written(writer, ["a", "b"])
    assert first.result() == "FIRST"
    for future in others:
        with pytest.raises(ConnectionError, match="ledger down"):
            future.result()
    assert group.submit("later") == "LATER"
