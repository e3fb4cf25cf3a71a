"""`gradehook web|worker start|beat|flower|run`: start gradehook's processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from gradehook.settings import settings_from
from pipeline.celery_app import QUEUES, create_celery
from pipeline.config import CONFIG_ENV, PORT_ENV
from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import upgrade

STOP_GRACE_SECONDS = 15
APP_FACTORY = "webhooks.app:create_app()"


@click.command("web")
@click.option("--port", type=int, help="Port to listen on (default: server.port).")
@click.pass_context
def web(ctx: click.Context, port: int | None) -> None:
    """Serve the web application with gunicorn."""
    settings = settings_from(ctx)
    os.execve(sys.executable, [sys.executable, *gunicorn_argv(settings, port)],
              _child_env(ctx, port))


@click.group("worker")
def worker() -> None:
    """Run and inspect Celery workers."""


@worker.command("start")
@click.option("--concurrency", type=int,
              help="Worker processes (default: worker.concurrency, else twice the grading "
                   "slots).")
@click.option("--beat", is_flag=True, help="Also run the scheduler (reconciler) in this worker.")
@click.option("--pool", default="prefork", show_default=True,
              type=click.Choice(["prefork", "solo", "threads"]))
@click.pass_context
def worker_start(ctx: click.Context, concurrency: int | None, beat: bool, pool: str) -> None:
    """Consume the notify, high_priority, default and low_priority queues."""
    settings = settings_from(ctx)
    app = create_celery(settings)
    argv = ["worker", "--queues", ",".join(QUEUES), "--loglevel", settings.log_level,
            "--concurrency", str(concurrency or settings.worker.processes),
            "--prefetch-multiplier", "1", "--pool", pool, "--hostname", "gradehook@%h",
            "--without-mingle", "--without-gossip"]
    if beat:
        argv += ["--beat", "--schedule", str(settings.data_dir / "beat-schedule")]
    app.worker_main(argv)


@click.command("beat")
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run the scheduler that sends the reconciler on its interval."""
    settings = settings_from(ctx)
    app = create_celery(settings)
    app.start(["beat", "--loglevel", settings.log_level,
               "--schedule", str(settings.data_dir / "beat-schedule")])


@click.command("flower")
@click.option("--port", type=int, default=5555, show_default=True)
@click.pass_context
def flower(ctx: click.Context, port: int) -> None:
    """Run Flower, the monitoring UI of the workers."""
    app = create_celery(settings_from(ctx))
    app.start(["flower", f"--port={port}"])


@click.command("run")
@click.option("--port", type=int, help="Port of the web process (default: server.port).")
@click.pass_context
def run(ctx: click.Context, port: int | None) -> None:
    """Apply migrations, then run web and worker together until Ctrl-C."""
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    env = _child_env(ctx, port)
    children = [
        subprocess.Popen([sys.executable, *gunicorn_argv(settings, port)], env=env),
        subprocess.Popen([sys.executable, "-m", "gradehook", "worker", "start", "--beat"],
                         env=env),
    ]
    click.echo(f"gradehook running on http://{settings.server.host}:"
               f"{port or settings.server.port} (Ctrl-C stops it)")
    sys.exit(_supervise(children))


def _child_env(ctx: click.Context, port: int | None = None) -> dict[str, str]:
    """Return the environment for child processes: the same config file, the port served."""
    env = dict(os.environ)
    config = ctx.find_root().obj.get("config_path")
    if config:
        env[CONFIG_ENV] = os.path.abspath(config)
    if port is not None:
        env[PORT_ENV] = str(port)
    return env


WORKER_CONNECTIONS_PER_THREAD = 2


def gunicorn_argv(settings, port: int | None, app: str = APP_FACTORY) -> list[str]:
    """Return the arguments that run gunicorn with gradehook's production settings."""
    s = settings.server
    # A worker holds at most twice as many connections as it has threads and closes surplus
    # keep-alive connections after their answer: a client's reconnect then goes to whichever
    # worker has room, so one worker cannot take every keep-alive connection of a proxy or
    # load generator while the others idle.
    return ["-m", "gunicorn", "--bind", f"{s.host}:{port or s.port}",
            "--workers", str(s.web_workers), "--threads", str(s.web_threads),
            "--worker-connections", str(WORKER_CONNECTIONS_PER_THREAD * s.web_threads),
            "--worker-class", "gthread", "--timeout", "30", "--graceful-timeout", "10",
            "--access-logfile", "-", app]


def _supervise(children: list[subprocess.Popen]) -> int:
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        signal.sigtimedwait([signal.SIGCHLD], 0.5) if hasattr(signal, "sigtimedwait") \
            else time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if stopping else 1
