"""Pieces of the OpenAPI description shared by the API's routes: answers and error answers."""

from __future__ import annotations

from typing import Any

from webhooks.api.schemas import ErrorSchema

ERROR_DESCRIPTIONS = {
    400: "malformed request; `field` names the field at fault",
    401: "missing, malformed or unknown bearer token",
    403: "the token may not do this, or not for this project",
    404: "no such object",
    415: "the body is not application/json",
    422: "well-formed, but names something gradehook cannot act on",
    503: "the database, broker or GitLab is unavailable; try again shortly",
}


def json_response(description: str, schema: Any) -> dict[str, Any]:
    """Return an OpenAPI response whose body is JSON of a schema."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses(*codes: int) -> dict[int, dict[str, Any]]:
    """Return the OpenAPI error responses of some status codes."""
    return {code: json_response(ERROR_DESCRIPTIONS[code], ErrorSchema) for code in codes}


def json_body(schema: Any) -> dict[str, Any]:
    """Return an OpenAPI request body of JSON of a schema."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}
