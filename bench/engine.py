"""Grading engine benchmark: grading an assignment against simply running its files with python.

Run `python -m bench.engine` from the repository root. It writes a typical assignment (a
student's and a reference solution doing some real work, and a test.yaml with variable, stdout,
structural, exist and linting collections), then measures, each as the median of a few repeats:
the student's and the reference's entry point run bare (`python ex.py` in a plain subprocess),
and `grade()` with a cold reference cache (a fresh cache each time) and with a warm one. It does
so twice: with a setUpCode collection (whose run cannot be shared: two entry-point runs per side)
and without it (every code collection shares one run). The last line holds the headline.
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
TEST_YAML_HEAD = """\
type: python
name: Benchmark assignment
properties:
  tests:
"""
SHARED_COLLECTIONS = """\
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
"""
SETUP_COLLECTION = """\
    - type: variable
      name: setup
      entryPoint: ex.py
      setUpCode: "extra = fib(10) + count"
      tests:
        - name: extra
"""
STATIC_COLLECTIONS = """\
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


def write_assignment(root: Path, limit: int, collatz: int,
                     with_setup: bool = True) -> tuple[Path, Path]:
    """Write the benchmark's reference (with test.yaml) and an identical student solution."""
    code = textwrap.dedent(SOLUTION).format(limit=limit, collatz=collatz).lstrip()
    directories = []
    for side in ("reference", "student"):
        directory = root / side
        directory.mkdir(parents=True)
        (directory / "ex.py").write_text(code, encoding="utf-8")
        directories.append(directory)
    test_yaml = TEST_YAML_HEAD + SHARED_COLLECTIONS + (SETUP_COLLECTION if with_setup else "") \
        + STATIC_COLLECTIONS
    (directories[0] / "test.yaml").write_text(test_yaml, encoding="utf-8")
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


def measure(root: Path, args: argparse.Namespace, with_setup: bool) -> dict[str, list[float]]:
    """Time bare runs and cold and warm gradings of one variant of the assignment."""
    student, reference = write_assignment(root, args.limit, args.collatz, with_setup)
    results = {"bare student": timed(lambda: run_bare(student), args.repeats),
               "bare reference": timed(lambda: run_bare(reference), args.repeats)}
    caches = iter(range(args.repeats))

    def grade_with(cache: ReferenceCache) -> None:
        report = grade(student, reference, reference_cache=cache,
                       options=GradeOptions(reference_version="bench"))
        if report.result != "PASSED":
            raise BenchError(f"the benchmark assignment did not pass: {report.result}")

    results["cold"] = timed(lambda: grade_with(ReferenceCache(root / f"cold-{next(caches)}")),
                            args.repeats)
    warm_cache = ReferenceCache(root / "warm")
    grade_with(warm_cache)
    results["warm"] = timed(lambda: grade_with(warm_cache), args.repeats)
    return results


def ratio(results: dict[str, list[float]], key: str,
          bases: tuple[str, ...] = ("bare student",)) -> float:
    """Return the median of one measurement over the sum of the bases' medians."""
    bare = sum(statistics.median(results[base]) for base in bases)
    return statistics.median(results[key]) / bare


def main() -> None:
    """Measure both variants and print the table and the headline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement")
    parser.add_argument("--limit", type=int, default=1_500_000, help="primes up to this")
    parser.add_argument("--collatz", type=int, default=60_000, help="collatz starts below this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as scratch:
        typical = measure(Path(scratch) / "typical", args, with_setup=True)
        single = measure(Path(scratch) / "single", args, with_setup=False)
    rows = []
    for variant, results in (("6 collections, 2 distinct runs", typical),
                             ("5 collections, 1 distinct run", single)):
        for label, key in (("python ex.py, student (bare)", "bare student"),
                           ("python ex.py, reference (bare)", "bare reference"),
                           ("grade, cold reference cache", "cold"),
                           ("grade, warm reference cache", "warm")):
            rows.append((variant, label, f"{statistics.median(results[key]):.3f}",
                         f"{min(results[key]):.3f}", f"{ratio(results, key):.2f}x"))
    print(f"Grading engine benchmark on {machine().describe()}")
    print(f"{args.repeats} repeats each; work: primes < {args.limit}, collatz < {args.collatz}")
    print()
    print(format_table(("assignment", "measurement", "median s", "min s", "vs bare student"),
                       rows))
    print()
    print(f"headline: warm/bare-student {ratio(typical, 'warm'):.2f}x "
          f"(one distinct run: {ratio(single, 'warm'):.2f}x), cold/bare-student+reference "
          f"{ratio(typical, 'cold', ('bare student', 'bare reference')):.2f}x, "
          f"warm {statistics.median(typical['warm']):.3f}s, "
          f"bare student {statistics.median(typical['bare student']):.3f}s")


if __name__ == "__main__":
    main()
