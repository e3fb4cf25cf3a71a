"""`gradehook web|worker start|beat|flower|run`: start gradehook's processes."""

from __future__ import annotations

import os
import sys

import click

from gradehook.sandbox_checks import check_sandbox
from gradehook.settings import settings_from
from gradehook.supervisor import STOP_GRACE_SECONDS, Child, start_child, supervise
from pipeline.celery_app import QUEUES, create_celery
from pipeline.config import CONFIG_ENV, PORT_ENV
from pipeline.ledger.db import make_engine
from pipeline.ledger.migrate import schema_problem, upgrade

APP_FACTORY = "webhooks.app:create_app()"
PORT = click.IntRange(1, 65535)
OPEN_WEBHOOK = ("gradehook: warning: neither gitlab.webhook_secret nor gitlab.signing_token is "
                "set, so POST /webhooks/gitlab takes deliveries from anyone who reaches it: "
                "anyone could have commits graded, runs superseded or merge requests handed in; "
                "give the GitLab webhook a secret token and set GITLAB_WEBHOOK_SECRET to it")


@click.command("web")
@click.option("--port", type=PORT, help="Port to listen on (default: server.port).")
@click.pass_context
def web(ctx: click.Context, port: int | None) -> None:
    """Serve the web application with gunicorn."""
    settings = settings_from(ctx)
    warn_of_an_open_webhook(settings)
    os.execve(sys.executable, [sys.executable, *gunicorn_argv(settings, port)],
              _child_env(ctx, port))


@click.group("worker")
def worker() -> None:
    """Run and inspect Celery workers."""


@worker.command("start")
@click.option("--concurrency", type=click.IntRange(min=0),
              help="Worker processes (default, or 0: worker.concurrency, else twice the "
                   "grading slots).")
@click.option("--beat", is_flag=True, help="Also run the scheduler (reconciler) in this worker.")
@click.option("--pool", default="prefork", show_default=True,
              type=click.Choice(["prefork", "solo", "threads"]),
              help="How the worker runs tasks side by side: prefork (a process each, the only "
                   "pool that enforces the [worker] time limits), threads (a thread each) or "
                   "solo (one at a time, in this process).")
@click.pass_context
def worker_start(ctx: click.Context, concurrency: int | None, beat: bool, pool: str) -> None:
    """Consume the notify, high_priority, default and low_priority queues."""
    settings = settings_from(ctx)
    check_sandbox(ctx, settings)
    check_ledger_answers(settings)
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
@click.option("--port", type=PORT, default=5555, show_default=True,
              help="Port Flower's web page listens on.")
@click.pass_context
def flower(ctx: click.Context, port: int) -> None:
    """Run Flower, the monitoring UI of the workers."""
    app = create_celery(settings_from(ctx))
    app.start(["flower", f"--port={port}"])


@click.command("run")
@click.option("--port", type=PORT, help="Port of the web process (default: server.port).")
@click.option("--stop-grace", type=click.FloatRange(min=0), default=STOP_GRACE_SECONDS,
              show_default=True,
              help="Seconds Ctrl-C waits for runs in progress before stopping them.")
@click.pass_context
def run(ctx: click.Context, port: int | None, stop_grace: float) -> None:
    """Apply migrations, then run web and worker together until Ctrl-C.

    Ctrl-C (or SIGTERM) lets the runs in progress finish, for --stop-grace seconds at most;
    a second Ctrl-C stops at once, and the runs it stopped are graded again when the worker
    next starts. Exit code 0 after a stop asked for, 1 when a process exited on its own or had
    to be killed.
    """
    settings = settings_from(ctx)
    check_sandbox(ctx, settings)
    warn_of_an_open_webhook(settings)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    env = _child_env(ctx, port)
    port = settings.server.port if port is None else port
    web = Child("web", start_child([sys.executable, *gunicorn_argv(settings, port)], env),
                serves=(settings.server.host, port))
    worker = Child("worker", start_child([sys.executable, "-m", "gradehook", "worker", "start",
                                          "--beat"], env), workspace=settings.workspace)
    sys.exit(supervise([web, worker], grace=stop_grace))


def warn_of_an_open_webhook(settings) -> None:
    """Say on stderr when the webhook route authenticates no delivery: webhooks.auth then
    accepts every one, the operator's choice, but one easily made by forgetting step 2 of the
    README's set-up."""
    if not (settings.gitlab.webhook_secret or settings.gitlab.signing_token):
        click.echo(OPEN_WEBHOOK, err=True)


def check_ledger_answers(settings) -> None:
    """Refuse to start a worker whose ledger does not answer, or lacks this release's tables:
    it would take runs it cannot record, each failing as the ledger's error. Either is said in
    one line (a database error raised here, by gradehook.cli.main)."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            problem = schema_problem(connection)
    finally:
        engine.dispose()
    if problem is not None:
        click.echo(f"gradehook: {problem}", err=True)
        raise click.exceptions.Exit(2)


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
# gunicorn's default access log line with the path in place of the whole target: a query string
# may carry a key (a private badge's, server.badge_key), which no log may hold.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def gunicorn_argv(settings, port: int | None, app: str = APP_FACTORY) -> list[str]:
    """Return the arguments that run gunicorn with gradehook's production settings."""
    s = settings.server
    # A worker holds at most twice as many connections as it has threads and closes surplus
    # keep-alive connections after their answer: a client's reconnect then goes to whichever
    # worker has room, so one worker cannot take every keep-alive connection of a proxy or
    # load generator while the others idle. No control socket: gunicorn's default is one path
    # per user, which a second gunicorn of that user (a second course, the tests) takes over,
    # so `gunicornc` would reach and stop the wrong service. Signals control gradehook's.
    return ["-m", "gunicorn", "--bind", f"{s.host}:{s.port if port is None else port}",
            "--workers", str(s.web_processes), "--threads", str(s.web_threads),
            "--worker-connections", str(WORKER_CONNECTIONS_PER_THREAD * s.web_threads),
            "--worker-class", "gthread", "--timeout", "30", "--graceful-timeout", "10",
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT,
            "--no-control-socket", app]
