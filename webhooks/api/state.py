"""What the API keeps per application: token checks, GitLab client, local runs, stream slots."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import Flask, current_app, request

from webhooks.api.auth import Caller, TokenChecker
from webhooks.api.local_runs import LocalRunner
from webhooks.app import Services

EXTENSION = "gradehook_api"


@dataclass
class ApiState:
    """Per-application objects of the API."""

    tokens: TokenChecker
    local_runs: LocalRunner
    event_streams: threading.BoundedSemaphore


def install_api_state(app: Flask, services: Services) -> None:
    """Create the API's objects for an application once."""
    settings = services.settings
    # Each event stream holds a web thread: leave at least half of them for other requests.
    streams = threading.BoundedSemaphore(max(1, settings.server.web_threads // 2))
    app.extensions[EXTENSION] = ApiState(
        tokens=TokenChecker(settings),
        local_runs=LocalRunner(services.resources, services.celery, settings.worker.processes),
        event_streams=streams)


def api_state() -> ApiState:
    """Return the API objects of the application handling the current request."""
    return current_app.extensions[EXTENSION]


def current_caller() -> Caller:
    """Authenticate the current request's bearer token, or raise ApiError 401/503."""
    return api_state().tokens.caller_for(request.headers.get("Authorization"))
