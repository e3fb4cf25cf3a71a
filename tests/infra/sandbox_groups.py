"""Find the runs' cgroups this process makes: their random names tell not whose they are."""

from __future__ import annotations

import contextlib
from typing import Iterator

from pipeline.sandbox.cgroup import RunCgroup


@contextlib.contextmanager
def groups_made() -> Iterator[list[RunCgroup]]:
    """Give a list of the runs' cgroups this process makes in the block, filled as they are
    made."""
    made: list[RunCgroup] = []
    create = RunCgroup.__dict__["create"]

    def recording(cls: type[RunCgroup], memory_bytes: int, max_pids: int) -> RunCgroup | None:
        group = create.__func__(cls, memory_bytes, max_pids)
        if group is not None:
            made.append(group)
        return group
    RunCgroup.create = classmethod(recording)  # type: ignore[method-assign, assignment]
    try:
        yield made
    finally:
        RunCgroup.create = create  # type: ignore[method-assign]
