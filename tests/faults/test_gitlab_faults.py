"""GitLab refusing a third of requests (429 and 502): every status and comment still arrives."""

from __future__ import annotations

import pytest

from tests.e2e.scenario import STUDENT, solution
from tests.faults.service import FINAL_STATES, STATE_RANK, expected_status, fault_service, \
    greeting_of
from tests.support.gitlab_standin import FaultPlan

pytestmark = pytest.mark.slow
BRANCHES = 3
PUSHES_PER_BRANCH = 2


def test_statuses_and_comments_arrive_in_order_when_gitlab_fails_a_third_of_requests(
        tmp_path, service_settings, git_server, monkeypatch):
    with fault_service(tmp_path, service_settings, git_server, monkeypatch) as service:
        gitlab, pid = service.gitlab, service.scenario.project_id
        merge_requests = {}
        for number in range(BRANCHES):
            branch = f"work-{number}"
            gitlab.set_branch(pid, branch, git_server.commit(STUDENT, {"notes.txt": "draft\n"},
                                                             branch=branch))
            merge_requests[branch] = gitlab.add_merge_request(pid, branch, "main")["iid"]
        # The first plan answers every 6th request with 429; the second, of the other five,
        # every 5th with 502: a third of all requests fail.
        rate_limited = gitlab.inject_faults(FaultPlan(status=429, every=6))
        failing = gitlab.inject_faults(FaultPlan(status=502, every=5))

        pushes = []  # (branch, index, sha, run id), in push order
        with service.worker("worker", concurrency=2):
            for round_ in range(PUSHES_PER_BRANCH):
                for number in range(BRANCHES):
                    index = round_ * BRANCHES + number
                    branch = f"work-{number}"
                    sha, answer = service.deliver(branch, solution(greeting_of(index)),
                                                  key=f"push-{index}")
                    run_id, = answer["runs"]
                    pushes.append((branch, index, sha, run_id))
                service.wait_ended([run_id for *_, run_id in pushes], timeout=120)

            def comments_final() -> bool:
                return all(_comment_shows(gitlab.notes(pid, iid), _last_index(pushes, branch))
                           for branch, iid in merge_requests.items())
            assert gitlab.wait_for(comments_final, timeout=120), "a comment never arrived"

        assert rate_limited.injected > 0 and failing.injected > 0
        assert gitlab.requests_to("POST", r"/statuses/") and any(
            r.status in (429, 502) for r in gitlab.requests_to("POST", r"/statuses/"))
        for branch, index, sha, run_id in pushes:
            expected = "success" if index % 2 == 0 else "failed"
            states = service.posted_states(sha)
            assert service.run(run_id).status is expected_status(index)
            assert [s for s in states if s in FINAL_STATES] == [expected], (index, states)
            ranks = [STATE_RANK[s] for s in states]
            assert ranks == sorted(set(ranks)), f"states of push {index} went backwards: {states}"
        for branch, iid in merge_requests.items():
            assert len(gitlab.notes(pid, iid)) == 1
            assert len(gitlab.requests_to("POST", rf"/merge_requests/{iid}/notes$")) >= 1


def _last_index(pushes, branch: str) -> int:
    return max(index for b, index, *_ in pushes if b == branch)


def _comment_shows(notes: list[dict], index: int) -> bool:
    """Tell whether the one comment shows the result of push `index` (2/2 or 1/2 passed)."""
    expected = "2/2" if index % 2 == 0 else "1/2"
    return len(notes) == 1 and expected in notes[0]["body"]
