"""Intake's own work, in process: CPU per delivery of each step, with batches of several sizes.

Run `python -m bench.intake_parts` from the repository root. It builds the web application on a
scratch PostgreSQL database and Redis index, makes distinct push deliveries like those of
`bench.intake` (each makes one run and supersedes its branch's queued run), and times, with no
HTTP server and no other load, the steps of `POST /webhooks/gitlab`: verifying the token,
parsing, deciding, recording a batch in the ledger (`record_deliveries`: one transaction) and
publishing its messages (`Publisher.publish`: one Redis round trip). Batches are what the group
commit makes of deliveries arriving together. What the web process adds on top (HTTP, Flask,
logging, threads taking turns) is `bench.intake`'s part.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from sqlalchemy import event

from bench.common import (BenchError, format_table, machine, scratch_database, scratch_redis_db,
                          services)
from bench.intake import ASSIGNMENTS, BRANCHES, SECRET, push_template, write_config
from pipeline.celery_app import REPORT, STUDENT_TESTING
from pipeline.config import Settings, load_settings
from pipeline.ledger.migrate import upgrade
from pipeline.publisher import Publisher, TaskMessage
from webhooks.app import Services, create_app
from webhooks.auth import verify_delivery
from webhooks.events import Event, parse_delivery
from webhooks.handlers.decisions import Context
from webhooks.handlers.router import decide
from webhooks.intake import record_deliveries, reported_runs
from webhooks.intake_plan import Answer, Delivered

COLUMNS = ["step", "batch", "deliveries", "CPU µs/delivery", "wall µs/delivery",
           "SQL statements/delivery", "in the driver µs/delivery"]


@dataclass(frozen=True)
class Timing:
    """CPU and wall time one step took for a number of deliveries, and its SQL statements."""

    step: str
    batch: int | None
    deliveries: int
    cpu_seconds: float
    wall_seconds: float
    statements: int = 0
    driver_seconds: float = 0.0

    def row(self) -> list[object]:
        """Return this timing as a table row, per delivery."""
        per = 1e6 / self.deliveries
        return [self.step, self.batch or "", self.deliveries, f"{self.cpu_seconds * per:,.0f}",
                f"{self.wall_seconds * per:,.0f}",
                f"{self.statements / self.deliveries:.2f}" if self.statements else "",
                f"{self.driver_seconds * per:,.0f}" if self.statements else ""]


class StatementClock:
    """Count the SQL statements an engine runs and the CPU spent inside its driver calls."""

    def __init__(self, engine) -> None:
        self.statements = 0
        self.seconds = 0.0
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_args) -> None:
        self._started = time.process_time()

    def _after(self, *_args) -> None:
        self.statements += 1
        self.seconds += time.process_time() - self._started


def timed(step: str, batch: int | None, items: Sequence, work: Callable[[object], object],
          clock: StatementClock | None = None, per_item: int = 1) -> tuple[Timing, list]:
    """Run `work` on each item and return the timing (per delivery) and the results."""
    statements, driver = (clock.statements, clock.seconds) if clock else (0, 0.0)
    cpu, wall = time.process_time(), time.perf_counter()
    results = [work(item) for item in items]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if clock:
        statements, driver = clock.statements - statements, clock.seconds - driver
    return Timing(step, batch, len(items) * per_item, cpu, wall, statements, driver), results


def deliveries(count: int, offset: int, projects: int) -> list[tuple[dict, bytes]]:
    """Return distinct push deliveries (headers, body) over projects, branches, assignments."""
    template = push_template()
    made = []
    for number in range(offset, offset + count):
        sha = hashlib.sha1(f"push {number}".encode()).hexdigest()
        project = number % projects
        body = (template.replace("@AFTER@", sha)
                .replace("@BRANCH@", BRANCHES[number // projects % len(BRANCHES)])
                .replace("@PROJECT_ID@", str(project + 1)).replace("@PROJECT@", f"p{project}")
                .replace("@ASSIGNMENT@", ASSIGNMENTS[number // (projects * len(BRANCHES))
                                                     % len(ASSIGNMENTS)]))
        made.append(({"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
                      "X-Gitlab-Token": SECRET, "Idempotency-Key": f"parts-{number}"},
                     body.encode()))
    return made


def messages_of(batch: Sequence[Delivered], answers: Sequence[Answer]) -> list[TaskMessage]:
    """Return the messages the intake publishes for a recorded batch: reports, then runs."""
    reports = [reported_runs(delivered, answer) for delivered, answer in zip(batch, answers)]
    return [*(TaskMessage(REPORT, (group,), f"report-{group[0]}") for group in reports if group),
            *(TaskMessage(STUDENT_TESTING, (run_id,), task_id)
              for answer in answers for run_id, task_id in answer.to_send)]


def measure(settings: Settings, svc: Services, args: argparse.Namespace) -> list[Timing]:
    """Time each step: the per-delivery ones once, the batch ones for every batch size."""
    gitlab = settings.gitlab
    clock = StatementClock(svc.resources.engine)

    def decided(event: Event) -> Delivered:
        course = settings.course_for(event.project_path)
        context = Context(course=course, assignments=svc.assignments.known(course),
                          bot_username=gitlab.bot_username, retest_command=gitlab.retest_command)
        return Delivered(event, decide(event, context), course)

    def verify(delivery: tuple[dict, bytes]) -> None:
        verify_delivery(*delivery, secret_token=gitlab.webhook_secret,
                        signing_token=gitlab.signing_token,
                        require_signature=gitlab.require_signature,
                        tolerance_seconds=gitlab.signature_tolerance_seconds, now=time.time())

    # Warm up: the first batches compile statements and open connections.
    offset = 200
    for delivery in deliveries(offset, 0, args.projects):
        record_deliveries(svc.resources.engine, [decided(parse_delivery(*delivery))])
    made = deliveries(args.deliveries, offset, args.projects)
    timings = [timed("verify the token", None, made, verify)[0]]
    parsing, events = timed("parse", None, made, lambda delivery: parse_delivery(*delivery))
    deciding, _ = timed("decide", None, events, decided)
    timings += [parsing, deciding]
    publisher = Publisher.for_app(svc.celery)
    for size in args.batches:
        offset += args.deliveries
        decisions = [decided(parse_delivery(*delivery))
                     for delivery in deliveries(args.deliveries, offset, args.projects)]
        batches = [decisions[start:start + size] for start in range(0, len(decisions), size)]
        recording, answers = timed("record (ledger)", size, batches,
                                   lambda batch: record_deliveries(svc.resources.engine, batch),
                                   clock, per_item=size)
        publishing, _ = timed("publish (Redis)", size,
                              [messages_of(b, a) for b, a in zip(batches, answers)],
                              publisher.publish, per_item=size)
        timings += [recording, publishing]
    return timings


def run(args: argparse.Namespace) -> list[Timing]:
    """Set up a scratch ledger and broker, build the application and measure."""
    with services() as env, scratch_database(env) as database, \
            scratch_redis_db(env) as redis_db, \
            tempfile.TemporaryDirectory(prefix="gradehook-bench-parts-") as scratch:
        config = write_config(Path(scratch), None, None)
        environ = env.environ(postgres_db=database, redis_db=redis_db)
        settings = load_settings(config, environ=environ)
        app = create_app(settings)
        logging.getLogger().setLevel(logging.WARNING)
        svc: Services = app.extensions["gradehook"]
        upgrade(svc.resources.engine)
        try:
            return measure(settings, svc, args)
        finally:
            svc.resources.engine.dispose()


def headline(timings: list[Timing]) -> str:
    """Return the one-line summary: CPU per delivery of parsing and of each batch size."""
    def per(step: str, batch: int | None = None) -> float:
        found = next(t for t in timings if t.step == step and t.batch == batch)
        return 1e6 * found.cpu_seconds / found.deliveries

    sizes = [t.batch for t in timings if t.step == "record (ledger)"]
    parts = ", ".join(
        f"batch {size}: {per('record (ledger)', size) + per('publish (Redis)', size):,.0f}"
        for size in sizes)
    return (f"headline: CPU per delivery in process: verify+parse+decide "
            f"{per('verify the token') + per('parse') + per('decide'):,.0f} µs; "
            f"record+publish {parts} µs")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.intake_parts",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000,
                        help="deliveries per batch size (default: %(default)s)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16],
                        help="batch sizes (default: %(default)s)")
    parser.add_argument("--projects", type=int, default=200,
                        help="distinct student projects pushed to (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.deliveries <= 0 or args.projects <= 0 or min(args.batches) <= 0:
        parser.error("--deliveries, --projects and --batches must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure and print the machine, the table and the headline."""
    args = parse_args(argv)
    try:
        timings = run(args)
    except BenchError as exc:
        print(f"bench.intake_parts: {exc}", file=sys.stderr)
        return 1
    print(f"machine: {machine().describe()}")
    print()
    print(format_table(COLUMNS, [timing.row() for timing in timings]))
    print()
    print(headline(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
