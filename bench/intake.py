"""Intake benchmark: valid push deliveries through production gunicorn, PostgreSQL and Redis.

Run `python -m bench.intake` from the repository root. It starts gunicorn with the arguments of
`gradehook web` on a scratch database and a scratch Redis index, sends distinct push deliveries
with wrk (each makes one run, supersedes the branch's previous queued run and publishes a Celery
message; no worker consumes them), then the same gunicorn settings answering two routes that
only the bench registers: the durable floor (check the token, parse the body, insert one row and
commit it: the least any receiver that records a delivery before answering must do) and a bare
route that does nothing. It prints all three with their ratio to the bare route.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psycopg
import tomli_w
from flask import Flask, jsonify, request
from sqlalchemy.engine import make_url

from bench.common import (REPO_ROOT, BenchError, ServiceEnv, background, busy_cpu_percent,
                          children_cpu_seconds, cpu_snapshot, cpu_used, ensure_command,
                          format_table, free_port, machine, named_pids, scratch_database,
                          scratch_redis_db, services, wait_for_http)
from gradehook.processes import APP_FACTORY, gunicorn_argv
from pipeline.celery_app import ROUTES, STUDENT_TESTING
from pipeline.config import CONFIG_ENV, Settings, load_settings
from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import upgrade
from webhooks.events import GITLAB_KEY_PREFIX

LOAD_SCRIPT = Path(__file__).resolve().parent / "intake_load.lua"
PUSH_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "gitlab" / "push_hook__assignment_commits.json"
WEBHOOK_PATH = "/webhooks/gitlab"
BARE_PATH = "/bench/bare"
BARE_APP = "bench.intake:bare_endpoint_app()"
FLOOR_PATH = "/bench/floor"
FLOOR_APP = "bench.intake:floor_endpoint_app()"
FLOOR_TABLE = "bench_floor"
SECRET = "bench-intake-secret"
GROUP = "bench-2026/students"
ASSIGNMENTS = ("week1/assignment1", "week2/assignment1")
BRANCHES = ("main", "feature")
SERVER_START_SECONDS = 60
SETTLE_SECONDS = 30
KEY_PREFIX = "bench-"
WARMUP_TAG, MEASURE_TAG = 1, 2
TARGET_RATE, TARGET_P99_MS, TARGET_RATIO = 1000, 50.0, 0.5

COURSE = {"name": "bench", "student_projects": [GROUP + "/"],
          "reference_project": "bench-2026/reference", "discover_assignments": False,
          "assignments": [{"directory": directory} for directory in ASSIGNMENTS]}


@dataclass(frozen=True)
class Load:
    """What wrk measured for one endpoint, and the CPU the server and the client used."""

    endpoint: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_seconds: float
    database_cpu_seconds: float
    client_cpu_seconds: float

    @property
    def rate(self) -> float:
        """Return answered requests per second."""
        return self.requests / self.seconds

    def row(self, baseline: Load) -> list[object]:
        """Return this load as a table row, with its throughput relative to a baseline."""
        return [self.endpoint, self.requests, f"{self.seconds:.1f}", f"{self.rate:,.0f}",
                f"{self.p50_ms:.1f}", f"{self.p90_ms:.1f}", f"{self.p99_ms:.1f}",
                f"{self.max_ms:.1f}", f"{1000 * self.server_cpu_seconds / self.requests:.2f}",
                f"{1000 * self.database_cpu_seconds / self.requests:.2f}",
                f"{100 * self.client_cpu_seconds / self.seconds:.0f}%",
                f"{self.rate / baseline.rate:.2f}"]


COLUMNS = ["endpoint", "requests", "seconds", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
           "server CPU ms/req", "db+redis CPU ms/req", "client CPU", "vs bare"]
# PostgreSQL's backends and Redis: their CPU is part of what a delivery costs.
DATABASE_PROCESSES = ("postgres", "redis-server")


@dataclass(frozen=True)
class LedgerCounts:
    """Rows and broker messages that intake leaves behind."""

    deliveries: int
    measured_deliveries: int
    runs: int
    superseded: int
    unsent: int
    messages: int


def bare_endpoint_app() -> Flask:
    """Build the production application plus a route that only the bench has: answer 204."""
    from webhooks.app import create_app
    app = create_app()
    app.add_url_rule(BARE_PATH, "bench_bare", lambda: ("", 204), methods=["POST"])
    return app


def floor_endpoint_app() -> Flask:
    """Build the production application plus the durable floor route that only the bench has.

    The route checks the token, parses the body and commits one row naming the push: no
    routing, no run, no supersession, no broker. A prepared statement on a connection per
    thread, in autocommit: PostgreSQL's own cost of one durable insert, and little else.
    """
    from webhooks.app import create_app
    settings = load_settings()
    secret = settings.gitlab.webhook_secret.encode()
    url = make_url(settings.database_url).set(drivername="postgresql")
    connections = threading.local()
    insert = (f"INSERT INTO {FLOOR_TABLE} (delivery_key, project_path, ref, after) "
              "VALUES (%s, %s, %s, %s)")

    def floor():
        token = request.headers.get("X-Gitlab-Token", "").encode()
        if not hmac.compare_digest(token, secret):
            return jsonify(error="unauthorized"), 401
        payload = json.loads(request.get_data(cache=False))
        if getattr(connections, "db", None) is None:
            connections.db = psycopg.connect(url.render_as_string(hide_password=False),
                                             autocommit=True)
        key = request.headers.get("Idempotency-Key")
        connections.db.execute(insert, (key, payload["project"]["path_with_namespace"],
                                        payload["ref"], payload["after"]), prepare=True)
        return jsonify(status="recorded", delivery=key), 202

    app = create_app()
    app.add_url_rule(FLOOR_PATH, "bench_floor", floor, methods=["POST"])
    return app


def create_floor_table(env: ServiceEnv, database: str) -> None:
    """Create the table the durable floor route writes to, with a unique delivery key."""
    connection = env.postgres(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, "
                           "delivery_key text NOT NULL UNIQUE, project_path text NOT NULL, "
                           "ref text NOT NULL, after text NOT NULL, "
                           "received_at timestamptz NOT NULL DEFAULT now())")
    finally:
        connection.close()


def push_template() -> str:
    """Return a push delivery body with @FIELD@ placeholders for the wrk script to fill."""
    payload = json.loads(PUSH_FIXTURE.read_text())
    payload.update(after="@AFTER@", checkout_sha="@AFTER@", ref="refs/heads/@BRANCH@",
                   project_id="@PROJECT_ID@")
    payload["project"].update(id="@PROJECT_ID@", name="@PROJECT@",
                              path_with_namespace=f"{GROUP}/@PROJECT@")
    first, last = payload["commits"]
    first.update(added=["@ASSIGNMENT@/solution.py"], modified=["README.md"], removed=[])
    last.update(id="@AFTER@", added=[], modified=["@ASSIGNMENT@/main.py"], removed=[])
    return json.dumps(payload, indent=2).replace('"@PROJECT_ID@"', "@PROJECT_ID@")


def write_config(folder: Path, workers: int | None, threads: int | None) -> Path:
    """Write the benchmark's config.toml: one course with configured assignments."""
    server = {key: value for key, value in (("web_workers", workers), ("web_threads", threads))
              if value is not None}
    config = {"data_dir": str(folder / "data"), "gitlab": {"webhook_secret": SECRET},
              "server": server, "courses": [COURSE]}
    path = folder / "config.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def ledger_counts(env: ServiceEnv, database: str, redis_db: int) -> LedgerCounts:
    """Count deliveries (all, and of the measured load), runs, and messages waiting in Redis."""
    measured = f"{GITLAB_KEY_PREFIX}{KEY_PREFIX}{MEASURE_TAG:02x}%"
    connection = env.postgres(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT (SELECT count(*) FROM deliveries), "
                           "(SELECT count(*) FROM deliveries WHERE delivery_key LIKE %s), "
                           "count(*), count(*) FILTER (WHERE status = 'superseded'), "
                           "count(*) FILTER (WHERE sent_at IS NULL) FROM test_runs",
                           (measured,))
            counts = cursor.fetchone()
    finally:
        connection.close()
    queue = ROUTES[STUDENT_TESTING]["queue"]
    return LedgerCounts(*counts, env.redis(redis_db).llen(queue))


@contextlib.contextmanager
def gunicorn(settings: Settings, app: str, env: dict[str, str], log_path: Path
             ) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run gunicorn with the production arguments for an app; yield the process and base URL."""
    port = free_port()
    argv = [sys.executable, *gunicorn_argv(settings, port, app=app)]
    with background(argv, env=env, log_path=log_path, cwd=REPO_ROOT) as process:
        base = f"http://{settings.server.host}:{port}"
        wait_for_http(base + "/", timeout=SERVER_START_SECONDS, process=process)
        yield process, base


def run_wrk(url: str, *, template: Path, requests: int, seconds: float, connections: int,
            threads: int, expected: int, tag: int, projects: int) -> dict:
    """Run wrk against a URL until it has `requests` answers or `seconds` passed."""
    per_thread = max(1, requests // threads)
    argv = ["wrk", "--threads", str(threads), "--connections", str(connections),
            "--duration", f"{max(1, round(seconds))}s", "--timeout", "10s",
            "--script", str(LOAD_SCRIPT), url, "--", str(template), SECRET, str(projects),
            ",".join(BRANCHES), ",".join(ASSIGNMENTS), str(per_thread), str(expected), str(tag),
            str(threads), KEY_PREFIX]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    summary = next((line[len("BENCH "):] for line in done.stdout.splitlines()
                    if line.startswith("BENCH ")), None)
    if done.returncode != 0 or summary is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = json.loads(summary)
    errors = {k: v for k, v in result.items()
              if k.endswith(("_errors", "timeouts", "unexpected_status")) and v}
    if errors:
        raise BenchError(f"wrk saw errors against {url}: {errors}")
    return result


def _wrk_options(args: argparse.Namespace, template: Path, expected: int) -> dict:
    return dict(template=template, connections=args.connections, threads=args.client_threads,
                expected=expected, projects=args.projects, requests=args.requests)


def warm_up(url: str, args: argparse.Namespace, template: Path, expected: int) -> None:
    """Load a server briefly so that its pools, caches and imports are ready."""
    run_wrk(url, seconds=args.warmup, tag=WARMUP_TAG, **_wrk_options(args, template, expected))


def measure(name: str, url: str, server: subprocess.Popen, args: argparse.Namespace,
            template: Path, expected: int) -> Load:
    """Load a warmed-up server and return the measured figures."""
    before, client_before = cpu_snapshot(), children_cpu_seconds()
    result = run_wrk(url, seconds=args.duration, tag=MEASURE_TAG,
                     **_wrk_options(args, template, expected))
    after = cpu_snapshot()
    server_cpu, _ = cpu_used(before, after, after.descendants(server.pid))
    database_cpu, _ = cpu_used(before, after, named_pids(after, DATABASE_PROCESSES))
    return Load(name, result["requests"], result["duration_us"] / 1e6, result["p50_us"] / 1e3,
                result["p90_us"] / 1e3, result["p99_us"] / 1e3, result["max_us"] / 1e3,
                server_cpu, database_cpu, children_cpu_seconds() - client_before)


def settled_counts(env: ServiceEnv, database: str, redis_db: int) -> LedgerCounts:
    """Return the counts once requests cut off by the end of the load have been answered.

    That is when every run has its message and two readings half a second apart agree; a
    server that never gets there fails the check that follows.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    previous = ledger_counts(env, database, redis_db)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = ledger_counts(env, database, redis_db)
        if current == previous and current.messages == current.runs:
            break
        previous = current
    return previous


def check_intake(counts: LedgerCounts, answered: int, connections: int) -> None:
    """Check that every delivery left one run and one message, and that some were superseded."""
    problems = []
    if not answered <= counts.measured_deliveries <= answered + connections:
        problems.append(f"{counts.measured_deliveries} deliveries recorded for {answered} "
                        "answers")
    if counts.runs != counts.deliveries:
        problems.append(f"{counts.runs} runs for {counts.deliveries} deliveries")
    if counts.messages != counts.runs or counts.unsent:
        problems.append(f"{counts.messages} messages for {counts.runs} runs, "
                        f"{counts.unsent} unsent")
    if not counts.superseded:
        problems.append("no run was superseded")
    if problems:
        raise BenchError("intake results are wrong: " + "; ".join(problems))


def run(args: argparse.Namespace) -> tuple[Load, Load, Load, LedgerCounts]:
    """Set everything up, measure intake, the floor and the bare route, and tear down."""
    ensure_command("wrk", "wrk")
    print(f"CPU busy before start (other processes): {busy_cpu_percent():.0f}%", flush=True)
    with services() as env, scratch_database(env) as database, \
            scratch_redis_db(env) as redis_db, \
            tempfile.TemporaryDirectory(prefix="gradehook-bench-intake-") as scratch:
        folder = Path(scratch)
        config = write_config(folder, args.workers, args.threads)
        child_env = {**_inherited_env(), **env.environ(postgres_db=database, redis_db=redis_db),
                     CONFIG_ENV: str(config), "PYTHONPATH": str(REPO_ROOT)}
        settings = load_settings(config, environ=child_env)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        engine.dispose()
        template = folder / "push.json"
        template.write_text(push_template())
        log_path = folder / "gunicorn.log"
        try:
            with gunicorn(settings, APP_FACTORY, child_env, log_path) as (server, base):
                warm_up(base + WEBHOOK_PATH, args, template, expected=202)
                intake = measure(f"intake (POST {WEBHOOK_PATH})", base + WEBHOOK_PATH, server,
                                 args, template, expected=202)
                counts = settled_counts(env, database, redis_db)
            check_intake(counts, intake.requests, args.connections)
            create_floor_table(env, database)
            with gunicorn(settings, FLOOR_APP, child_env, log_path) as (server, base):
                warm_up(base + FLOOR_PATH, args, template, expected=202)
                floor = measure(f"durable floor (POST {FLOOR_PATH})", base + FLOOR_PATH,
                                server, args, template, expected=202)
            with gunicorn(settings, BARE_APP, child_env, log_path) as (server, base):
                warm_up(base + BARE_PATH, args, template, expected=204)
                bare = measure(f"bare route (POST {BARE_PATH})", base + BARE_PATH, server,
                               args, template, expected=204)
        except BenchError:
            sys.stderr.write(_tail(log_path))
            raise
    return intake, floor, bare, counts


def _inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "POSTGRES_"))}


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def headline(intake: Load, floor: Load, bare: Load) -> str:
    """Return the one-line summary: figures, ratios and whether the issue's target is met."""
    ratio = intake.rate / bare.rate
    met = intake.rate >= TARGET_RATE and intake.p99_ms < TARGET_P99_MS and ratio >= TARGET_RATIO
    return (f"headline: intake {intake.rate:,.0f} deliveries/s, p50 {intake.p50_ms:.1f} ms, "
            f"p99 {intake.p99_ms:.1f} ms; durable floor {floor.rate:,.0f} req/s "
            f"(ratio {floor.rate / bare.rate:.2f}); bare {bare.rate:,.0f} req/s, "
            f"p99 {bare.p99_ms:.1f} ms; ratio {ratio:.2f}; target (>= {TARGET_RATE}/s, "
            f"p99 < {TARGET_P99_MS:g} ms, ratio >= {TARGET_RATIO}) {'met' if met else 'NOT met'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--requests", type=int, default=30000,
                        help="answers to wait for per endpoint (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="most seconds of load per endpoint (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of load before each measurement (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=16,
                        help="keep-alive connections of the client (default: %(default)s)")
    parser.add_argument("--client-threads", type=int, default=1,
                        help="wrk threads (default: %(default)s)")
    parser.add_argument("--projects", type=int, default=200,
                        help="distinct student projects pushed to (default: %(default)s)")
    parser.add_argument("--workers", type=int, help="override [server] web_workers")
    parser.add_argument("--threads", type=int, help="override [server] web_threads")
    args = parser.parse_args(argv)
    for name in ("requests", "duration", "warmup", "connections", "client_threads", "projects"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the machine, the table, the checks and the headline."""
    args = parse_args(argv)
    try:
        intake, floor, bare, counts = run(args)
    except BenchError as exc:
        print(f"bench.intake: {exc}", file=sys.stderr)
        return 1
    print(f"machine: {machine().describe()}")
    print(f"load: wrk, {args.connections} keep-alive connections, {args.client_threads} "
          f"thread(s), up to {args.requests} answers or {args.duration:g} s per endpoint")
    print()
    print(format_table(COLUMNS, [intake.row(bare), floor.row(bare), bare.row(bare)]))
    print()
    print(f"checked: every answer 202 and recorded; {counts.deliveries} deliveries, "
          f"{counts.runs} runs ({counts.superseded} superseded), {counts.messages} messages "
          f"waiting in Redis, none unsent")
    print(headline(intake, floor, bare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
