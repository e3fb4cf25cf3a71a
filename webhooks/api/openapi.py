"""The OpenAPI 3 document of the REST API, built from the marshmallow schemas with apispec."""

from __future__ import annotations

import copy
import functools
import importlib.metadata

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify

from webhooks.api import regrades, runs, submissions, submit, tasks
from webhooks.api.docs import json_response
from webhooks.api.schemas import HealthSchema

openapi = Blueprint("openapi", __name__)

TITLE = "gradehook REST API"
DESCRIPTION = ("Grade commits of student projects, follow their progress, read results and "
               "regrade. Send `Authorization: Bearer <token>`: a staff token from the "
               "configuration, or a GitLab access token, which reaches the projects where its "
               "owner has at least Developer access.")
SECURITY_SCHEME = {"type": "http", "scheme": "bearer",
                   "description": "a staff token, or a GitLab personal/project access token"}
PUBLIC_PATHS = {
    "/api/tests-celery/health": {"get": {
        "summary": ("Health of broker, database and workers, each measured with a short "
                    "timeout, and the runs queued and running"),
        "security": [],
        "responses": {200: json_response("healthy", HealthSchema),
                      503: json_response("unhealthy", HealthSchema)}}},
    "/api/openapi.json": {"get": {
        "summary": "This document", "security": [],
        "responses": {200: {"description": "the OpenAPI document",
                            "content": {"application/json": {"schema": {"type": "object"}}}}}}},
}


@functools.cache
def openapi_document() -> dict:
    """Return the API's OpenAPI document (built once per process)."""
    spec = APISpec(title=TITLE, version=importlib.metadata.version("gradehook"),
                   openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": DESCRIPTION})
    spec.components.security_scheme("bearer", SECURITY_SCHEME)
    for paths in (submit.PATHS, tasks.PATHS, runs.PATHS, submissions.PATHS, regrades.PATHS,
                  PUBLIC_PATHS):
        for path, operations in paths.items():
            spec.path(path=path, operations=copy.deepcopy(operations))
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


@openapi.get("/api/openapi.json")
def openapi_json():
    """Answer with the OpenAPI document."""
    return jsonify(openapi_document())
