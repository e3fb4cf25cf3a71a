"""API errors as JSON answers: a status, a short error name, a reason and the field at fault."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, jsonify, request
from marshmallow import Schema, ValidationError
from sqlalchemy.exc import DBAPIError

from webhooks.error_answers import error_body
from webhooks.ledger_faults import LEDGER_NOT_UPGRADED, ledger_fault
from webhooks.request_bodies import whole_body

log = logging.getLogger(__name__)

BODY_NOT_JSON = "the body must be a JSON document"
JSON_REQUIRED = "send the body as application/json"
DATABASE_DOWN = "the ledger database is unavailable; try again shortly"
PARAMETER_REPEATED = "{name}: give this parameter once"
SEVERAL_VALUES_REPEATED = ("{name}: give this parameter once, with its values separated by "
                           "commas: {name}={example}")
BODY_FIELD = "body"


class ApiError(Exception):
    """A request the API refuses: the HTTP status, why, and which field if one is to blame."""

    def __init__(self, status: int, reason: str, *, field: str | None = None,
                 fields: dict | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field
        self.fields = fields
        self.headers = headers or {}


def load_json_body(schema: Schema) -> dict[str, Any]:
    """Parse the request's JSON body with a schema, or raise ApiError 415 or 400."""
    if not request.is_json:
        raise ApiError(415, JSON_REQUIRED)
    try:
        data = json.loads(whole_body(cache=True))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, BODY_NOT_JSON, field=BODY_FIELD) from None
    return load(schema, data)


def load_query(schema: Schema) -> dict[str, Any]:
    """Validate the request's query string with a schema, or raise ApiError 400.

    A parameter given twice is refused: taking one of its values would answer another question
    than the one asked (status=passed&status=failed is not "either"). One whose field takes
    several values separated by commas (its several_values_example) is pointed to that form.
    """
    for name, values in request.args.lists():
        if len(values) > 1:
            raise ApiError(400, _repeated(schema, name), field=name)
    return load(schema, request.args.to_dict())


def _repeated(schema: Schema, name: str) -> str:
    """Return why a parameter given twice is refused, and how to give several values if it can."""
    example = getattr(schema.fields.get(name), "several_values_example", None)
    if example is None:
        return PARAMETER_REPEATED.format(name=name)
    return SEVERAL_VALUES_REPEATED.format(name=name, example=example)


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """Validate data with a schema, turning its complaints into a 400 that names the field."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise bad_request(exc.messages) from None


def bad_request(messages: Any) -> ApiError:
    """Return a 400 naming the first field marshmallow complained about and its message."""
    if not isinstance(messages, dict) or not messages:
        return ApiError(400, _first_message(messages), field=BODY_FIELD)
    name = next(iter(messages))
    field = BODY_FIELD if name == "_schema" else str(name)
    return ApiError(400, f"{field}: {_first_message(messages[name])}", field=field,
                    fields={str(k): v for k, v in messages.items()})


def register_error_handlers(blueprint: Blueprint) -> None:
    """Answer ApiError and database outages of this blueprint's routes as JSON."""
    blueprint.register_error_handler(ApiError, _api_error)
    blueprint.register_error_handler(DBAPIError, _database_down)


def _api_error(exc: ApiError):
    response = jsonify(error_body(exc.status, exc.reason, exc.field, exc.fields))
    response.headers.update(exc.headers)
    return response, exc.status


def _database_down(exc: DBAPIError):
    fault = ledger_fault(exc)
    if fault is None:
        raise exc  # a fault of ours: logged with its traceback, a 500
    log.error("API request %s %s: %s", request.method, request.path, fault.logged)
    return jsonify(error_body(503, DATABASE_DOWN if fault.passing else LEDGER_NOT_UPGRADED)), 503


def _first_message(messages: Any) -> str:
    while isinstance(messages, (list, dict)) and messages:
        messages = messages[0] if isinstance(messages, list) else next(iter(messages.values()))
    return str(messages) if messages else "invalid"
