"""In-sandbox meter of what reaches the standard output and error descriptors by any way.

Run only in the sandbox, beside the runners. Descriptors 1 and 2 become one pipe, which a thread of
this process reads as it fills and counts on the output meter of the code running now (a stage,
a test's phase), keeping none of it: os.write, a subprocess, C code and sys.__stdout__ are
counted as print() is, and nothing of it grows anywhere. When the count passes the meter's limit,
the thread puts a new pipe in place and closes the old one, so that a program still writing to it
(a subprocess, a shell command that os.system waits for) ends on EPIPE or SIGPIPE, and sends the
process's main thread stop_signal, whose handler stops the code there (OutputMeter.stop_here).
The runner's own uncaught errors go to a copy of the sandbox's stderr (report_errors_to).
The thread needs the interpreter's lock to read on, which C code that writes (faulthandler's dump
of every thread's stack) holds while it writes: the pipe holds PIPE_BYTES, not Linux's 64 KB, so
that such a write is not left waiting for the thread for ever.
"""

import fcntl
import os
import signal
import sys
import threading

from pipeline.sandbox.spare_descriptors import let_go

READ_BYTES = 65536
STANDARD_DESCRIPTORS = (1, 2)
# What the pipe holds: Linux's largest for a user without privileges (/proc/sys/fs/pipe-max-size),
# above what faulthandler dumps of the 64 threads a program may have (100 frames each).
PIPE_BYTES = 1024 * 1024
# What may still reach the pipe from the code a stop was decided for, before the stop reaches that
# code: the new pipe fills while the thread puts it in place and signals (it reads nothing then),
# and the code's write under way when the signal comes goes on by what this thread reads meanwhile.
# Counted on the stopped code's meter, it is no output of code that caught the stop and printed on.
IN_FLIGHT_BYTES = PIPE_BYTES + READ_BYTES
# fcntl.F_SETPIPE_SZ, which Python names from 3.10 on.
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def report_errors_to(fd):
    """Print an uncaught exception of the runner on fd, a copy of the sandbox's stderr, which the
    host logs when a run ends without its result: descriptor 2 is the meter's, which keeps
    nothing."""
    stream = os.fdopen(fd, "w", encoding="utf-8", errors="replace")

    def excepthook(kind, value, traceback):
        import traceback as tracebacks

        tracebacks.print_exception(kind, value, traceback, file=stream)
        stream.flush()

    sys.excepthook = excepthook


class DescriptorMeter:
    """Descriptors 1 and 2 made one pipe, read by a thread that counts it on the meter set."""

    def __init__(self, stop_signal, read=os.read, tell=signal.pthread_kill):
        """Put the pipe in place and start reading it (with os.read and signal.pthread_kill
        bound before any solution ran)."""
        self.meter = None  # the meter of the code running now, if any
        report_errors_to(os.dup(2))
        self.read_end = self.new_pipe()
        self.stop_signal = stop_signal
        self.main_thread = threading.main_thread().ident
        self.read = read
        self.tell = tell
        signal.signal(stop_signal, self.on_stop_signal)
        threading.Thread(target=self.drain, name="descriptor-meter", daemon=True).start()

    @staticmethod
    def new_pipe():
        """Point descriptors 1 and 2 at a new pipe; return its reading end."""
        read_end, write_end = os.pipe()
        try:
            fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # a lower pipe-max-size: the pipe stays as it is
        for fd in STANDARD_DESCRIPTORS:
            os.dup2(write_end, fd)
        os.close(write_end)
        return read_end

    def drain(self):
        """Read the pipe until every descriptor to it is closed; count what comes on the meter
        set (what comes while none is, between stages or tests, goes uncounted)."""
        while data := self.read(self.read_end, READ_BYTES):
            meter = self.meter
            if meter is not None and meter.count_written(len(data), IN_FLIGHT_BYTES):
                self.cut_off()
                self.tell(self.main_thread, self.stop_signal)

    def cut_off(self):
        """Leave the programs writing to the pipe a closed one, and the descriptors a new one
        (made with the runner's spare descriptors: the program may hold every other)."""
        old = self.read_end
        with let_go():
            self.read_end = self.new_pipe()
            os.close(old)

    def on_stop_signal(self, signum, frame):
        """Stop the running code where it is, if its meter decided so."""
        meter = self.meter
        if meter is not None:
            meter.stop_here()
