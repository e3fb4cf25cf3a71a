"""In-sandbox reserve of file descriptors that the runner lets go of while it reads files itself.

Loaded by the runners in the sandbox. The student's code runs in the runner's process, under the
sandbox's limit of open descriptors (RLIMIT_NOFILE): a program that opens files until it may open no
more (a file opened in a loop and never closed) left the runner unable to import traceback or read
the lines of the student's files once that code had stopped, so that its crash, exit or timeout was
told as the runner's own failure to open a file (and, printing without end, its stop as printing on
after the stop: the descriptor meter could not make its new pipe). The runner holds SPARE_COUNT
descriptors from its start, before any solution code runs, and lets go of them for the moments it
opens files of its own (let_go, using_spares), and the descriptor meter for its new pipe: the
student's code has that many fewer. What it retakes afterwards is what is free again; code of the
student's that closes or takes them spoils only its own run. Where nothing was reserved (outside the
sandbox, pytest mode's runner), nothing is let go of.
"""

import contextlib
import functools
import os
import threading

# More than the runner opens at once: to describe an error, a module it imports (its source and
# its cached bytecode) and a file of the student's whose lines it reads; to stop output, the
# descriptor meter's new pipe.
SPARE_COUNT = 4

_held = []
_lock = threading.RLock()


def reserve(count=SPARE_COUNT, open_file=os.open):
    """Take count descriptors (of /dev/null) out of what the code that runs next may open."""
    with _lock:
        while len(_held) < count:
            try:
                _held.append(open_file(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                return


@contextlib.contextmanager
def let_go(close=os.close, open_file=os.open):
    """Free the reserved descriptors while the block runs, then take back as many as are free
    (with os.close and os.open bound before any solution ran)."""
    with _lock:
        count = len(_held)
        while _held:
            close(_held.pop())
        try:
            yield
        finally:
            reserve(count, open_file)


def using_spares(function):
    """Make function run with the reserved descriptors let go of."""
    @functools.wraps(function)
    def with_spares(*args, **kwargs):
        with let_go():
            return function(*args, **kwargs)
    return with_spares
