"""Notice a broker that lost its messages: a marker key in Redis vanishes together with them."""

from __future__ import annotations

import logging

import redis

from pipeline.config import Settings

log = logging.getLogger(__name__)

MARKER_KEY = "gradehook:broker-marker"
MARKER_TIMEOUT_SECONDS = 2.0


def broker_forgot(settings: Settings) -> bool:
    """Tell whether the broker's data is new since the last look (the marker was gone); mark it.

    Redis keeps the marker as long as it keeps its queues: a restart without persistence, a
    flush or a failover to an empty replica removes both. Exactly one caller sees True for
    each loss. The embedded broker and an unreachable Redis answer False.
    """
    if settings.embedded:
        return False
    client = redis.Redis.from_url(settings.broker_url, socket_timeout=MARKER_TIMEOUT_SECONDS,
                                  socket_connect_timeout=MARKER_TIMEOUT_SECONDS)
    try:
        forgot = bool(client.set(MARKER_KEY, "1", nx=True))
    except redis.RedisError as exc:
        log.warning("broker marker not checked: %s", type(exc).__name__)
        return False
    finally:
        client.close()
    if forgot:
        log.warning("the broker holds none of the messages sent before now (new or restarted "
                    "without its data): queued runs are sent again")
    return forgot
