"""Public links the API hands out."""

from __future__ import annotations

from pipeline.config import Settings


def result_url(settings: Settings, run_id: str) -> str:
    """Return the address of a run's result page."""
    return f"{settings.server.base_url}/results/{run_id}"
