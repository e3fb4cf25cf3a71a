"""Test sessions and benchmarks sharing one Redis never work in the same database index."""

from __future__ import annotations

from bench.common import REDIS_CLAIM_KEY
from tests.infra.services import claim_redis_db, redis_client, release_redis_db


def test_a_claimed_index_is_not_handed_out_again_until_released():
    first = claim_redis_db()
    try:
        second = claim_redis_db()
        release_redis_db(second)
        assert second != first
        assert redis_client(first).get(REDIS_CLAIM_KEY) is not None
    finally:
        release_redis_db(first)
    assert redis_client(first).get(REDIS_CLAIM_KEY) is None
