"""End-to-end benchmark: push delivery to final commit status, one at a time and in a burst.

Run `python -m bench.e2e` from the repository root. It starts gradehook's web process (gunicorn)
and a worker on a scratch PostgreSQL database and Redis index, a local stand-in for GitLab's API
and local bare git repositories, then measures:

- sequential pushes: the time from sending a push delivery to GitLab receiving the final commit
  status (p50, p95);
- a deadline burst: one push from each of N students at once; the time until every push has its
  final status, the throughput, and how many were lost (must be 0);
- the engine alone: the same assignment graded by `pipeline.grading.grade` in as many processes as
  the worker grades runs at once (its grading slots), warm reference cache: the throughput the
  burst is compared with.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import tomli_w

from bench.common import (REPO_ROOT, BenchError, CpuSnapshot, ServiceEnv, background,
                          cpu_snapshot, cpu_used, format_table, free_port, machine, named_pids,
                          scratch_database, scratch_redis_db, services, wait_for_http,
                          wait_until)
from pipeline.config import WorkerSettings
from pipeline.grading.cache import ReferenceCache
from pipeline.grading.grader import GradeOptions, grade
from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import upgrade
from tests.infra.gitrepos import GitServer
from tests.support.gitlab_standin import GitLabStandIn
from tests.infra.assignments import TWO_TESTS

SECRET = "bench-e2e-secret"
GROUP = "bench-2026/students"
REFERENCE = "bench-2026/reference"
ASSIGNMENT = "week1/hello"
TEST_YAML = TWO_TESTS
FINAL_STATES = ("success", "failed")
TARGET_P50_SECONDS, TARGET_BURST_RATIO = 1.0, 0.7


def solution(greeting: str, count: int) -> dict[str, str]:
    """Return the files of a solution."""
    return {f"{ASSIGNMENT}/hello.py": f"greeting = {greeting!r}\ncount = {count}\n"}


def push_body(project_id: int, path: str, before: str, after: str) -> bytes:
    """Return a push hook body for one commit touching the assignment."""
    fixture = REPO_ROOT / "tests" / "fixtures" / "gitlab" / "push_hook__assignment_commits.json"
    payload = json.loads(fixture.read_text())
    payload.update(ref="refs/heads/main", before=before, after=after, checkout_sha=after,
                   project_id=project_id, total_commits_count=1)
    payload["project"].update(id=project_id, path_with_namespace=path)
    payload["commits"] = [{**payload["commits"][0], "id": after, "added": [],
                           "modified": [f"{ASSIGNMENT}/hello.py"], "removed": []}]
    return json.dumps(payload).encode()


def deliver(port: int, body: bytes, key: str) -> float:
    """Send one push delivery; return the moment it was sent."""
    sent = time.time()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/gitlab", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
                 "X-Gitlab-Token": SECRET, "Idempotency-Key": key})
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 202:
            raise RuntimeError(f"push answered {answer.status}")
    return sent


def final_status_times(gitlab: GitLabStandIn) -> dict[str, float]:
    """Return, per commit SHA, when GitLab received its final commit status."""
    done = {}
    for request in gitlab.requests_to("POST", r"/statuses/[0-9a-f]{40}$"):
        if request.status == 201 and request.json.get("state") in FINAL_STATES:
            done.setdefault(request.path.rsplit("/", 1)[1], request.time)
    return done


def percentile(values: list[float], fraction: float) -> float:
    """Return a percentile by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def sequential(port: int, gitlab: GitLabStandIn, git: GitServer, project: dict,
               pushes: int) -> list[float]:
    """Push one commit at a time; return each delivery's latency to its final status."""
    latencies, before = [], gitlab.branches(project["id"])["main"]
    for index in range(pushes):
        sha = git.commit(project["path_with_namespace"], solution("hello", index % 5))
        gitlab.set_branch(project["id"], "main", sha)
        sent = deliver(port, push_body(project["id"], project["path_with_namespace"], before, sha),
                       f"seq-{sha}")
        finished = wait_until(lambda: final_status_times(gitlab).get(sha), timeout=120,
                              what=f"final status of sequential push {index}")
        latencies.append(finished - sent)
        before = sha
    return latencies


def make_students(gitlab: GitLabStandIn, git: GitServer, count: int) -> list[tuple[dict, str]]:
    """Create student projects, each a copy of one template repository with one commit."""
    template = f"{GROUP}/template"
    sha = git.commit(template, solution("hello", 3))
    students = []
    for index in range(count):
        path = f"{GROUP}/student{index:03d}"
        target = git.root / f"{path}.git"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(git.bare(template), target)
        students.append((gitlab.add_project(path, branches={"main": sha}), sha))
    return students


def burst(port: int, gitlab: GitLabStandIn, students: list[tuple[dict, str]]
          ) -> tuple[float, list[float], int]:
    """Push once for every student at the same time; return (seconds, latencies, lost)."""
    bodies = [(push_body(p["id"], p["path_with_namespace"], "0" * 40, sha), f"burst-{p['id']}")
              for p, sha in students]
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        sent = list(pool.map(lambda item: deliver(port, *item), bodies))
    projects = {p["id"] for p, _ in students}

    def all_final():
        statuses = [r for r in gitlab.requests_to("POST", r"/statuses/[0-9a-f]{40}$")
                    if r.status == 201 and r.json.get("state") in FINAL_STATES
                    and int(r.path.split("/")[4]) in projects]
        return statuses if len(statuses) >= len(students) else None

    finals = wait_until(all_final, timeout=600, what="final statuses of the burst")
    seconds = max(r.time for r in finals) - start
    by_project = {int(r.path.split("/")[4]): r.time for r in finals}
    latencies = [by_project[p["id"]] - s for (p, _), s in zip(students, sent)]
    lost = len(students) - len(by_project)
    return seconds, latencies, lost


def _grade_once(args: tuple[str, str, str]) -> float:
    student, reference, cache = args
    started = time.perf_counter()
    report = grade(student, reference, reference_cache=ReferenceCache(cache),
                   options=GradeOptions(reference_version="bench", assignment_id="bench"))
    if report.course_error:
        raise RuntimeError(report.course_error)
    return time.perf_counter() - started


def engine_alone(folder: Path, gradings: int, processes: int) -> tuple[float, list[float]]:
    """Grade the assignment with the engine only; return (gradings per second, durations)."""
    student, reference, cache = folder / "student", folder / "reference", folder / "cache"
    for directory, greeting in ((student, "hello"), (reference, "hello")):
        directory.mkdir(parents=True)
        (directory / "hello.py").write_text(f"greeting = {greeting!r}\ncount = 3\n")
    (reference / "test.yaml").write_text(TEST_YAML)
    job = (str(student), str(reference), str(cache))
    _grade_once(job)  # warm the reference cache
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        start = time.perf_counter()
        durations = pool.map(_grade_once, [job] * gradings, chunksize=1)
        seconds = time.perf_counter() - start
    return gradings / seconds, durations


@dataclass
class Service:
    """A running gradehook (web and worker) with its GitLab stand-in, git server and ledger."""

    port: int
    gitlab: GitLabStandIn
    git: GitServer
    env: ServiceEnv
    database: str
    folder: Path
    worker_pid: int
    web_pid: int


@contextlib.contextmanager
def running_service(concurrency: int, slots: int, fetch_delay: float = 0.0
                    ) -> Iterator[Service]:
    """Start web and worker on scratch PostgreSQL and Redis, with the stand-in and git repos.

    With a `fetch_delay`, every fetch waits that many seconds before the repository answers:
    GitLab across a network, where the local repositories answer at once.
    """
    with services() as env, scratch_database(env) as database, \
            scratch_redis_db(env) as redis_db, \
            tempfile.TemporaryDirectory(prefix="gradehook-bench-e2e-") as folder_name, \
            GitLabStandIn() as gitlab:
        folder = Path(folder_name)
        git = GitServer(folder / "git")
        git.commit(REFERENCE, {**solution("hello", 3), f"{ASSIGNMENT}/test.yaml": TEST_YAML})
        port = free_port()
        config = folder / "config.toml"
        config.write_text(tomli_w.dumps({
            "data_dir": str(folder / "data"), "log_level": "WARNING",
            "server": {"port": port},
            "gitlab": {"url": gitlab.url, "token": gitlab.bot.token, "webhook_secret": SECRET,
                       "clone_base": git.base_url},
            "worker": {"concurrency": concurrency, "grading_slots": slots},
            "courses": [{"name": "bench", "student_projects": [GROUP + "/"],
                         "reference_project": REFERENCE, "discover_assignments": False,
                         "assignments": [{"directory": ASSIGNMENT}]}]}))
        process_env = {**os.environ, **env.environ(postgres_db=database, redis_db=redis_db),
                       "GRADEHOOK_CONFIG": str(config),
                       **delayed_fetches(folder / "gitconfig", fetch_delay)}
        os.environ.update(env.environ(postgres_db=database, redis_db=redis_db))
        engine = make_engine(f"postgresql+psycopg://{env.postgres_user}:{env.postgres_password}"
                             f"@{env.postgres_host}:{env.postgres_port}/{database}")
        upgrade(engine)
        engine.dispose()
        cli = [sys.executable, "-m", "gradehook", "--config", str(config)]
        with background([*cli, "worker", "start"], env=process_env, log_path=folder / "worker.log",
                        cwd=REPO_ROOT) as worker, \
                background([*cli, "web", "--port", str(port)], env=process_env,
                           log_path=folder / "web.log", cwd=REPO_ROOT) as web:
            wait_for_http(f"http://127.0.0.1:{port}/api/tests-celery/health", timeout=90,
                          process=web)
            try:
                wait_until(lambda: _healthy(port), timeout=90, what="a worker to be up")
                yield Service(port, gitlab, git, env, database, folder, worker.pid, web.pid)
            except BenchError:
                for log in ("worker.log", "web.log"):
                    print(f"--- last lines of {log}:", *(folder / log).read_text(
                        errors="replace").splitlines()[-30:], sep="\n", file=sys.stderr)
                raise


def delayed_fetches(path: Path, seconds: float) -> dict[str, str]:
    """Return the environment that makes git wait before each local fetch is answered.

    git runs a local repository's upload-pack through the shell, so the command can sleep
    first; a global configuration file (GIT_CONFIG_GLOBAL) gives it to gradehook's processes
    alone, not to the bench's own git.
    """
    if seconds <= 0:
        return {}
    path.write_text(f'[remote "origin"]\n\tuploadpack = "sleep {seconds:g}; git-upload-pack"\n')
    return {"GIT_CONFIG_GLOBAL": str(path)}


def run(args: argparse.Namespace) -> int:
    args.engine_processes = args.engine_processes or args.grading_slots
    with running_service(args.concurrency, args.grading_slots, args.fetch_delay) as service:
        port, gitlab, git = service.port, service.gitlab, service.git
        first_sha = git.commit(f"{GROUP}/solo", solution("hello", 3))
        solo = gitlab.add_project(f"{GROUP}/solo", branches={"main": first_sha})
        students = make_students(gitlab, git, args.students)
        sequential(port, gitlab, git, solo, 2)  # warm up mirrors, caches, imports
        latencies = sequential(port, gitlab, git, solo, args.sequential)
        before = cpu_snapshot()
        burst_seconds, burst_latencies, lost = burst(port, gitlab, students)
        during_burst = machine_time(before, cpu_snapshot(), service, args.students)
        phases = phase_medians(service.env, service.database)
        before = cpu_snapshot()
        engine_rate, engine_durations = engine_alone(service.folder / "engine",
                                                     args.engine_gradings, args.engine_processes)
        after = cpu_snapshot()
        during_burst.append(["engine alone, per grading: machine busy / idle",
                             f"{1000 * (after.busy - before.busy) / args.engine_gradings:.1f} / "
                             f"{1000 * (after.idle - before.idle) / args.engine_gradings:.1f}"])
    burst_rate = args.students / burst_seconds
    p50 = statistics.median(latencies)
    rows = [
        ["sequential push → final status", len(latencies), f"{p50:.3f}",
         f"{percentile(latencies, 0.95):.3f}", "", ""],
        [f"burst of {args.students} pushes", args.students,
         f"{statistics.median(burst_latencies):.3f}", f"{percentile(burst_latencies, 0.95):.3f}",
         f"{burst_rate:.2f}", f"{burst_seconds:.1f}"],
        [f"engine alone, {args.engine_processes} processes", args.engine_gradings,
         f"{statistics.median(engine_durations):.3f}",
         f"{percentile(engine_durations, 0.95):.3f}", f"{engine_rate:.2f}", ""],
    ]
    m = machine()
    print(f"machine: {m.cores} cores, {m.cpu_model}, {m.memory_gib:.1f} GiB; "
          f"worker concurrency {args.concurrency}, grading slots {args.grading_slots}")
    print(format_table(["measurement", "count", "p50 s", "p95 s", "per second", "total s"], rows))
    print(format_table(["phase of a run (all runs)", "p50 s", "p95 s"], phases))
    print(format_table(["CPU time during the burst, per run", "ms"], during_burst))
    ratio = burst_rate / engine_rate
    print(f"headline: p50 push→final status {p50:.3f}s (target <{TARGET_P50_SECONDS:g}s), "
          f"burst {args.students} graded in {burst_seconds:.1f}s, lost {lost}, "
          f"throughput {burst_rate:.2f}/s = {ratio:.0%} of engine alone "
          f"(target ≥{TARGET_BURST_RATIO:.0%})")
    return 0 if lost == 0 else 1


def machine_time(before: CpuSnapshot, after: CpuSnapshot, service: Service,
                 runs: int) -> list[list[object]]:
    """Return where the machine's CPU time went per run between two snapshots."""
    worker, waited_for = cpu_used(before, after, after.descendants(service.worker_pid))
    web = sum(cpu_used(before, after, after.descendants(service.web_pid)))
    stand_ins = sum(cpu_used(before, after, {os.getpid()}))
    parts = [
        ("worker processes (Celery, ledger, GitLab calls, the engine's own Python)", worker),
        ("processes the worker waited for (git, sandbox launchers)", waited_for),
        ("web process (gunicorn)", web),
        ("PostgreSQL", cpu_used(before, after, named_pids(after, ("postgres",)))[0]),
        ("Redis", cpu_used(before, after, named_pids(after, ("redis-server",)))[0]),
        ("this script (GitLab API stand-in, clients)", stand_ins),
    ]
    busy, idle = after.busy - before.busy, after.idle - before.idle
    parts.append(("elsewhere (sandboxed programs reaped outside the worker, kernel)",
                  busy - sum(seconds for _, seconds in parts)))
    parts += [("machine busy", busy), ("machine idle", idle)]
    return [[name, f"{1000 * seconds / runs:.1f}"] for name, seconds in parts]


PHASES = (("queued → started", "queued_at", "started_at"),
          ("started → cloned", "started_at", "cloned_at"),
          ("cloned → tested", "cloned_at", "tested_at"),
          ("tested → finished", "tested_at", "finished_at"),
          ("finished → reported", "finished_at", "reported_at"))


def phase_medians(env, database: str) -> list[list[object]]:
    """Return, per phase of a run, the median and p95 seconds over every graded run."""
    connection = env.postgres(database)
    try:
        rows = []
        with connection.cursor() as cursor:
            for name, start, end in PHASES:
                cursor.execute(
                    f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), "
                    f"percentile_cont(0.95) WITHIN GROUP (ORDER BY x) FROM (SELECT "
                    f"extract(epoch FROM {end} - {start}) AS x FROM test_runs "
                    f"WHERE {end} IS NOT NULL AND {start} IS NOT NULL) AS d")
                median, p95 = cursor.fetchone()
                rows.append([name, f"{median:.3f}", f"{p95:.3f}"])
        return rows
    finally:
        connection.close()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tests-celery/health",
                                    timeout=5) as answer:
            return json.load(answer)["workers"] > 0
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=15, help="sequential pushes")
    parser.add_argument("--students", type=int, default=200, help="pushes in the burst")
    add_worker_options(parser)
    parser.add_argument("--engine-processes", type=int,
                        help="processes grading at once for the engine-alone figure "
                             "(default: as many as the worker's grading slots)")
    parser.add_argument("--engine-gradings", type=int, default=40,
                        help="gradings for the engine-alone figure")
    add_fetch_delay_option(parser)
    return run(worker_arguments(parser.parse_args()))


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    """Add the worker's processes and grading slots, gradehook's defaults unless given."""
    parser.add_argument("--concurrency", type=positive, default=None,
                        help="worker processes (default: gradehook's, twice the grading slots)")
    parser.add_argument("--grading-slots", type=positive, default=WorkerSettings().slots,
                        help="runs grading at once (default: gradehook's, the cores plus one)")


def worker_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """Fill in the worker processes left open: twice the grading slots, as gradehook does."""
    args.concurrency = args.concurrency or 2 * args.grading_slots
    return args


def positive(text: str) -> int:
    """Return a whole number of at least 1, for argparse."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_fetch_delay_option(parser: argparse.ArgumentParser) -> None:
    """Add --fetch-delay: seconds each fetch waits for the repository, as from a distant GitLab."""
    parser.add_argument("--fetch-delay", type=float, default=0.0,
                        help="seconds every fetch waits before the repository answers, as "
                             "from a GitLab across a network (default 0: local repositories)")


if __name__ == "__main__":
    sys.exit(main())
