"""The page size a listing of the API answers with: the caller's, within the configured bound."""

from __future__ import annotations

from webhooks.api.errors import ApiError
from webhooks.app import services

PAGE_TOO_LARGE = "per_page: must be at most {limit}"


def page_size(query: dict) -> int:
    """Return the query's per_page, else the default; raise 400 past the largest page."""
    limits = services().settings.api
    per_page = query.get("per_page") or limits.default_page_size
    if per_page > limits.max_page_size:
        raise ApiError(400, PAGE_TOO_LARGE.format(limit=limits.max_page_size), field="per_page")
    return per_page
