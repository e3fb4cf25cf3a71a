"""Celery task `reconcile`: send runs the broker never got, end runs whose worker vanished."""

from __future__ import annotations

from celery import shared_task

from pipeline.celery_app import RECONCILE
from pipeline.context import resources_for
from pipeline.reconcile import reconcile_ledger


@shared_task(name=RECONCILE, bind=True)
def reconcile(self) -> dict:
    """Run one reconciliation sweep over the ledger."""
    settings = self.app.conf.gradehook_settings
    return reconcile_ledger(resources_for(settings), self.app).as_dict()
