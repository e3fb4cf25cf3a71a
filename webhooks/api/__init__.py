"""The REST API: one blueprint made of a blueprint per feature, with JSON errors and OpenAPI."""

from __future__ import annotations

from flask.blueprints import Blueprint, BlueprintSetupState

from webhooks.api.errors import register_error_handlers
from webhooks.api.openapi import openapi
from webhooks.api.regrades import regrades
from webhooks.api.runs import runs
from webhooks.api.state import install_api_state
from webhooks.api.submissions import submissions
from webhooks.api.submit import submit
from webhooks.api.tasks import tasks
from webhooks.app import services

api = Blueprint("api", __name__)
for _feature in (submit, tasks, runs, submissions, regrades, openapi):
    api.register_blueprint(_feature)
register_error_handlers(api)


@api.record_once
def _install(state: BlueprintSetupState) -> None:
    with state.app.app_context():
        install_api_state(state.app, services())
