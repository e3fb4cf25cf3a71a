"""A student's commit whose files cannot be laid out for grading ends with the reason why."""

from __future__ import annotations

from pipeline import testing
from pipeline.ledger.models import RunStatus, TestRun
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import migrated_resources, queue_run


def _ended(resources, run_id) -> TestRun:
    with resources.sessions() as session:
        return session.get(TestRun, run_id)


def _reference(git_server) -> None:
    git_server.commit("staff/reference", {"week1/hello/hello.py": "greeting = 'hello'\n",
                                          "week1/hello/test.yaml": ONE_TEST})


def test_a_link_to_a_host_file_ends_the_run_with_the_reason(
        tmp_path, service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference(git_server)
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 'hi'\n"},
                            links={"week1/hello/secrets.txt": "/etc/shadow"})
    run = queue_run(resources, commit_sha=sha)

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)

    ended = _ended(resources, run.id)
    assert (outcome.status, ended.status) == ("error", RunStatus.ERROR)
    assert ended.status_reason.startswith("not graded: week1/hello cannot be graded safely")
    assert ended.score is None


def test_files_too_large_for_the_sandbox_end_the_run_with_the_reason(
        tmp_path, service_settings, git_server):
    _, settings = service_settings({"sandbox": {"workdir_size_mb": 1}})
    resources = migrated_resources(settings)
    _reference(git_server)
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 'hi'\n",
                                               "week1/hello/data.txt": "0" * (2 * 1024 * 1024)})
    run = queue_run(resources, commit_sha=sha)

    testing.run_student_testing(resources, run.id, run.celery_task_id)

    ended = _ended(resources, run.id)
    assert ended.status == RunStatus.ERROR
    assert ended.status_reason == ("not graded: the files of week1/hello add up to more than "
                                   "1 MB, the most a run can grade")
