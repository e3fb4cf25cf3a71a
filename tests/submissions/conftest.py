"""Fixtures of the submission tests: the GitLab stand-in and a world builder."""

from __future__ import annotations

import pytest

from tests.submissions.world import World, build_world
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture


@pytest.fixture
def make_world(service_settings, gitlab_standin, git_server):  # noqa: F811
    """Build the world with chosen assignment rules, course settings or meta.yaml."""
    def build(**options) -> World:
        return build_world(service_settings, gitlab_standin, git_server, **options)
    return build


@pytest.fixture
def world(make_world) -> World:
    """The world with no deadline and no limits."""
    return make_world()
