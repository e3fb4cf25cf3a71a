"""Celery task `reconcile`, sent on the beat's interval and once when a worker comes up."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

from pipeline.celery_app import RECONCILE
from pipeline.context import resources_for
from pipeline.reconcile import reconcile_ledger


@shared_task(name=RECONCILE, bind=True)
def reconcile(self) -> dict:
    """Run one reconciliation sweep over the ledger."""
    settings = self.app.conf.gradehook_settings
    return reconcile_ledger(resources_for(settings), self.app).as_dict()


@worker_ready.connect
def reconcile_on_start(sender, **_) -> None:
    """Sweep as soon as a worker is up: runs queued while no broker or worker was there."""
    sender.app.send_task(RECONCILE)
