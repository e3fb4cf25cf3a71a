"""Health probes, each with a short timeout: broker, database, workers; the runs waiting and
running, and course problems seen."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import redis
from celery import Celery
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.config import Settings
from pipeline.ledger.backlog import Backlog, backlog_if_readable
from pipeline.ledger.migrate import schema_problem
from pipeline.ledger.models import utcnow
from pipeline.reference_checks import reference_problems

PROBE_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Health:
    """The measured state of the service's parts."""

    broker: str
    broker_status: str
    broker_error: str | None
    database: str
    database_error: str | None
    workers: int
    worker_names: tuple[str, ...]
    # Course problems change neither the status nor the code: webhooks are still taken.
    problems: tuple[str, ...]
    # Nor does the backlog (None: the ledger could not be read): it is load, not a fault.
    backlog: Backlog | None
    measured_at: dt.datetime

    @property
    def healthy(self) -> bool:
        """Tell whether work sent now would be done: broker, database and a worker are up."""
        return self.broker_status == "up" and self.database == "up" and self.workers > 0

    def as_dict(self) -> dict:
        """Return the answer of the health endpoint."""
        return {"status": "healthy" if self.healthy else "unhealthy", "backend": "celery",
                "broker": self.broker, "broker_status": self.broker_status,
                "broker_error": self.broker_error, "database": self.database,
                "database_error": self.database_error, "workers": self.workers,
                "worker_names": list(self.worker_names), "problems": list(self.problems),
                "runs": None if self.backlog is None else self.backlog.as_dict(self.measured_at)}


def check_health(settings: Settings, engine: Engine, celery: Celery) -> Health:
    """Probe the broker, the database and the workers."""
    broker_error = _broker_error(settings)
    database_error = _database_error(engine)
    workers = () if broker_error else _worker_names(celery)
    return Health(broker="filesystem" if settings.embedded else "redis",
                  broker_status="down" if broker_error else "up", broker_error=broker_error,
                  database="down" if database_error else "up", database_error=database_error,
                  workers=len(workers), worker_names=workers,
                  problems=() if database_error else _problems(settings, engine),
                  backlog=None if database_error else backlog_if_readable(engine),
                  measured_at=utcnow())


def _broker_error(settings: Settings) -> str | None:
    if settings.embedded:
        folder = settings.broker_folder
        if folder.is_dir() and os.access(folder, os.W_OK):
            return None
        return f"broker folder {folder} is missing or not writable"
    r = settings.redis
    client = redis.Redis(host=r.host, port=r.port, password=r.password or None, db=r.db,
                         socket_timeout=PROBE_TIMEOUT_SECONDS,
                         socket_connect_timeout=PROBE_TIMEOUT_SECONDS)
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


def _database_error(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            return schema_problem(connection)
    except Exception as exc:  # any driver error means the database is unusable
        return type(exc).__name__


def _problems(settings: Settings, engine: Engine) -> tuple[str, ...]:
    try:
        with Session(engine) as session:
            return tuple(reference_problems(session, settings.courses))
    except SQLAlchemyError:  # a ledger not yet upgraded: no problem is known
        return ()


def _worker_names(celery: Celery) -> tuple[str, ...]:
    try:
        replies = celery.control.ping(timeout=PROBE_TIMEOUT_SECONDS) or []
    except Exception:  # an unreachable broker: no worker can be seen
        return ()
    return tuple(sorted(name for reply in replies for name in reply))
