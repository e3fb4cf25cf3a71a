"""The worker's disk full while a push waits: the run is tried again and graded once there is
room, instead of ending as gradehook's unexpected error."""

from __future__ import annotations

import re

import pytest

from tests.faults.service import SHORT_LIMITS, assert_each_graded_once, deliver_numbered, \
    fault_service
from tests.infra.disks import fill, small_disk
from tests.infra.processes import wait_for

pytestmark = pytest.mark.slow
RETRY_NOTE = (r"attempt 1 failed \(the grading server could not write to its disk \(No space "
              r"left on device\); it has been logged\); trying again in \d+ s")


def test_a_run_meeting_a_full_disk_is_graded_once_the_disk_has_room(
        tmp_path, service_settings, git_server, monkeypatch):
    with small_disk(tmp_path / "data" / "work") as workspaces, \
            fault_service(tmp_path, service_settings, git_server, monkeypatch,
                          extra={"worker": SHORT_LIMITS}) as service:
        deliveries: dict[int, tuple[str, str]] = {}
        with service.worker("worker"):
            ballast = fill(workspaces)
            deliver_numbered(service, deliveries, 0, seconds=0)
            _, run_id = deliveries[0]
            waiting = wait_for(lambda: _waiting_for_retry(service.run(run_id)), timeout=60,
                               what="the run to wait for its second attempt")
            assert re.fullmatch(RETRY_NOTE, waiting.status_reason), waiting.status_reason
            ballast.unlink()
            service.wait_ended([run_id], timeout=90)

        assert_each_graded_once(service, deliveries)
        assert service.run(run_id).attempts == 2


def _waiting_for_retry(run):
    """Return the run if it is between attempts, or if it already ended (to fail at once)."""
    return run if run.status.final or run.status_reason else None
