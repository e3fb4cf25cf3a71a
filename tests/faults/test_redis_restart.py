"""Redis restarted (losing its data) during a stream of deliveries: every delivery is graded."""

from __future__ import annotations

import pytest

from pipeline.ledger.models import RunStatus
from tests.faults.service import SHORT_LIMITS, fault_service, slow_solution
from tests.infra.processes import wait_for

pytestmark = pytest.mark.slow
RECONCILE_EVERY_SECOND = {**SHORT_LIMITS, "reconcile_interval_seconds": 1.0}


def greeting_of(index: int) -> str:
    """Return the greeting of delivery `index`: even ones are right (pass), odd ones fail."""
    return "hello" if index % 2 == 0 else f"hi {index}"


def test_every_delivery_is_graded_across_a_redis_restart(
        tmp_path, service_settings, git_server, monkeypatch):
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": RECONCILE_EVERY_SECOND}) as service:
        deliveries: dict[int, tuple[str, str]] = {}  # index -> (sha, run id)

        def deliver(index: int) -> None:
            sha, answer = service.deliver(f"student-{index}",
                                          slow_solution(greeting_of(index), 1),
                                          key=f"delivery-{index}")
            run_id, = answer["runs"]
            deliveries[index] = (sha, run_id)

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

        for index, (sha, run_id) in sorted(deliveries.items()):
            run = service.run(run_id)
            expected = RunStatus.PASSED if index % 2 == 0 else RunStatus.FAILED
            assert (index, run.status) == (index, expected)
            assert [r.id for r in service.runs_of(sha)] == [run_id]
            final = [state for state in service.posted_states(sha) if state != "pending"
                     and state != "running"]
            assert final == ["success" if expected is RunStatus.PASSED else "failed"]
