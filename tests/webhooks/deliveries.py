"""Load the GitLab fixtures as deliveries: headers derived from the file name, raw body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webhooks.events import Event, parse_delivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gitlab"


def event_header_for(stem: str) -> str:
    """Return the X-Gitlab-Event header named by `<event header in snake case>__<variant>`."""
    return stem.split("__", 1)[0].replace("_", " ").title()


def fixture_names() -> list[str]:
    """Return the stems of every fixture file."""
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def headers_for(stem: str, **extra: str) -> dict[str, str]:
    """Return the delivery headers GitLab sends with a fixture (no delivery id unless given)."""
    return {"Content-Type": "application/json", "X-Gitlab-Event": event_header_for(stem),
            "User-Agent": "GitLab/17.1.0-pre", **extra}


def body_of(stem: str) -> bytes:
    """Return a fixture's raw body."""
    return (FIXTURES / f"{stem}.json").read_bytes()


def payload_of(stem: str) -> dict[str, Any]:
    """Return a fixture's body as JSON, for building edited variants."""
    return json.loads(body_of(stem))


def parse_fixture(stem: str, **extra_headers: str) -> Event:
    """Parse a fixture as GitLab would deliver it."""
    return parse_delivery(headers_for(stem, **extra_headers), body_of(stem))
