"""Fixtures of the API tests: the GitLab stand-in and a world of users, projects and an app."""

from __future__ import annotations

import pytest

from tests.api.world import World, build_world
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture


@pytest.fixture
def world(service_settings, gitlab_standin, redis_db) -> World:  # noqa: F811
    """The app with alice, bob and carol known to GitLab, and a staff token configured."""
    return build_world(service_settings, gitlab_standin, redis_db)
