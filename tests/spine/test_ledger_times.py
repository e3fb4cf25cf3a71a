"""Ledger times read back as the instants stored, in UTC, whatever the database and time zones."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from pipeline.ledger.db import transaction
from pipeline.ledger.models import Submission
from tests.infra.ledger import add_submission, embedded_settings, migrated_resources, queue_run
from webhooks.app import create_app

STARTED = dt.datetime(2026, 11, 30, 9, 15, 7, tzinfo=dt.timezone.utc)
VIENNA_WINTER = dt.timezone(dt.timedelta(hours=1))


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    """Resources of the embedded default's SQLite ledger."""
    settings = embedded_settings(tmp_path, monkeypatch)
    return settings, migrated_resources(settings)


@pytest.fixture
def tokyo_machine(monkeypatch):
    """This process's local time zone is Tokyo's (UTC+09:00) while the test runs."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_result_page_shows_utc_times_on_a_machine_in_another_time_zone(embedded,
                                                                           tokyo_machine):
    settings, resources = embedded
    run = queue_run(resources, commit_sha="a" * 40, queued_at=STARTED, received_at=STARTED,
                    started_at=STARTED + dt.timedelta(seconds=2))

    page = create_app(settings).test_client().get(f"/results/{run.id}").get_data(as_text=True)

    assert "2026-11-30 09:15:07" in page and "2026-11-30 09:15:09" in page


def test_a_moment_given_in_another_zone_is_stored_as_the_same_instant(embedded):
    _, resources = embedded
    deadline = dt.datetime(2026, 12, 1, 23, 59, tzinfo=VIENNA_WINTER)
    submission_id = add_submission(resources, commit_sha="b" * 40, counted_at=STARTED,
                                   deadline=deadline)

    with transaction(resources.sessions) as session:
        stored = session.get(Submission, submission_id).deadline

    assert (stored, stored.utcoffset()) == (deadline, dt.timedelta(0))
