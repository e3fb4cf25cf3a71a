"""Celery task `refresh_rosters` (on the beat's interval and at a worker's start): keep the
courses' student projects GitLab lists, for gradebooks."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

from pipeline.celery_app import REFRESH_ROSTERS
from pipeline.context import resources_for
from pipeline.rosters import refresh_rosters


@shared_task(name=REFRESH_ROSTERS, bind=True, ignore_result=True)
def refresh_course_rosters(self) -> None:
    """List every course's student projects from GitLab and keep them in the ledger."""
    refresh_rosters(resources_for(self.app.gradehook_settings))


@worker_ready.connect
def refresh_rosters_on_start(sender, **_) -> None:
    """List the rosters as soon as a worker is up: the beat's first comes an interval later."""
    sender.app.send_task(REFRESH_ROSTERS)
