"""A deadline drill: 30 students hand in by merge request while GitLab fails, then recovers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from pipeline.celery_app import create_celery, report_patience_seconds
from pipeline.ledger.db import transaction
from pipeline.ledger.models import Submission, TestRun, utcnow
from pipeline.reconcile import reconcile_ledger
from pipeline.reports.comment import comment_marker
from pipeline.submissions.verdict import ERROR, format_time
from tests.e2e.scenario import ASSIGNMENT
from tests.faults.service import SHORT_LIMITS, STATE_RANK, comment_writes, fault_service, \
    merge_request_hook, student_with_merge_request, submission_course
from tests.infra.processes import wait_for
from tests.support.gitlab_standin import FaultPlan

pytestmark = pytest.mark.slow
STUDENTS = 30
# Far enough ahead for the service to start and every merge request to be received.
DEADLINE_AHEAD = dt.timedelta(seconds=30)
# Accepted before the outage: the rest meet it while graded or processed.
BEFORE_OUTAGE = 5
ACCEPTED = "**✅ Accepted**"
NOT_PROCESSED = "Not processed"


def _submissions(resources) -> dict[str, Submission]:
    with resources.sessions() as session:
        return {s.project_path: s for s in session.scalars(select(Submission))}


def _settled(submission: Submission) -> bool:
    """Tell whether a submission is finished or waits for its retry."""
    return submission.finished_at is not None or submission.retry_at is not None


def _as_if_waited(resources) -> None:
    """Move every scheduled retry to now, and every run's end and next report request to before
    the reconciler reports it again, as if their waits had passed."""
    with transaction(resources.sessions) as session:
        session.execute(update(Submission).where(Submission.outcome == ERROR,
                                                 Submission.retry_at.is_not(None))
                        .values(retry_at=utcnow() - dt.timedelta(seconds=1)))
        waited = dt.timedelta(seconds=report_patience_seconds(resources.settings.worker))
        session.execute(update(TestRun).where(TestRun.finished_at > utcnow() - waited)
                        .values(finished_at=TestRun.finished_at - waited))
        session.execute(update(TestRun).where(TestRun.report_due_at.is_not(None))
                        .values(report_due_at=utcnow() - dt.timedelta(seconds=1)))


def _assert_answered_once_and_forward(service, student: tuple[int, str, int, str],
                                      received: dt.datetime) -> None:
    """Check a student's merge request: one comment of each kind, the submission's showing it
    accepted as received in time, and neither it nor the commit status ever went backwards."""
    gitlab, (project_id, path, iid, sha) = service.gitlab, student
    markers = [n["body"].splitlines()[0] for n in gitlab.notes(project_id, iid)]
    assert sorted(markers) == sorted(set(markers)), f"{path}: a comment twice: {markers}"
    marker = comment_marker(f"submission:{path}!{iid}:{ASSIGNMENT}")
    note, = (n for n in gitlab.notes(project_id, iid) if n["body"].startswith(marker))
    body = note["body"].replace("\\", "")
    assert ACCEPTED in body and NOT_PROCESSED not in body, path
    assert format_time(received) in body, path
    writes = comment_writes(gitlab, project_id, iid)
    first_accepted = next(i for i, written in enumerate(writes) if ACCEPTED in written)
    assert all(NOT_PROCESSED not in written for written in writes[first_accepted:]), path
    states = service.scenario.states(sha, project_id)
    ranks = [STATE_RANK[state] for state in states]
    assert ranks == sorted(ranks), f"states of {path} went backwards: {states}"


def test_thirty_merge_requests_at_the_deadline_are_all_accepted_in_time_through_an_outage(
        tmp_path, service_settings, git_server, monkeypatch):
    deadline = (utcnow() + DEADLINE_AHEAD).replace(microsecond=0)
    extra = {"courses": [submission_course(deadline=deadline.isoformat())],
             "worker": {**SHORT_LIMITS, "reconcile_interval_seconds": 1.0}}
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra=extra) as service:
        gitlab, resources = service.gitlab, service.scenario.resources
        students = [student_with_merge_request(gitlab, git_server, n) for n in range(STUDENTS)]
        # Every 8th request is rate limited (Retry-After: 1 s), every 5th of the rest a 502.
        rate_limited = gitlab.inject_faults(FaultPlan(status=429, every=8, retry_after=1))
        failing = gitlab.inject_faults(FaultPlan(status=502, every=5))
        with service.worker("worker", concurrency=3):
            for project_id, path, iid, sha in students:
                service.deliver_hook("Merge Request Hook",
                                     merge_request_hook(project_id, path, iid, sha),
                                     key=f"open-{path}")
            received = {path: s.received_at for path, s in _submissions(resources).items()}
            assert len(received) == STUDENTS
            assert max(received.values()) < deadline

            wait_for(lambda: sum(s.outcome == "accepted" for s in
                                 _submissions(resources).values()) >= BEFORE_OUTAGE,
                     timeout=120, interval=0.2, what=f"{BEFORE_OUTAGE} submissions accepted")
            # Then GitLab fails every call, past the deadline: the rest end in an error of ours.
            outage = gitlab.inject_faults(FaultPlan(status=502, every=1))
            wait_for(lambda: utcnow() > deadline and all(map(_settled, _submissions(resources)
                                                             .values())),
                     timeout=90, interval=0.2, what="the deadline and every submission settled")
            gitlab.clear_faults()
            celery = create_celery(service.settings)

            def all_accepted_and_shown() -> bool:
                _as_if_waited(resources)
                reconcile_ledger(resources, celery)
                found = _submissions(resources).values()
                return all(s.outcome == "accepted" and s.finished_at is not None
                           for s in found) and all(
                    service.scenario.states(sha, project_id)[-1:] == ["success"]
                    for project_id, _, _, sha in students)
            wait_for(all_accepted_and_shown, timeout=90, interval=0.5,
                     what="every submission accepted and every commit shown passed")

        assert rate_limited.injected > 0 and failing.injected > 0 and outage.injected > 0
        final = _submissions(resources)
        assert sorted(final) == sorted(received)
        for path, submission in final.items():
            assert (path, submission.received_at, submission.counted_at, submission.late) == \
                (path, received[path], received[path], False)
        assert any(s.failing_since is not None for s in final.values())
        assert any(s.finished_at > deadline for s in final.values())
        for student in students:
            _assert_answered_once_and_forward(service, student, received[student[1]])
