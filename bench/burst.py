"""Deadline burst: N students push at once; every push must end in a graded run, none lost.

Run `python -m bench.burst` from the repository root. It starts gradehook's web process
(gunicorn) and a worker on a scratch PostgreSQL database and Redis index, with the GitLab API
stand-in and local bare git repositories (as `bench/e2e.py` does), sends one push from each of N
students (default 300) within a few seconds, and waits for every final commit status. It prints
the time to the last final status, the push → final status latency (p50, p95), the throughput
against what the grading engine alone manages on the same cores, the cost of one run in CPU
time of the machine's cores (what docs/scaling.md builds on), and the number of runs lost, which
must be 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench.common import format_table, machine
from bench.e2e import GROUP, add_fetch_delay_option, add_worker_options, engine_alone, \
    make_students, percentile, burst, running_service, sequential, solution, worker_arguments


def run(args: argparse.Namespace) -> int:
    with running_service(args.concurrency, args.grading_slots, args.fetch_delay) as service:
        first = service.git.commit(f"{GROUP}/solo", solution("hello", 3))
        solo = service.gitlab.add_project(f"{GROUP}/solo", branches={"main": first})
        students = make_students(service.gitlab, service.git, args.students)
        sequential(service.port, service.gitlab, service.git, solo, 2)  # warm caches
        seconds, latencies, lost = burst(service.port, service.gitlab, students)
        engine_rate, engine_durations = engine_alone(service.folder / "engine",
                                                     args.engine_gradings, args.grading_slots)
    rate = args.students / seconds
    m = machine()
    # Every core is busy through the burst: a run costs the cores' time divided by the rate.
    core_seconds_per_run = m.cores / rate
    print(f"machine: {m.cores} cores, {m.cpu_model}, {m.memory_gib:.1f} GiB; "
          f"worker concurrency {args.concurrency}, grading slots {args.grading_slots}; "
          f"{args.students} students")
    print(format_table(
        ["measurement", "count", "p50 s", "p95 s", "per second", "total s"],
        [[f"burst of {args.students} pushes → final status", args.students,
          f"{statistics.median(latencies):.2f}", f"{percentile(latencies, 0.95):.2f}",
          f"{rate:.2f}", f"{seconds:.1f}"],
         [f"engine alone, {args.grading_slots} processes", args.engine_gradings,
          f"{statistics.median(engine_durations):.3f}",
          f"{percentile(engine_durations, 0.95):.3f}", f"{engine_rate:.2f}", ""]]))
    print(f"core time per run: {core_seconds_per_run:.3f} s "
          f"(engine alone: {m.cores / engine_rate:.3f} s)")
    print(f"headline: {args.students} pushes graded in {seconds:.1f}s, lost {lost}, "
          f"p50 {statistics.median(latencies):.1f}s p95 {percentile(latencies, 0.95):.1f}s, "
          f"{rate:.2f} runs/s = {rate / engine_rate:.0%} of the engine alone, "
          f"{core_seconds_per_run:.3f} core-seconds per run")
    return 0 if lost == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300, help="students pushing at once")
    add_worker_options(parser)
    parser.add_argument("--engine-gradings", type=int, default=40,
                        help="gradings for the engine-alone figure")
    add_fetch_delay_option(parser)
    return run(worker_arguments(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
