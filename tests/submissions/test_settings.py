"""Settings of submissions: a target branch that git could not hold beside submission/<dir>."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipeline.config import ConfigError, load_settings
from pipeline.ledger.models import Base
from tests.infra.ledger import migrated_resources


@pytest.mark.parametrize("branch", ["submission", "submission/all"])
def test_a_target_branch_colliding_with_submission_branches_stops_start_up(tmp_path, branch):
    config = tmp_path / "config.toml"
    config.write_text(f'[[courses]]\nname = "prog1"\nreference_project = "staff/ref"\n'
                      f'submission_branch = "{branch}"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    assert str(error.value) == (f"courses[0].submission_branch: {branch!r} collides with the "
                                "branches submission/<directory> that submissions are made on; "
                                "choose another name")


def test_the_default_target_branch_is_submissions(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[[courses]]\nname = "prog1"\nreference_project = "staff/ref"\n')
    course, = load_settings(config, environ={}).courses
    assert (course.submission_branch, course.submission_scope_only) == ("submissions", True)


def test_the_migrations_build_exactly_the_models(service_settings):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    with resources.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
