"""Grading engine benchmark: grading an assignment against simply running its files with python.

Run `python -m bench.engine` from the repository root. It writes a typical assignment (a
student's and a reference solution doing some real work, and a test.yaml with variable, stdout,
structural, exist and linting collections), then measures, each as the median of a few repeats:
the student's and the reference's entry point run bare (`python ex.py` in a plain subprocess),
and `grade()` with a cold reference cache (a fresh cache each time) and with a warm one. The
last line holds the headline figures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable

from bench.common import BenchError, format_table, machine
from pipeline.grading import GradeOptions, ReferenceCache, grade

SOLUTION = """
    def primes(limit):
        sieve = [True] * (limit + 1)
        sieve[0:2] = [False, False]
        for number in range(2, int(limit ** 0.5) + 1):
            if sieve[number]:
                multiples = range(number * number, limit + 1, number)
                sieve[number * number::number] = [False] * len(multiples)
        return [n for n, is_prime in enumerate(sieve) if is_prime]


    def fib(n):
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        return a


    def collatz_longest(limit):
        best, best_start = 0, 1
        for start in range(1, limit):
            steps, n = 0, start
            while n != 1:
                n = n // 2 if n % 2 == 0 else 3 * n + 1
                steps += 1
            if steps > best:
                best, best_start = steps, start
        return best_start


    found = primes({limit})
    count = len(found)
    largest = found[-1]
    longest = collatz_longest({collatz})
    squares = [i * i for i in range(10)]
    mean = sum(squares) / len(squares)
    print("primes:", count)
    print("longest collatz start:", longest)
"""
TEST_YAML = """
    type: python
    name: Benchmark assignment
    properties:
      tests:
        - type: variable
          name: values
          entryPoint: ex.py
          tests:
            - name: count
            - name: largest
            - name: longest
            - name: squares
            - name: mean
            - name: fib(30)
        - type: stdout
          name: output
          entryPoint: ex.py
          tests:
            - name: stdout
            - name: stdout
              qualification: contains
              pattern: "primes:"
        - type: variable
          name: setup
          entryPoint: ex.py
          setUpCode: "extra = fib(10) + count"
          tests:
            - name: extra
        - type: structural
          name: structure
          file: ex.py
          tests:
            - {name: for, allowedOccuranceRange: [1, 10]}
            - {name: import}
        - type: exist
          name: files
          file: ex.py
          tests:
            - name: ex.py
        - type: linting
          name: style
          file: ex.py
          tests:
            - name: pep8
"""


def write_assignment(root: Path, limit: int, collatz: int) -> tuple[Path, Path]:
    """Write the benchmark's reference (with test.yaml) and an identical student solution."""
    code = textwrap.dedent(SOLUTION).format(limit=limit, collatz=collatz).lstrip()
    directories = []
    for side in ("reference", "student"):
        directory = root / side
        directory.mkdir()
        (directory / "ex.py").write_text(code, encoding="utf-8")
        directories.append(directory)
    (directories[0] / "test.yaml").write_text(textwrap.dedent(TEST_YAML), encoding="utf-8")
    return directories[1], directories[0]


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    """Return the wall-clock seconds of each repeat of an action."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def run_bare(directory: Path) -> None:
    """Run the entry point with python in a plain subprocess, as a student would."""
    subprocess.run([sys.executable, "ex.py"], cwd=directory, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)


def main() -> None:
    """Measure and print the table and the headline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement")
    parser.add_argument("--limit", type=int, default=1_500_000, help="primes up to this")
    parser.add_argument("--collatz", type=int, default=60_000, help="collatz starts below this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as scratch:
        root = Path(scratch)
        student, reference = write_assignment(root, args.limit, args.collatz)
        bare_student = timed(lambda: run_bare(student), args.repeats)
        bare_reference = timed(lambda: run_bare(reference), args.repeats)
        caches = iter(range(args.repeats + 1))
        reports = []

        def grade_with(cache: ReferenceCache) -> None:
            report = grade(student, reference, reference_cache=cache,
                           options=GradeOptions(reference_version="bench"))
            if report.result != "PASSED":
                raise BenchError(f"the benchmark assignment did not pass: {report.result}")
            reports.append(report)

        cold = timed(lambda: grade_with(ReferenceCache(root / f"cold-{next(caches)}")),
                     args.repeats)
        warm_cache = ReferenceCache(root / "warm")
        grade_with(warm_cache)
        warm = timed(lambda: grade_with(warm_cache), args.repeats)
    rows, base = [], statistics.median(bare_student)
    for label, seconds in (("python ex.py (student, bare)", bare_student),
                           ("python ex.py (reference, bare)", bare_reference),
                           ("grade, cold reference cache", cold),
                           ("grade, warm reference cache", warm)):
        median = statistics.median(seconds)
        rows.append((label, f"{median:.3f}", f"{min(seconds):.3f}", f"{median / base:.2f}x"))
    timings = reports[-1].gradehook.timings
    print(f"Grading engine benchmark on {machine().describe()}")
    print(f"{args.repeats} repeats; 6 collections, 13 tests; work: primes < {args.limit}, "
          f"collatz < {args.collatz}")
    print()
    print(format_table(("measurement", "median s", "min s", "vs bare student"), rows))
    print()
    print("last warm grading, phases (s): " + ", ".join(
        f"{phase} {seconds:.3f}" for phase, seconds in timings.items()))
    both = statistics.median(bare_student) + statistics.median(bare_reference)
    print(f"headline: warm/bare-student {statistics.median(warm) / base:.2f}x, "
          f"cold/bare-student+reference {statistics.median(cold) / both:.2f}x, "
          f"warm {statistics.median(warm):.3f}s, cold {statistics.median(cold):.3f}s, "
          f"bare student {base:.3f}s")


if __name__ == "__main__":
    main()
