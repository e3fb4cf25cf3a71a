"""A reference tree or result an older gradehook kept on disk is made anew, not reused."""

from __future__ import annotations

import shutil

from pipeline import testing
from pipeline.ledger.models import RunStatus, TestRun
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import migrated_resources, queue_run

# The expected value is the data file's bytes: with `eol=crlf` applied they differ.
READS_DATA = "greeting = open('data.csv', 'rb').read().hex()\n"
DATA = "a,b\n1,2\n"


def _status(resources, student_sha: str) -> RunStatus:
    run = queue_run(resources, commit_sha=student_sha)
    testing.run_student_testing(resources, run.id, run.celery_task_id)
    with resources.sessions() as session:
        return session.get(TestRun, run.id).status


def test_a_reference_result_cached_before_attributes_were_switched_off_is_computed_again(
        service_settings, git_server, monkeypatch):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    sha = git_server.commit("staff/reference", {
        ".gitattributes": "*.csv text eol=crlf\n", "week1/hello/data.csv": DATA,
        "week1/hello/hello.py": READS_DATA, "week1/hello/test.yaml": ONE_TEST})
    student = git_server.commit("students/alice", {"week1/hello/data.csv": DATA,
                                                   "week1/hello/hello.py": READS_DATA})
    # An older gradehook: the reference's result computed from files converted as the
    # attributes asked, and cached under a key naming the commit alone.
    resources.repositories.ensure_commit("staff/reference", sha)
    files = resources.repositories.tree("staff/reference", sha)
    (files / "week1" / "hello" / "data.csv").write_bytes(DATA.replace("\n", "\r\n").encode())
    monkeypatch.setattr(testing, "tree_name", lambda commit: commit, raising=False)
    assert _status(resources, student) == RunStatus.FAILED
    monkeypatch.undo()
    shutil.rmtree(files.parent)  # the tree goes, as housekeeping takes it; its result stays

    assert _status(resources, student) == RunStatus.PASSED
