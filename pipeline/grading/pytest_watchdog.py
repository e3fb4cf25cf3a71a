"""In-sandbox watchdog of pytest mode: pytest runs in a child process, and a test (or a test
file's import) that outlives its time limit is ended there, so that the tests after it still run.

The watchdog runs none of the student's code: only the child does, which tells it through a pipe
when each test begins (with its limit), where a test is stuck, and when it ends (pytest_limits). A
limit runs on by the time the sandbox's tasks waited for a CPU since the test began, by at most its
own length (pipeline.sandbox.cpu_wait). At a test's limit the watchdog sends the child STOP_SIGNAL,
whose handler fails the test where it is stuck; the child reports a test that ends after that
(failed on its limit, even if the student's code caught the failure). One that does not end within
GRACE_SECONDS (the student's code caught the failure and went on, replaced the handler, or runs C
code that never looks at signals) has its child's process group killed: the watchdog reports the
test failed on its limit (an import: its test file's collection failed), and pytest starts again in
a new child without the tests that ended and the test files whose import was ended. That is the one
line the watchdog writes to the result channel, and only once the child is gone: a line longer than
PIPE_BUF is not written to a pipe at once, so a second writer could split the child's, losing both
lines. Student code can still write to the pipe, or stop or kill this process (the same user): what
it writes, or a stopped watchdog, leaves the run to the sandbox's own time limit; a killed one ends
the sandbox. A child that ends by itself ends the watchdog the same way (its exit code or signal).
"""

import json
import os
import select
import signal
import time
import traceback

from pipeline.sandbox.cpu_wait import StretchedLimit, sandbox_tasks
from pytest_limits import FAILURE, STOP_SIGNAL, over_limit, subject_of, timed_out

GRACE_SECONDS = 3.0
# The longest select waits at once: it refuses a wait of 292 years or more, which a course's
# timeout(sys.maxsize) asks for.
LONGEST_WAIT_SECONDS = 3600.0
READ_BYTES = 65536
# A longer line than this from the child is no message of the plugin's: it is dropped.
MAX_MESSAGE_BYTES = 65536
WENT_ON = ", but went on, so its process was ended"
DID_NOT_STOP = "; it did not stop when told to, so its process was ended"


class WatchedTest:
    """A test (or a test file's import) the child runs: its limit, stretched by the sandbox's
    wait for a CPU (cpu_wait), its deadline, whether it was interrupted, where it was."""

    def __init__(self, nodeid, seconds, importing):
        self.nodeid = nodeid
        self.seconds = seconds
        self.importing = importing
        self.limit = StretchedLimit(seconds, sandbox_tasks) if seconds > 0 else None
        self.deadline = self.limit.started + seconds if self.limit is not None else None
        self.interrupted = False
        self.place = None

    def stretch(self):
        """Move a deadline not yet reached for the stop on by the sandbox's wait for a CPU so
        far."""
        if self.limit is not None and not self.interrupted:
            self.deadline = self.limit.deadline()

    def remaining(self):
        """Return the seconds until the deadline (0 when past), at most LONGEST_WAIT_SECONDS;
        None without a limit."""
        if self.deadline is None:
            return None
        return min(LONGEST_WAIT_SECONDS, max(0.0, self.deadline - time.monotonic()))

    def ended_event(self):
        """Return the result event of a test (or an import) whose process was killed at its
        limit."""
        subject = subject_of(self.nodeid, self.importing)
        if self.place is None:
            text = over_limit(self.seconds, subject) + DID_NOT_STOP
        else:
            text = timed_out(self.seconds, subject, self.place) + WENT_ON
        if self.importing:
            return {"event": "collecterror", "nodeid": self.nodeid,
                    "message": FAILURE.format(text=text)}
        return {"event": "test", "nodeid": self.nodeid, "outcome": "failed", "when": "call",
                "message": FAILURE.format(text=text)}


def supervise(run_pytest, emit):
    """Run run_pytest(finished, watchdog_fd) in a child until one ends by itself, and end as it
    did; never return.

    finished is the set of tests that earlier children ended, and of test files whose import they
    ended; emit writes an event to the result channel, called only once the child has ended (see
    the module's docstring).
    """
    finished = set()
    while True:
        pid, reader = _start(run_pytest, finished)
        watch = _Watch(pid, reader, finished)
        status, killed = watch.wait()
        os.close(reader)
        if killed is None:
            _exit_as(status)
        emit(killed.ended_event())
        finished.add(killed.nodeid)


def _start(run_pytest, finished):
    """Start a child in a process group of its own running pytest; return its pid and the
    reading end of its messages."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reader)
            os.setpgid(0, 0)
            run_pytest(finished, writer)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(writer)
    return pid, reader


def _exit_as(status):
    """End this process as the child ended: its exit code, or its signal."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        if -code != signal.SIGKILL:
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


class _Watch:
    """Watch one child: interrupt, then kill, the test that outlives its limit."""

    def __init__(self, pid, reader, finished):
        self.pid = pid
        self.reader = reader
        self.finished = finished
        self.pending = b""
        self.test = None

    def wait(self):
        """Return the child's wait status when it has ended, and the test it was killed in
        (None when it ended by itself, or was killed outside a test it was told to stop)."""
        pidfd = os.pidfd_open(self.pid)
        os.set_blocking(self.reader, False)
        watched = [self.reader, pidfd]
        try:
            while True:
                timeout = None if self.test is None else self.test.remaining()
                ready = select.select(watched, [], [], timeout)[0]
                if self.reader in ready and not self._read():
                    # The child closed its end: a test not yet told to stop is left to the
                    # sandbox's own limit (a child that ended is seen through pidfd).
                    watched.remove(self.reader)
                    if self.test is not None and not self.test.interrupted:
                        self.test = None
                if pidfd in ready:
                    self._read()
                    test = self.test if self.test is not None and self.test.interrupted \
                        else None
                    return os.waitpid(self.pid, 0)[1], test
                if self.test is not None and self.test.remaining() == 0:
                    self._read()
                if self.test is not None and self.test.remaining() == 0:
                    self.test.stretch()
                if self.test is not None and self.test.remaining() == 0:
                    if self.test.interrupted:
                        self._kill()
                        return os.waitpid(self.pid, 0)[1], self.test
                    self.test.interrupted = True
                    self.test.deadline = time.monotonic() + GRACE_SECONDS
                    os.kill(self.pid, STOP_SIGNAL)
        finally:
            os.close(pidfd)

    def _kill(self):
        """Kill the child and what it started in its process group."""
        os.kill(self.pid, signal.SIGKILL)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _read(self):
        """Handle the child's complete messages; return False at the end of its writes."""
        while True:
            try:
                data = os.read(self.reader, READ_BYTES)
            except BlockingIOError:
                return True
            if not data:
                return False
            *lines, self.pending = (self.pending + data).split(b"\n")
            if len(self.pending) > MAX_MESSAGE_BYTES:
                self.pending = b""
            for line in lines:
                self._handle(line)

    def _handle(self, line):
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            return
        if not isinstance(message, dict):
            return
        nodeid, seconds = message.get("begin"), message.get("seconds")
        if isinstance(nodeid, str) and isinstance(seconds, (int, float)) \
                and not isinstance(seconds, bool) and 0 <= seconds < float("inf"):
            self.test = WatchedTest(nodeid, seconds, message.get("importing") is True)
        test = self.test
        if test is None:
            return
        if isinstance(message.get("stuck"), str) and test.interrupted:
            test.place = message["stuck"]
        if message.get("end") == test.nodeid:
            # A test file imported whole is imported again by the next child, if one is started.
            if not test.importing:
                self.finished.add(test.nodeid)
            self.test = None
