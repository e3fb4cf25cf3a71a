"""`GET /api/tests-celery/health`: broker, database and worker state, 200 healthy, else 503."""

from __future__ import annotations

from flask import Blueprint, jsonify

from pipeline.health import check_health
from webhooks.app import services

health = Blueprint("health", __name__)


@health.get("/api/tests-celery/health")
def tests_celery_health():
    """Answer with the measured health of the service."""
    svc = services()
    state = check_health(svc.settings, svc.resources.engine, svc.celery)
    return jsonify(state.as_dict()), 200 if state.healthy else 503
