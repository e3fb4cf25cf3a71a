"""Celery task `reconcile` (on the beat's interval and at a worker's start); host housekeeping."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown

from pipeline.celery_app import RECONCILE
from pipeline.context import resources_for
from pipeline.housekeeping import HousekeepingTimer
from pipeline.ledger.db import make_engine, make_sessionmaker
from pipeline.reconcile import reconcile_ledger, requeue_abandoned_runs

log = logging.getLogger(__name__)


@shared_task(name=RECONCILE, bind=True)
def reconcile(self, worker_started: bool = False) -> dict:
    """Run one reconciliation sweep over the ledger (`worker_started`: the one at a start)."""
    settings = self.app.gradehook_settings
    return reconcile_ledger(resources_for(settings), self.app, worker_started).as_dict()


@celeryd_after_setup.connect
def requeue_runs_of_dead_workers(sender, instance, **_) -> None:
    """Before the worker takes work, queue again the runs a dead worker of this host left
    running (the sweep that follows its start sends them), before housekeeping removes their
    workspaces. The main process forks its pool next: its engine is disposed of first."""
    settings = instance.app.gradehook_settings
    engine = make_engine(settings.database_url)
    try:
        requeue_abandoned_runs(settings, make_sessionmaker(engine))
    except Exception as exc:  # the ledger may be away; the reconciler ends such runs later
        log.warning("runs left by a dead worker were not looked for: %s", exc)
    finally:
        engine.dispose()


@worker_ready.connect
def reconcile_on_start(sender, **_) -> None:
    """Sweep as soon as a worker is up: runs queued while no broker or worker was there, and
    runs a stopped worker ended without showing GitLab."""
    sender.app.send_task(RECONCILE, kwargs={"worker_started": True})


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
