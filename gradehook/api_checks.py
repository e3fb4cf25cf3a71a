"""Check a command's options with the REST API's own checks, refusing in the API's words."""

from __future__ import annotations

from typing import Any

import click
from marshmallow import Schema

from gradehook.option_names import quoted_option
from webhooks.api.auth import Caller
from webhooks.api.errors import BODY_FIELD, ApiError, load

# The API's checks, made as for a staff token: the command line reaches every project.
STAFF = Caller(staff=True)


def load_options(schema: Schema, **options: Any) -> dict[str, Any]:
    """Validate the options given (named as the schema's fields) as the API validates them."""
    try:
        return load(schema, {name: value for name, value in options.items() if value is not None})
    except ApiError as exc:
        raise bad_parameter(exc) from None


def bad_parameter(exc: ApiError) -> click.BadParameter:
    """Return the API's refusal as a complaint about the option named as its field."""
    option = quoted_option(exc.field) if exc.field and exc.field != BODY_FIELD else None
    return click.BadParameter(refusal_reason(exc), param_hint=option)


def refusal_reason(exc: ApiError) -> str:
    """Return why the API refused a value, without the field name it starts with."""
    return exc.reason.removeprefix(f"{exc.field}: ") if exc.field else exc.reason
