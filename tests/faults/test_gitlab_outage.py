"""GitLab away longer than a run's report retries: the run's end is shown as soon as GitLab
answers again, and nothing is asked of GitLab for it while it does not."""

from __future__ import annotations

import pytest

from tests.faults.service import RECONCILE_EVERY_SECOND, assert_each_graded_once, \
    deliver_after_start_sweep, fault_service, wait_for_tests_stage
from tests.infra.processes import wait_for
from tests.support.gitlab_standin import FaultPlan

pytestmark = pytest.mark.slow
# The reconciler's sweeps (every second here) asking whether GitLab is back.
PROBES_WHILE_AWAY = 3
# A sweep a second, after the report task's patience (15 s with one attempt) has passed.
SHOWN_WITHIN_SECONDS = 30


def test_an_end_whose_reports_gave_up_while_gitlab_was_away_is_shown_once_it_answers(
        tmp_path, service_settings, git_server, monkeypatch):
    """Before, once the run's report task gave up (about 75 s of retries by default), its end
    waited for the reconciler's sweep ten minutes after the run ended: students saw their
    pipeline running that long after GitLab was back."""
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": {**RECONCILE_EVERY_SECOND, "max_attempts": 1}}) \
            as service:
        deliveries: dict[int, tuple[str, str]] = {}
        gitlab, log = service.gitlab, service.logs / "worker.log"
        with service.worker("worker", concurrency=2), service.beat():
            sha, run_id = deliver_after_start_sweep(service, deliveries, seconds=1)
            wait_for_tests_stage(service, run_id)
            gitlab.inject_faults(FaultPlan(status=502, every=1))
            wait_for(lambda: "giving up reporting runs" in log.read_text(), timeout=60,
                     what="the run's report task to give up")
            posted = len(gitlab.requests_to("POST", r"/statuses/"))
            probes = len(gitlab.requests_to("GET", r"/user$"))
            wait_for(lambda: len(gitlab.requests_to("GET", r"/user$"))
                     >= probes + PROBES_WHILE_AWAY,
                     timeout=60, what="the reconciler to ask whether GitLab is back")
            assert len(gitlab.requests_to("POST", r"/statuses/")) == posted
            gitlab.clear_faults()
            service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)

        assert_each_graded_once(service, deliveries)
        assert service.posted_states(sha) == ["pending", "running", "success"]
