"""A student's commit whose files cannot be laid out for grading is graded, failing with why."""

from __future__ import annotations

import pytest

from pipeline import testing
from pipeline.ledger.models import RunStatus, TestRun
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import migrated_resources, queue_run


def _ended(resources, run_id) -> TestRun:
    with resources.sessions() as session:
        return session.get(TestRun, run_id)


def _graded_failing_with(resources, run_id: str) -> str:
    """Check the run is a graded zero and return the one reason every test failed with."""
    ended = _ended(resources, run_id)
    assert (ended.status, ended.score, ended.tests_passed, ended.tests_total) == \
        (RunStatus.FAILED, 0.0, 0, 1)
    [collection] = ended.report["tests"]
    [test] = collection["tests"]
    assert test["result"] == "FAILED"
    return test["details"]


def _reference(git_server) -> None:
    git_server.commit("staff/reference", {"week1/hello/hello.py": "greeting = 'hello'\n",
                                          "week1/hello/test.yaml": ONE_TEST})


def test_a_link_to_a_host_file_is_graded_as_failing_with_the_reason(
        tmp_path, service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference(git_server)
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 'hello'\n"},
                            links={"week1/hello/secrets.txt": "/etc/shadow"})
    run = queue_run(resources, commit_sha=sha)

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)

    assert outcome.status == "failed"
    assert _graded_failing_with(resources, run.id) == (
        "E   Failed: week1/hello cannot be graded safely: week1/hello/secrets.txt links to "
        "/etc/shadow, outside the files extracted")


def test_files_too_large_for_the_sandbox_are_graded_as_failing_with_the_reason(
        tmp_path, service_settings, git_server):
    _, settings = service_settings({"sandbox": {"workdir_size_mb": 1}})
    resources = migrated_resources(settings)
    _reference(git_server)
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 'hello'\n",
                                               "week1/hello/data.txt": "0" * (2 * 1024 * 1024)})
    run = queue_run(resources, commit_sha=sha)

    testing.run_student_testing(resources, run.id, run.celery_task_id)

    assert _graded_failing_with(resources, run.id) == (
        "E   Failed: the files of week1/hello add up to more than 1 MB, the most a run can grade")


@pytest.mark.parametrize("kind, files, links", [
    ("file", {"week1/hello": "greeting = 'hello'\n"}, {}),
    ("link", {"other/hello.py": "greeting = 'hello'\n"}, {"week1/hello": "../other"}),
])
def test_an_assignment_folder_committed_as_a_file_or_a_link_is_graded_as_failing(
        tmp_path, service_settings, git_server, kind, files, links):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference(git_server)
    sha = git_server.commit("students/alice", files, links=links)
    run = queue_run(resources, commit_sha=sha)

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)

    assert outcome.status == "failed"
    assert _graded_failing_with(resources, run.id) == (
        f"E   Failed: week1/hello is a {kind} in this commit, not a folder")
