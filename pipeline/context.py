"""Per-process resources of a worker or web process: settings, database sessions, clients."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import Settings
from pipeline.ledger.db import make_engine, make_sessionmaker
from pipeline.repos import RepositoryCache


@dataclass(frozen=True)
class Resources:
    """What a process needs to do gradehook's work, built once per process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    repositories: RepositoryCache


def build_resources(settings: Settings) -> Resources:
    """Create the engine, session factory and repository cache for these settings."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    return Resources(
        settings=settings, engine=engine, sessions=make_sessionmaker(engine),
        repositories=RepositoryCache(settings.repository_cache, settings.gitlab.git_base,
                                     settings.gitlab.token,
                                     timeout=max(60.0, settings.gitlab.request_timeout_seconds * 6)))


@functools.lru_cache(maxsize=4)
def _resources_for(settings: Settings, pid: int) -> Resources:
    return build_resources(settings)


def resources_for(settings: Settings) -> Resources:
    """Return this process's resources, rebuilt after a fork so no connection is shared."""
    return _resources_for(settings, os.getpid())
