"""A worker killed with SIGKILL mid-grading: its run is delivered again and ends exactly once;
killed while showing GitLab a run's end: the next worker to start shows it."""

from __future__ import annotations

import os
import signal

import pytest

from pipeline.ledger.models import RunStatus
from tests.e2e.scenario import STUDENT
from tests.faults.service import SHORT_LIMITS, assert_each_graded_once, deliver_numbered, \
    fault_service, final_status_held, slow_solution, wait_for_tests_stage

pytestmark = pytest.mark.slow
# Seconds the student's program sleeps in the sandbox: the window in which the worker dies.
GRADING_SLEEP = 4
# The tests waiting this long run no sweep but the one at the worker's start: the worker itself
# shows the end.
SHOWN_WITHIN_SECONDS = 90


def test_run_of_a_killed_worker_is_delivered_again_and_ends_once(
        tmp_path, service_settings, git_server, monkeypatch):
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": SHORT_LIMITS}) as service:
        gitlab, pid = service.gitlab, service.scenario.project_id
        draft = git_server.commit(STUDENT, {"notes.txt": "draft\n"}, branch="work")
        gitlab.set_branch(pid, "work", draft)
        mr = gitlab.add_merge_request(pid, "work", "main", title="Week 1")

        with service.worker("first") as first:
            sha, answer = service.deliver("work", slow_solution("hi", GRADING_SLEEP), key="k1")
            run_id, = answer["runs"]
            wait_for_tests_stage(service, run_id)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        killed = service.run(run_id)
        assert (killed.status, killed.attempts) == (RunStatus.RUNNING, 1)
        assert service.posted_states(sha) == ["pending", "running"]

        with service.worker("second"):
            service.wait_ended([run_id], timeout=120)
            assert gitlab.wait_for(lambda: len(gitlab.notes(pid, mr["iid"])) == 1, timeout=30)

        run = service.run(run_id)
        assert (run.status, run.attempts, run.tests_passed, run.tests_total) == \
            (RunStatus.FAILED, 2, 1, 2)
        assert service.posted_states(sha) == ["pending", "running", "failed"]
        job, = gitlab.commit_statuses(pid, sha)
        assert (job["status"], job["description"]) == (
            "failed", "Score 0% (0 of 1 collection passed, 1/2 tests passed)")
        assert len(gitlab.requests_to("POST", rf"/merge_requests/{mr['iid']}/notes$")) == 1
        note, = gitlab.notes(pid, mr["iid"])
        assert "1/2" in note["body"]
        second_log = (service.logs / "second.log").read_text()
        assert second_log.count(f"run {run_id}: failed") == 1


def test_a_run_whose_worker_died_while_posting_its_end_is_shown_when_a_worker_starts(
        tmp_path, service_settings, git_server, monkeypatch):
    """Before, GitLab showed such a run running for ten minutes after it was graded, until a
    reconciler sweep took it for a report that gave up: its message, handed out again, found
    the run ended and did nothing."""
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": SHORT_LIMITS}) as service:
        deliveries: dict[int, tuple[str, str]] = {}
        with service.worker("first") as first:
            deliver_numbered(service, deliveries, 0, seconds=GRADING_SLEEP)
            sha, run_id = deliveries[0]
            # GitLab holds the final status while the worker is killed, then fails it.
            with final_status_held(service, run_id):
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(timeout=10)
        ended = service.run(run_id)
        assert (ended.status, ended.reported_status) == (RunStatus.PASSED, "running")
        assert service.posted_states(sha) == ["pending", "running"]

        with service.worker("second"):
            service.wait_ended([run_id], timeout=SHOWN_WITHIN_SECONDS)

        assert_each_graded_once(service, deliveries)
        assert service.run(run_id).attempts == 1
