"""gradehook's JSON error answers (a status's name, a reason, the field at fault), and the
requests Werkzeug itself refuses worded so."""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

NO_SUCH_ADDRESS = "there is nothing at {path}"
METHOD_REFUSED = "{path} does not take {method}: use {allowed}"
IMPLIED_METHODS = {"HEAD", "OPTIONS"}
MAX_SHOWN_PATH = 200  # characters of a request's path a reason repeats
BODY_TOO_LARGE = ("the body is larger than the {limit} bytes this service takes "
                  "(server.max_body_bytes)")


def error_body(status: int, reason: str, field: str | None = None,
               fields: dict | None = None) -> dict[str, Any]:
    """Return the JSON body of an error answer."""
    return {"error": HTTP_STATUS_CODES.get(status, "Error"), "reason": reason, "field": field,
            "fields": fields}


def refusal_reason(exc: HTTPException, *, method: str, path: str, body_limit: int) -> str:
    """Word a refusal Werkzeug raised (no route, a method the route does not take, a body over
    the cap) as gradehook words its own; others keep Werkzeug's description."""
    path = path[:MAX_SHOWN_PATH]
    if exc.code == 404:
        return NO_SUCH_ADDRESS.format(path=path)
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        # HEAD and OPTIONS come with every route: the methods that tell it are the others.
        told = sorted(set(exc.valid_methods) - IMPLIED_METHODS) or sorted(exc.valid_methods)
        return METHOD_REFUSED.format(path=path, method=method, allowed=", ".join(told))
    if exc.code == 413:
        return BODY_TOO_LARGE.format(limit=body_limit)
    return exc.description or exc.name
