"""Read a request's body whole: one streamed past the size cap is refused, never cut at it."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge


def whole_body(*, cache: bool) -> bytes:
    """Return the request's body, or raise 413 when it is larger than the cap.

    Werkzeug refuses a body whose Content-Length passes the cap, but stops reading a streamed
    one (Transfer-Encoding: chunked) at the cap without a word: what it read may be the whole
    body or its beginning, so one that reaches the cap is refused if a byte follows it.
    """
    body = request.get_data(cache=cache)
    limit = request.max_content_length
    if (request.content_length is None and limit is not None and len(body) >= limit
            and _streamed_body_goes_on()):
        raise RequestEntityTooLarge()
    return body


def _streamed_body_goes_on() -> bool:
    """Tell whether the server's stream holds more of the body than Werkzeug read of it."""
    return request.environ["wsgi.input"].read(1) != b""
