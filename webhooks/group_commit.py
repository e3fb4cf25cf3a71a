"""Group commit: requests that arrive while a batch is being written are written together next."""

from __future__ import annotations

import threading
from typing import Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Slot(Generic[Item, Result]):
    """One caller's item and, once its batch has run, the result or the error for it."""

    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Hand concurrent callers' items to `write` in batches, one batch at a time.

    A caller that finds no batch running writes its item at once, as a batch of one; callers
    arriving meanwhile queue up, and when the batch ends one of them writes every queued item
    in the next batch. Under load a batch holds about as many items as there are request
    threads, so the cost of a transaction and of a broker round trip is shared; when idle
    nothing waits. `write` returns one result per item, in order; a result that is an
    exception is raised to that item's caller, and an exception raised by `write` reaches
    every caller of the batch.
    """

    def __init__(self, write: Callable[[Sequence[Item]], Sequence[Result | BaseException]]
                 ) -> None:
        self._write = write
        self._changed = threading.Condition()
        self._queued: list[_Slot[Item, Result]] = []
        self._writing = False

    def submit(self, item: Item) -> Result:
        """Write an item with whatever else is queued; return its result or raise its error."""
        slot: _Slot[Item, Result] = _Slot(item)
        with self._changed:
            self._queued.append(slot)
            while self._writing and not slot.done:
                self._changed.wait()
            if not slot.done:
                batch, self._queued = self._queued, []
                self._writing = True
        if not slot.done:
            self._write_batch(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def queued(self) -> int:
        """Return how many items wait for the next batch."""
        with self._changed:
            return len(self._queued)

    def _write_batch(self, batch: list[_Slot[Item, Result]]) -> None:
        try:
            results = self._write([slot.item for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch writer returned {len(results)} results "
                                   f"for {len(batch)} items")
            for slot, result in zip(batch, results):
                if isinstance(result, BaseException):
                    slot.error = result
                else:
                    slot.result = result
        except BaseException as exc:
            for slot in batch:
                slot.error = exc
        finally:
            with self._changed:
                for slot in batch:
                    slot.done = True
                self._writing = False
                self._changed.notify_all()
