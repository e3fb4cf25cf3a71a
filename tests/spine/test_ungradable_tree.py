"""A student's commit whose files cannot be laid out for grading is graded, failing with why."""

from __future__ import annotations

import pytest

from pipeline import testing
from pipeline.ledger.models import RunStatus, TestRun
from tests.infra.assignments import ONE_TEST
from tests.infra.gitrepos import SUBMODULE_MODE
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


@pytest.mark.parametrize("target", [
    "/etc/shadow",
    # A file of the student's repository, but not of the assignment's folder: never graded.
    "../../notes/secrets.txt",
], ids=["host-file", "file-outside-the-assignment"])
def test_a_link_out_of_the_assignment_is_graded_as_failing_with_the_reason(
        tmp_path, service_settings, git_server, target):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference(git_server)
    sha = git_server.commit("students/alice", {"week1/hello/hello.py": "greeting = 'hello'\n",
                                               "notes/secrets.txt": "s\n"},
                            links={"week1/hello/secrets.txt": target})
    run = queue_run(resources, commit_sha=sha)

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)

    assert outcome.status == "failed"
    assert _graded_failing_with(resources, run.id) == (
        f"E   Failed: week1/hello cannot be graded safely: week1/hello/secrets.txt is a link to "
        f"{target}, outside week1/hello: commit the file itself instead")


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


FILE, LINK = "100644", "120000"
SUBMODULE = ("is a submodule in this commit, not a folder: its files are in another git "
             "repository (a `git init` inside the folder makes one)")


@pytest.mark.parametrize("path, mode, content, what", [
    ("week1/hello", FILE, b"greeting = 'hello'\n",
     "week1/hello is a file in this commit, not a folder"),
    ("week1/hello", LINK, b"../other", "week1/hello is a link in this commit, not a folder"),
    # What `git add` makes of a folder in which the student ran `git init`.
    ("week1/hello", SUBMODULE_MODE, b"1" * 40, f"week1/hello {SUBMODULE}"),
    ("week1/hello/lib", SUBMODULE_MODE, b"1" * 40, f"week1/hello/lib {SUBMODULE}"),
], ids=["file", "link", "submodule", "submodule-inside"])
def test_an_assignment_folder_committed_as_a_file_a_link_or_a_submodule_is_graded_as_failing(
        tmp_path, service_settings, git_server, path, mode, content, what):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference(git_server)
    sha = git_server.commit_entries("students/alice", {
        b"other/hello.py": (FILE, b"greeting = 'hello'\n"), path.encode(): (mode, content),
        # Where the folder is one, what the student wrote in it, using the submodule's files.
        **({b"week1/hello/hello.py": (FILE, b"from lib.words import greeting\n")}
           if path != "week1/hello" else {})})
    run = queue_run(resources, commit_sha=sha)

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)

    assert outcome.status == "failed"
    assert _graded_failing_with(resources, run.id) == f"E   Failed: {what}"


def _shown(path: str) -> str:
    return f"{path[:120]}... ({len(path)} characters)"


LONG_NAME = "week1/hello/" + "x" * 300 + ".py"
LONG_PATH = "week1/hello/" + ("n" * 69 + "/") * 60 + "x.py"
DEEP_PATH = "week1/hello/" + "d/" * 500 + "x.py"
# Folders come before what they hold: the first one beyond the limit is named.
FIRST_FOLDER_TOO_LONG = "week1/hello/" + "/".join(["n" * 69] * 15)
FIRST_FOLDER_TOO_DEEP = "week1/hello/" + "/".join(["d"] * 64)


@pytest.mark.parametrize("entry, detail", [
    ((LONG_NAME, FILE, b"x = 1\n"),
     f"{_shown(LONG_NAME)} has a name of 303 bytes, longer than the 255 a file system allows"),
    ((LONG_PATH, FILE, b"x = 1\n"),
     f"{_shown(FIRST_FOLDER_TOO_LONG)} is a path of 1061 bytes, longer than the 1024 a run "
     "can grade"),
    ((DEEP_PATH, FILE, b"x = 1\n"),
     f"{_shown(FIRST_FOLDER_TOO_DEEP)} lies 65 folders deep, deeper than the 64 a run can grade"),
    (("week1/hello/alias.py", LINK, b""),
     "week1/hello/alias.py is a link to nothing (an empty path)"),
    (("week1/hello/alias.py", LINK, b"a/" * 2600 + b"hello.py"),
     "week1/hello/alias.py links to a path of 5208 bytes, longer than the 1024 a run can grade"),
], ids=["long-name", "long-path", "deep-path", "empty-link", "long-link"])
def test_a_path_no_copy_for_the_sandbox_could_hold_is_graded_as_failing(
        tmp_path, service_settings, git_server, entry, detail):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference(git_server)
    path, mode, content = entry
    sha = git_server.commit_entries("students/alice", {
        b"week1/hello/hello.py": (FILE, b"greeting = 'hello'\n"), path.encode(): (mode, content)})
    run = queue_run(resources, commit_sha=sha)

    outcome = testing.run_student_testing(resources, run.id, run.celery_task_id)

    assert outcome.status == "failed"
    assert _graded_failing_with(resources, run.id) == (
        f"E   Failed: week1/hello cannot be graded: {detail}")


@pytest.mark.parametrize("beyond, links", [
    ({}, {"week1/hello/c.txt": "a.txt"}),
    ({"week1/hello/b.txt": None, "week1/hello/sub/b.txt": "b\n"}, {}),
], ids=["a-link-counts-as-a-file", "a-folder-counts"])
def test_an_assignment_folder_with_more_files_than_allowed_is_graded_as_failing(
        tmp_path, service_settings, git_server, beyond, links):
    _, settings = service_settings({"sandbox": {"max_files": 3}})
    resources = migrated_resources(settings)
    _reference(git_server)
    at_the_limit = queue_run(resources, commit_sha=git_server.commit("students/alice", {
        "week1/hello/hello.py": "greeting = 'hello'\n", "week1/hello/a.txt": "a\n",
        "week1/hello/b.txt": "b\n"}))
    assert testing.run_student_testing(resources, at_the_limit.id,
                                       at_the_limit.celery_task_id).status == "passed"
    over = queue_run(resources, commit_sha=git_server.commit("students/alice", beyond,
                                                             links=links))

    testing.run_student_testing(resources, over.id, over.celery_task_id)

    assert _graded_failing_with(resources, over.id) == (
        "E   Failed: week1/hello holds more than 3 files and folders, the most a run can grade")
