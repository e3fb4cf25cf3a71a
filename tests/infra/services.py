"""Access to the Redis and PostgreSQL servers that `./dev test` or CI started for the tests."""

from __future__ import annotations

import base64
import json
import os
import random
import secrets

import psycopg2
import psycopg2.errors
import pytest
import redis

from bench.common import REDIS_CLAIM_KEY
from tests.infra.processes import wait_for

# Redis database indexes the tests work in (benchmarks take the lowest free one, 0 first), how
# long a claim outlives a session that died, and how long a test waits for a free index.
TEST_REDIS_DBS = tuple(range(1, 16))
CLAIM_SECONDS, CLAIM_WAIT_SECONDS = 3600, 120

# What points gradehook at Redis and PostgreSQL; without any of them it runs embedded.
SERVICE_VARIABLES = ("REDIS_HOST", "REDIS_PORT", "REDIS_DB", "POSTGRES_HOST", "POSTGRES_PORT",
                     "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
SERVICES_MISSING = ("Redis and PostgreSQL are not configured: run the tests with `./dev test`, "
                    "which starts them (REDIS_HOST/POSTGRES_HOST unset)")


def require_service_env() -> dict[str, str]:
    """Return the service variables, failing the test (never skipping) when they are absent."""
    if not os.environ.get("REDIS_HOST") or not os.environ.get("POSTGRES_HOST"):
        pytest.fail(SERVICES_MISSING)
    return {name: os.environ[name] for name in (
        "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "POSTGRES_HOST", "POSTGRES_PORT",
        "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB") if name in os.environ}


# The servers the test runner was given; fixtures point the variables elsewhere later.
POSTGRES_SERVER = {"host": os.environ.get("POSTGRES_HOST", ""),
                   "port": os.environ.get("POSTGRES_PORT", "5432"),
                   "user": os.environ.get("POSTGRES_USER", "gradehook"),
                   "password": os.environ.get("POSTGRES_PASSWORD", ""),
                   "dbname": os.environ.get("POSTGRES_DB", "gradehook")}
REDIS_SERVER = (os.environ.get("REDIS_HOST", ""), int(os.environ.get("REDIS_PORT", 6379)),
                os.environ.get("REDIS_PASSWORD") or None)


def admin_connection():
    """Open an autocommit connection to the maintenance database."""
    require_service_env()
    connection = psycopg2.connect(host=POSTGRES_SERVER["host"], port=POSTGRES_SERVER["port"],
                                  user=POSTGRES_SERVER["user"],
                                  password=POSTGRES_SERVER["password"],
                                  dbname=POSTGRES_SERVER["dbname"], connect_timeout=5)
    connection.autocommit = True
    return connection


def create_database() -> str:
    """Create an empty PostgreSQL database with a fresh name and return the name."""
    name = "gradehook_test_" + secrets.token_hex(6)
    connection = admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return name


def drop_database(name: str) -> None:
    """Drop a test database, ending any connections still open to it.

    PostgreSQL 15 refuses a role that is not superuser to end an autovacuum worker busy in the
    database (InsufficientPrivilege); the drop is tried again until the worker has finished.
    """
    def dropped() -> bool:
        connection = admin_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return True
        except psycopg2.errors.InsufficientPrivilege:
            return False
        finally:
            connection.close()

    wait_for(dropped, timeout=60, interval=0.2, what=f"autovacuum to leave database {name}")


def redis_client(db: int = 0) -> redis.Redis:
    """Return a client of the test Redis server (as given to the runner, whatever tests change)."""
    require_service_env()
    return redis.Redis(host=REDIS_SERVER[0], port=REDIS_SERVER[1], password=REDIS_SERVER[2],
                       db=db, socket_timeout=5)


def take_requested_reports(db: int) -> list[list[str]]:
    """Return the run ids of each report_runs message sent so far to a test's Redis database,
    in order, and take them off its queue."""
    client = redis_client(db)
    messages = [json.loads(m) for m in client.lrange("notify", 0, -1)]
    client.delete("notify")
    return [json.loads(base64.b64decode(m["body"]))[0][0] for m in messages]


def claim_redis_db() -> int:
    """Return a Redis database index (1 to 15) no other test session or benchmark works in.

    The index is claimed with REDIS_CLAIM_KEY, set only if absent and expiring after
    CLAIM_SECONDS should the session die; what a dead session left there is removed. The caller
    releases it with release_redis_db().
    """
    return wait_for(_claim_any_redis_db, timeout=CLAIM_WAIT_SECONDS,
                    what="a Redis database index no other session works in")


def _claim_any_redis_db() -> int | None:
    for index in random.sample(TEST_REDIS_DBS, len(TEST_REDIS_DBS)):
        client = redis_client(index)
        if client.set(REDIS_CLAIM_KEY, f"test session {os.getpid()}", nx=True,
                      ex=CLAIM_SECONDS):
            for key in client.scan_iter(count=1000):
                if key != REDIS_CLAIM_KEY.encode():
                    client.delete(key)
            return index
    return None


def release_redis_db(index: int) -> None:
    """Empty a claimed Redis database index, its claim with it."""
    redis_client(index).flushdb()
