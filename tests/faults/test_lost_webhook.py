"""Pushes whose webhook never arrived: the reconciler finds their branch heads and grades them."""

from __future__ import annotations

import pytest

from pipeline.ledger.models import Delivery, RunStatus
from tests.e2e.scenario import ASSIGNMENT, STUDENT, solution
from tests.faults.service import RECONCILE_EVERY_SECOND, fault_service
from tests.infra.processes import wait_for
from tests.support.gitlab_standin import DEVELOPER

pytestmark = pytest.mark.slow


def test_reconciler_grades_branch_heads_no_webhook_brought(
        tmp_path, service_settings, git_server, monkeypatch):
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"worker": RECONCILE_EVERY_SECOND}) as service:
        gitlab, pid = service.gitlab, service.scenario.project_id
        gitlab.add_member(pid, gitlab.bot.id, DEVELOPER)
        main_sha = gitlab.branches(pid)["main"]
        with service.worker("worker"), service.beat():
            delivered_sha, answer = service.deliver("work", solution("hi"), key="delivered")
            # A sweep meeting this head before its webhook only notes it: the webhook makes the run.
            delivered_run, = answer["runs"]
            service.wait_ended([delivered_run], timeout=60)
            lost_sha = git_server.commit(STUDENT, solution("hello"), branch="work")
            gitlab.set_branch(pid, "work", lost_sha)
            new_branch_sha = git_server.commit(STUDENT, solution("hello", 4), branch="fresh")
            gitlab.set_branch(pid, "fresh", new_branch_sha)

            def swept():
                runs = service.runs_of(lost_sha) + service.runs_of(new_branch_sha)
                return len(runs) == 2 and [run.id for run in runs]
            found = wait_for(swept, timeout=60, what="the reconciler to find the heads")
            service.wait_ended(found, timeout=60)
            # main fast-forwarded onto work's graded commit, its webhook lost too: main's head
            # gets a run of its own, so main's pipeline and badges follow.
            gitlab.set_branch(pid, "main", delivered_sha)

            def main_swept():
                runs = [run for run in service.runs_of(delivered_sha) if run.ref == "main"]
                return len(runs) == 1 and [run.id for run in runs]
            service.wait_ended(wait_for(main_swept, timeout=60,
                                        what="the reconciler to grade main's new head"),
                               timeout=60)

        lost, = service.runs_of(lost_sha)
        assert (lost.ref, lost.assignment, lost.before_sha, lost.needs_diff) == \
            ("work", ASSIGNMENT, delivered_sha, True)
        assert (lost.status, lost.tests_passed) == (RunStatus.PASSED, 2)
        assert service.posted_states(lost_sha) == ["pending", "running", "success"]
        fresh, = service.runs_of(new_branch_sha)
        assert (fresh.ref, fresh.base_branch, fresh.before_sha) == ("fresh", "main", None)
        assert (fresh.status, fresh.tests_passed) == (RunStatus.FAILED, 1)
        assert service.posted_states(new_branch_sha) == ["pending", "running", "failed"]
        with service.scenario.resources.sessions() as session:
            delivery = session.get(Delivery, lost.delivery_id)
            assert (delivery.source, delivery.delivery_key.startswith("reconciler:")) == \
                ("reconciler", True)
        assert sorted((run.ref, run.id == delivered_run) for run in
                      service.runs_of(delivered_sha)) == [("main", False), ("work", True)]
        fast_forwarded, = [run for run in service.runs_of(delivered_sha) if run.ref == "main"]
        assert (fast_forwarded.status, fast_forwarded.before_sha) == (RunStatus.FAILED, main_sha)
        # main never held the assignment: its run is cancelled, as for a push that lacks it.
        never_had_it, = service.runs_of(main_sha)
        assert (never_had_it.status, never_had_it.status_reason) == \
            (RunStatus.CANCELLED, f"{ASSIGNMENT} does not exist in this commit")
