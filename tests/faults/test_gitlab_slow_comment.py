"""A submission comment GitLab is slow to take: webhook answers go on, and no reopen is lost."""

from __future__ import annotations

import threading

import pytest

from pipeline.ledger.models import Submission
from pipeline.reports.comment import comment_marker
from tests.e2e.scenario import ASSIGNMENT
from tests.faults.service import comment_writes, fault_service, merge_request_hook, \
    student_with_merge_request, submission_course
from tests.infra.processes import wait_for
from tests.support.gitlab_standin import HOLD_LIMIT_SECONDS, FaultPlan

pytestmark = pytest.mark.slow
REFUSED, ACCEPTED = "**⛔ Refused**", "**✅ Accepted**"


def _submission(resources) -> Submission:
    with resources.sessions() as session:
        return session.query(Submission).one()


def test_a_reopen_is_answered_while_gitlab_holds_the_refusal_and_is_then_processed(
        tmp_path, service_settings, git_server, monkeypatch):
    # GitLab answers within the client's timeout, however long it takes.
    extra = {"gitlab": {"request_timeout_seconds": HOLD_LIMIT_SECONDS},
             "courses": [submission_course()]}
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra=extra) as service:
        gitlab, resources = service.gitlab, service.scenario.resources
        project_id, path, iid, sha = student_with_merge_request(gitlab, git_server, 0)
        # Closed before its submission is processed: the worker refuses it and says why.
        gitlab.set_merge_request_state(project_id, iid, "closed")
        # The run's results are the merge request's first note; the refusal is the second.
        notes = rf"/projects/{project_id}/merge_requests/{iid}/notes$"
        release = threading.Event()
        held = gitlab.inject_faults(FaultPlan(status=None, every=2, limit=1, method="POST",
                                              path_pattern=notes, hold=release))
        try:
            with service.worker("worker"):
                service.deliver_hook("Merge Request Hook",
                                     merge_request_hook(project_id, path, iid, sha), key="open")
                assert held.arrived.wait(120), "the refusal was never posted"
                refused = _submission(resources)
                assert (refused.outcome, refused.finished_at) == ("refused", None)

                gitlab.set_merge_request_state(project_id, iid, "opened")
                answer = service.deliver_hook(
                    "Merge Request Hook",
                    merge_request_hook(project_id, path, iid, sha, action="reopen"), key="reopen")
                # Answered while GitLab still holds the refusal. Before, the delivery waited
                # for the submission's row, which publishing locked until GitLab answered, and
                # its sender gave up after 10 s, as GitLab's webhooks do.
                assert len(gitlab.requests_to("POST", notes)) == 1
                assert answer["existing_runs"] == [refused.run_id]
                release.set()
                wait_for(lambda: _submission(resources).finished_at is not None, timeout=120,
                         what="the reopened submission to be processed again")
        finally:
            release.set()

    again = _submission(resources)
    assert (again.outcome, again.reason, again.hand_ins) == ("accepted", None, 2)
    assert again.received_at == refused.received_at
    marker = comment_marker(f"submission:{path}!{iid}:{ASSIGNMENT}")
    written = [body for body in comment_writes(gitlab, project_id, iid)
               if body.startswith(marker)]
    assert [REFUSED in body for body in written] == [True, False]
    assert ACCEPTED in written[-1]
