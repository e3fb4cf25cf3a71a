"""Settings of submissions: a target branch that git could not hold beside submission/<dir>."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipeline.config import ConfigError, load_settings
from pipeline.ledger.models import Base
from pipeline.submissions.rules import load_rules
from tests.infra.ledger import migrated_resources


@pytest.mark.parametrize("branch", ["submission", "submission/all"])
def test_a_target_branch_colliding_with_submission_branches_stops_start_up(tmp_path, branch):
    config = tmp_path / "config.toml"
    config.write_text(f'[[courses]]\nname = "prog1"\nreference_project = "staff/ref"\n'
                      'student_projects = ["students/"]\n'
                      f'submission_branch = "{branch}"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    assert str(error.value) == (f"courses[0].submission_branch: {branch!r} collides with the "
                                "branches submission/<directory> that submissions are made on; "
                                "choose another name")


def test_the_default_target_branch_is_submissions(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[[courses]]\nname = "prog1"\nreference_project = "staff/ref"\n'
                      'student_projects = ["students/"]\n')
    course, = load_settings(config, environ={}).courses
    assert (course.submission_branch, course.submission_scope_only) == ("submissions", True)


def test_a_configured_directory_keeps_its_rules_whatever_slashes_surround_it(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[[courses]]\nname = "prog1"\nreference_project = "staff/ref"\n'
                      'student_projects = ["students/"]\n'
                      '[[courses.assignments]]\ndirectory = "/week1/hello/"\n'
                      'deadline = 2026-12-01T23:59:00+01:00\nmax_submissions = 1\n')
    course, = load_settings(config, environ={}).courses
    assert [a.directory for a in course.assignments] == ["week1/hello"]
    # Runs and submissions name the assignment without slashes: its rules are found so.
    rules = load_rules(course, "week1/hello", tmp_path)
    assert (rules.deadline.isoformat(), rules.max_submissions) == ("2026-12-01T23:59:00+01:00", 1)


def test_the_migrations_build_exactly_the_models(service_settings):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    with resources.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


@pytest.mark.parametrize("key", ["max_submissions", "max_test_runs"])
def test_a_limit_too_large_to_record_stops_start_up(tmp_path, key):
    config = tmp_path / "config.toml"
    config.write_text('[[courses]]\nname = "prog1"\nreference_project = "staff/ref"\n'
                      'student_projects = ["students/"]\n'
                      f'[[courses.assignments]]\ndirectory = "week1/hello"\n{key} = 3000000000\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    assert str(error.value) == (f"courses[0].assignments[0].{key}: must be at most 2147483647, "
                                "got 3000000000")
