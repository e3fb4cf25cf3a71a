"""A submission moved to a run that ends at that moment is handed off by the run's end."""

from __future__ import annotations

import threading

from sqlalchemy import select

from pipeline import testing
from pipeline.ledger.db import make_engine, transaction
from pipeline.ledger.models import RunStatus, Submission, TestRun
from pipeline.submissions.dispatch import hand_off_submissions
from tests.infra.ledger import waiters_on
from tests.infra.processes import wait_for
from tests.submissions.world import solution


def test_a_run_ending_as_a_submission_moves_to_it_hands_the_submission_off(world):
    """The submission's run was superseded; another run of its commit, still running, ends
    just as processing moves the submission to it. Without a hand-off then, the submission
    would wait for the reconciler to find it lost, a quarter of an hour."""
    sha = world.push(solution("hello"))
    submission = world.submit(sha, RunStatus.SUPERSEDED)
    hand_off_submissions(world.resources, submission.run_id)  # as its run's end did
    first_sent = world.submission(submission.id).sent_at
    running = world.graded_run(sha, RunStatus.QUEUED)
    with transaction(world.resources.sessions) as session:
        session.get(TestRun, running.id).status = RunStatus.RUNNING
    engine = world.resources.engine
    other_process = make_engine(world.resources.settings.database_url)
    try:
        with other_process.begin() as connection:
            # Holding the submission's row stops processing as it moves it to the running run.
            connection.execute(select(Submission).where(Submission.id == submission.id)
                               .with_for_update())
            processing = threading.Thread(target=world.process, args=(submission.id,))
            processing.start()
            wait_for(lambda: waiters_on(engine, connection) == 1,
                     what="processing to move the submission")
            ending = threading.Thread(target=testing.end_with_error,
                                      args=(world.resources, running.id, "sandbox unavailable"))
            ending.start()
            wait_for(lambda: not ending.is_alive() or waiters_on(engine, connection) == 2,
                     what="the run to end, or to wait for the submission's move")
        for thread in (processing, ending):
            thread.join(timeout=30)
            assert not thread.is_alive()
    finally:
        other_process.dispose()

    moved = world.submission(submission.id)
    assert (moved.run_id, moved.outcome) == (running.id, "pending")
    assert moved.sent_at > first_sent  # the run's end handed it to submission_processing
    outcome = world.process(submission.id)
    assert (outcome.outcome, outcome.reason) == (
        "error", "the test run of this commit ended in error: sandbox unavailable")
