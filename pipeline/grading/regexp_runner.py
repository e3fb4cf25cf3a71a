"""The in-sandbox `regexp` matcher: re.match of each check, under a time and a memory limit.

Run as a script inside a sandbox of its own, never with the student's code: ``python -I -S
regexp_runner.py``. It reads ``{"seconds": s, "memory_bytes": m, "texts": [text, ...],
"checks": [[pattern, index of its text], ...]}`` as JSON on stdin and writes one JSON line per
check, in order, to stdout: ``{"matched": true|false}``,
``{"timeout": true}`` when the match took more than s seconds (an interval timer interrupts
re.match, which checks for signals as it backtracks), ``{"memory": true}`` when it needed more
memory than the process may have, m bytes of address space (re.match then raises MemoryError,
where the sandbox's memory limit would kill the process), or ``{"error": name, "message": text}``.
"""

import json
import re
import resource
import signal
import sys


class MatchTooSlow(BaseException):
    """Raised by the interval timer when one match takes longer than its limit."""


def _expire(signum, frame):
    raise MatchTooSlow()


def _check(pattern, text, seconds):
    """Return the outcome of re.match(pattern, text), stopped after seconds."""
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return {"matched": re.match(pattern, text) is not None}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except MatchTooSlow:
        return {"timeout": True}
    except MemoryError:
        return {"memory": True}
    except Exception as exc:
        cls = type(exc)
        name = cls.__qualname__ if cls.__module__ == "builtins" \
            else f"{cls.__module__}.{cls.__qualname__}"
        return {"error": name, "message": str(exc)}


def main():
    """Match every check of the request on stdin and print each outcome as it is known."""
    request = json.loads(sys.stdin.buffer.read())
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    memory = request["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS,
                       (memory if hard == resource.RLIM_INFINITY else min(memory, hard), hard))
    signal.signal(signal.SIGALRM, _expire)
    texts = request["texts"]
    for pattern, index in request["checks"]:
        print(json.dumps(_check(pattern, texts[index], request["seconds"])), flush=True)


if __name__ == "__main__":
    main()
