"""Flask application factory: settings, shared services, blueprints and JSON error answers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from celery import Celery
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from pipeline.assignments import AssignmentDirectory
from pipeline.celery_app import create_celery
from pipeline.config import Settings, load_settings
from pipeline.context import Resources, resources_for
from pipeline.logs import configure_logging
from pipeline.publisher import Publisher
from webhooks.error_answers import error_body, refusal_reason
from webhooks.intake import Intake

log = logging.getLogger(__name__)

UNEXPECTED_ERROR = "unexpected error; it has been logged"


@dataclass(frozen=True)
class Services:
    """What request handlers share: settings, database sessions, Celery and the intake."""

    settings: Settings
    resources: Resources
    celery: Celery
    assignments: AssignmentDirectory
    intake: Intake


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web application; settings default to config.toml and the environment."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.json.sort_keys = False
    resources = resources_for(settings)
    celery = create_celery(settings)
    app.extensions["gradehook"] = Services(
        settings, resources, celery, AssignmentDirectory(resources.sessions),
        Intake(resources.engine, resources.sessions, Publisher.for_app(celery)))
    from webhooks.api import api
    from webhooks.health import health
    from webhooks.pages import pages
    from webhooks.receiver import receiver
    for blueprint in (health, receiver, api, pages):
        app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def services() -> Services:
    """Return the services of the application handling the current request."""
    return current_app.extensions["gradehook"]


def _http_error(exc: HTTPException):
    reason = refusal_reason(exc, method=request.method, path=request.path,
                            body_limit=current_app.config["MAX_CONTENT_LENGTH"])
    response = jsonify(error_body(exc.code, reason))
    # The refusal's own headers (Allow, for a method the route does not take) but its HTML's type.
    response.headers.extend((name, value) for name, value in exc.get_headers()
                            if name != "Content-Type")
    return response, exc.code


def _unexpected_error(exc: Exception):
    log.exception("unhandled error")
    return jsonify(error="Internal Server Error", reason=UNEXPECTED_ERROR), 500
