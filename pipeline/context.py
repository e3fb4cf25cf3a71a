"""Per-process resources of a worker or web process: settings, database sessions, clients."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gitlab_client.client import GitLabClient
from pipeline.config import Settings
from pipeline.grading.cache import ReferenceCache
from pipeline.ledger.db import make_engine, make_sessionmaker
from pipeline.repos import RepositoryCache


@dataclass(frozen=True)
class Resources:
    """What a process needs to do gradehook's work, built once per process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    repositories: RepositoryCache
    reference_cache: ReferenceCache
    gitlab: GitLabClient | None  # None when no token is configured: nothing is posted


def build_resources(settings: Settings) -> Resources:
    """Create the engine, sessions, repository and reference caches and GitLab client."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    g = settings.gitlab
    return Resources(
        settings=settings, engine=engine, sessions=make_sessionmaker(engine),
        repositories=RepositoryCache(settings.repository_cache, g.git_base, g.token,
                                     timeout=max(60.0, g.request_timeout_seconds * 6)),
        reference_cache=ReferenceCache(settings.reference_cache),
        gitlab=GitLabClient(g.url, g.token, timeout=g.request_timeout_seconds,
                            bot_username=g.bot_username) if g.token else None)


@functools.lru_cache(maxsize=4)
def _resources_for(settings: Settings, pid: int) -> Resources:
    return build_resources(settings)


def resources_for(settings: Settings) -> Resources:
    """Return this process's resources, rebuilt after a fork so no connection is shared."""
    return _resources_for(settings, os.getpid())
