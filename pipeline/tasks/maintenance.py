"""Celery task `reconcile` (on the beat's interval and at a worker's start); host housekeeping."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from pipeline.celery_app import RECONCILE
from pipeline.context import resources_for
from pipeline.housekeeping import HousekeepingTimer
from pipeline.reconcile import reconcile_ledger


@shared_task(name=RECONCILE, bind=True)
def reconcile(self) -> dict:
    """Run one reconciliation sweep over the ledger."""
    settings = self.app.gradehook_settings
    return reconcile_ledger(resources_for(settings), self.app).as_dict()


@worker_ready.connect
def reconcile_on_start(sender, **_) -> None:
    """Sweep as soon as a worker is up: runs queued while no broker or worker was there."""
    sender.app.send_task(RECONCILE)


_housekeeping: list[HousekeepingTimer] = []


@worker_ready.connect
def keep_house(sender, **_) -> None:
    """Clean this host's caches now and on an interval; every host has caches of its own."""
    timer = HousekeepingTimer(sender.app.gradehook_settings)
    timer.start()
    _housekeeping.append(timer)


@worker_shutdown.connect
def stop_keeping_house(**_) -> None:
    """Start no new sweep while the worker shuts down."""
    while _housekeeping:
        _housekeeping.pop().stop()
