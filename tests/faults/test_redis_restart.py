"""Redis restarted (losing its data) during a stream of deliveries: every delivery is graded."""

from __future__ import annotations

import pytest

from tests.faults.service import RECONCILE_EVERY_SECOND, assert_each_graded_once, \
    deliver_numbered, fault_service
from tests.infra.processes import wait_for

pytestmark = pytest.mark.slow


def test_every_delivery_is_graded_across_a_redis_restart(
        tmp_path, service_settings, git_server, monkeypatch):
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": RECONCILE_EVERY_SECOND}) as service:
        deliveries: dict[int, tuple[str, str]] = {}  # index -> (sha, run id)

        def deliver(index: int) -> None:
            deliver_numbered(service, deliveries, index, seconds=1)

        with service.worker("worker"), service.beat():
            for index in range(3):
                deliver(index)
            wait_for(lambda: service.broker.client().llen("high_priority") >= 1, timeout=30,
                     what="a run waiting in Redis behind the one being graded")
            service.broker.stop()
            for index in range(3, 5):
                deliver(index)
            service.broker.start()
            for index in range(5, 7):
                deliver(index)
            service.wait_ended([run_id for _, run_id in deliveries.values()], timeout=150)

        assert_each_graded_once(service, deliveries)
