"""Time limits stretched by the time a run's tasks waited, ready to run, for a CPU.

A limit means "this much time if the machine were the run's": on a busy host (more runs than cores,
or a cpu cgroup's quota) a run waits for a CPU, and the limit runs on by that wait, by at most its
own length (it never more than doubles), so that a program that is itself slow still stops. Linux
counts each task's wait in /proc/<tid>/schedstat (its second field, nanoseconds; CONFIG_SCHED_INFO),
throttling by a cpu cgroup's quota included; without that file nothing is counted and limits are as
long as they are written. A task's wait goes with it when it ends, so only the tasks alive when a
limit is reached count: a limit is never stretched by more than its tasks waited. The waits of tasks
that run side by side add up: a program running more processes or threads than there are cores waits
by its own doing, and its limits run on as well (at most doubled, as any). Standard library only:
the in-sandbox runners import it too, where /proc shows the sandbox's own tasks (sandbox_tasks); the
supervisor outside lists the run's cgroup's.
"""

import os
import time

NANOSECONDS = 1e9


def task_waits(tids):
    """Return the nanoseconds each task of tids that still lives has waited for a CPU."""
    waits = {}
    for tid in tids:
        try:
            with open(f"/proc/{tid}/schedstat", "rb") as stats:
                waits[tid] = int(stats.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return waits


def sandbox_tasks():
    """Return the id of every task this /proc shows (in a sandbox, those of the sandbox); none
    when it cannot be read (a program that holds all the descriptors it may open)."""
    try:
        pids = [pid for pid in os.listdir("/proc") if pid.isdigit()]
    except OSError:
        return []
    tids = []
    for pid in pids:
        try:
            tids.extend(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return tids


class StretchedLimit:
    """A time limit of seconds from started that runs on by the time the tasks list_tasks
    returns have waited for a CPU since, by at most seconds."""

    def __init__(self, seconds, list_tasks, started=None):
        self.seconds = seconds
        self.list_tasks = list_tasks
        self.started = time.monotonic() if started is None else started
        self.waits_at_start = task_waits(list_tasks())

    def waited(self):
        """Return the seconds the tasks alive now waited for a CPU since the limit began."""
        waits = task_waits(self.list_tasks())
        return sum(max(0, wait - self.waits_at_start.get(tid, 0))
                   for tid, wait in waits.items()) / NANOSECONDS

    def deadline(self):
        """Return when the limit ends on time.monotonic()'s clock, as far as the wait so far
        tells."""
        return self.started + self.seconds + min(self.waited(), self.seconds)
