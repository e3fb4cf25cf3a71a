"""The course's failures end a run as a course error with a report that says so, never a score."""

from __future__ import annotations

import pytest

from pipeline import testing
from pipeline.ledger.models import RunStatus, TestRun
from pipeline.reports import comment_marker, commit_status_payload, mr_comment_markdown, \
    result_page_html
from pipeline.reports.model import RunSummary
from tests.api.world import STAFF_TOKEN, bearer, staff_digest
from tests.cli.commands import gradehook
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import migrated_resources, queue_run
from webhooks.app import create_app

SOLUTION = {"week1/hello/hello.py": "greeting = 'hello'\n"}
FILE, LINK = "100644", "120000"
# A file name no file system holds, in a folder of the reference repository.
LONG_NAME = "x" * 300 + ".csv"
NAME_TOO_LONG = "has a name of 304 bytes, longer than the 255 a file system allows"


def _ended(resources, run_id) -> TestRun:
    with resources.sessions() as session:
        return session.get(TestRun, run_id)


def _graded(resources, git_server) -> TestRun:
    run = queue_run(resources, commit_sha=git_server.commit("students/alice", SOLUTION))
    testing.run_student_testing(resources, run.id, run.celery_task_id)
    return _ended(resources, run.id)


def _status_description(run: TestRun) -> str:
    return commit_status_payload(RunSummary.from_record(run, "https://grade.example/r"),
                                 run.report)["description"]


def test_an_unreadable_reference_repository_is_a_course_error_with_its_report(
        service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {"README.md": "no assignments yet\n"},
                      branch="drafts")

    ended = _graded(resources, git_server)

    assert (ended.status, ended.score) == (RunStatus.ERROR, None)
    assert ended.status_reason.startswith(
        "course error: the reference repository could not be read: ")
    assert ended.report["gradehook"]["courseError"].startswith(
        "the reference repository could not be read: ")
    # Students read that the course's side is at fault, not gradehook's, and not their code.
    assert _status_description(ended).startswith(
        "Not graded: the course's tests for this assignment have a problem: the reference "
        "repository could not be read")


def test_a_reference_solution_that_crashes_before_giving_a_value_is_not_scored(
        service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {
        "week1/hello/hello.py": "raise RuntimeError('unfinished')\ngreeting = 'hello'\n",
        "week1/hello/test.yaml": ONE_TEST})

    ended = _graded(resources, git_server)

    assert (ended.status, ended.score) == (RunStatus.ERROR, None)
    assert ended.status_reason.startswith(
        "course error: the reference solution gives no expected value for `greeting` in "
        "collection `Greeting`: its run ended CRASHED: Execution of ")
    # The reference's file is named by its place in the repository, not on the grading host.
    assert ended.status_reason.endswith(
        "Execution of /week1/hello/hello.py failed, ERROR: unfinished")
    # The report keeps the original engine's results: the test is skipped.
    [collection] = ended.report["tests"]
    assert collection["tests"][0]["result"] == "SKIPPED"
    assert _status_description(ended).startswith(
        "Not graded: the course's tests for this assignment have a problem")


def test_an_entry_point_misspelt_in_test_yaml_is_not_scored_as_the_students_zero(
        service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {
        "week1/hello/hello.py": "greeting = 'hello'\n",
        "week1/hello/test.yaml": ONE_TEST.replace("hello.py", "helo.py")})

    ended = _graded(resources, git_server)

    # The student's run fails first (no helo.py), but no student could pass: staff are told.
    assert (ended.status, ended.score) == (RunStatus.ERROR, None)
    assert ended.status_reason == (
        "course error: the reference solution gives no expected value for `greeting` in "
        "collection `Greeting`: its entryPoint helo.py does not exist")
    assert _status_description(ended).startswith(
        "Not graded: the course's tests for this assignment have a problem")


def test_a_dependency_no_run_can_meet_is_not_scored_and_names_its_line(
        service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {
        "week1/hello/hello.py": "greeting = 'hello'\n",
        "week1/hello/test.yaml": ONE_TEST + (
            "    - name: After greeting\n"
            "      successDependency: greting\n"
            "      tests:\n"
            "        - name: greeting\n")})

    ended = _graded(resources, git_server)

    assert (ended.status, ended.score) == (RunStatus.ERROR, None)
    assert ended.status_reason == (
        "course error: test.yaml line 11: properties.tests[1].successDependency: `greting` "
        "names no collection: no collection has an id, and it is not a number from 1 to 2")
    # The report keeps the original engine's results.
    assert [c["tests"][0].get("details") for c in ended.report["tests"]] == [
        None, "E   Failed: Success-Dependency `['greting']` not valid"]


def _reference_with_long_name(git_server, folder: str) -> None:
    git_server.commit_entries("staff/reference", {
        b"week1/hello/hello.py": (FILE, b"greeting = 'hello'\n"),
        b"week1/hello/test.yaml": (FILE, ONE_TEST.encode()),
        b"week1/hello/meta.yaml": (FILE, b"testDependencies:\n  - shared/data\n"),
        b"shared/data/a.csv": (FILE, b"a\n"),
        f"{folder}/{LONG_NAME}".encode(): (FILE, b"a\n")})


def test_a_path_no_run_uses_stops_no_run(service_settings, git_server):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference_with_long_name(git_server, "week2/other")

    ended = _graded(resources, git_server)

    assert (ended.status, ended.score) == (RunStatus.PASSED, 1.0)


@pytest.mark.parametrize("folder", ["week1/hello", "shared/data"],
                         ids=["in-the-assignment", "in-a-test-dependency"])
def test_a_path_a_run_uses_that_cannot_be_laid_out_is_a_course_error(
        service_settings, git_server, folder):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference_with_long_name(git_server, folder)

    ended = _graded(resources, git_server)

    assert (ended.status, ended.score) == (RunStatus.ERROR, None)
    path = f"{folder}/{LONG_NAME}"
    assert ended.status_reason == (
        f"course error: the reference repository could not be read: {folder} cannot be graded: "
        f"{path[:120]}... ({len(path)} characters) {NAME_TOO_LONG}")


# A reference whose function raises when a test looks it up, on a line naming its secret.
CRASHING_REFERENCE = {
    "week1/hello/hello.py": ("greeting = 'hello'\n"
                             "secret_formula = 4711\n\n\n"
                             "def f(x):\n"
                             "    return secret_formula / 0\n")}
HIDDEN_META = {"week1/hello/meta.yaml": "properties:\n  hiddenTests:\n    - Secret\n"}
REFERENCE_LINE = "return secret_formula / 0"
LOOKED_UP_IN = {"visible": ("Formula", "f(2)"), "hidden": ("Secret", "f(4711)")}
WITHHELD_NOTE = "the course's staff see the whole cause in GET /api/runs"


def _student_outputs(run: TestRun) -> str:
    summary = RunSummary.from_record(run, "https://grade.example/r")
    return "\n".join([commit_status_payload(summary, run.report)["description"],
                      mr_comment_markdown([(summary, run.report)], comment_marker("mr-1")),
                      result_page_html(summary, run.report)])


@pytest.mark.parametrize("collection", ["visible", "hidden"])
def test_a_reference_crashing_in_a_look_up_shows_students_neither_its_code_nor_hidden_tests(
        service_settings, git_server, collection):
    _, settings = service_settings({"api": {"staff_token_hashes": staff_digest()}})
    resources = migrated_resources(settings)
    name, expression = LOOKED_UP_IN[collection]
    git_server.commit("staff/reference", {
        **CRASHING_REFERENCE, **(HIDDEN_META if collection == "hidden" else {}),
        "week1/hello/test.yaml": (
            ONE_TEST + f"    - type: variable\n      name: {name}\n      entryPoint: hello.py\n"
                       f"      tests:\n        - name: '{expression}'\n")})

    ended = _graded(resources, git_server)

    # Staff read the whole cause: the ledger's reason, the report and GET /api/runs.
    cause = (f"the reference solution gives no expected value for `{expression}` in collection "
             f"`{name}`: evaluating `{expression}` in its namespace raised ZeroDivisionError: "
             f"division by zero (hello.py, line 6: {REFERENCE_LINE})")
    assert (ended.status, ended.status_reason) == (RunStatus.ERROR, f"course error: {cause}")
    assert ended.report["gradehook"]["courseError"] == cause
    response = create_app(settings).test_client().get(f"/api/runs/{ended.id}",
                                                      headers=bearer(STAFF_TOKEN))
    assert response.get_json()["status_reason"] == f"course error: {cause}"
    # Students read which test lacks its value, unless it is hidden, and where staff read why.
    shown = {"visible": f"the reference solution gives no expected value for `{expression}` in "
                        f"collection `{name}`",
             "hidden": "the reference solution gives no expected value for a test of a hidden "
                       "collection"}[collection]
    assert _status_description(ended) == (
        f"Not graded: the course's tests for this assignment have a problem: {shown}; "
        f"{WITHHELD_NOTE}")
    students_read = _student_outputs(ended)
    assert REFERENCE_LINE not in students_read and "ZeroDivisionError" not in students_read
    if collection == "hidden":
        assert expression not in students_read and name not in students_read


def test_the_places_students_are_told_staff_read_a_course_error_show_staff_all_of_it(
        service_settings, git_server):
    config, settings = service_settings({"api": {"staff_token_hashes": staff_digest()}})
    resources = migrated_resources(settings)
    name, expression = LOOKED_UP_IN["hidden"]
    git_server.commit("staff/reference", {
        **CRASHING_REFERENCE, **HIDDEN_META,
        "week1/hello/test.yaml": (
            ONE_TEST + f"    - type: variable\n      name: {name}\n      entryPoint: hello.py\n"
                       f"      tests:\n        - name: '{expression}'\n")})

    ended = _graded(resources, git_server)

    note = ended.report["gradehook"]["courseErrorForStudents"].splitlines()[-1]
    listed = create_app(settings).test_client().get("/api/runs", headers=bearer(STAFF_TOKEN))
    shown_by_place = {"`gradehook results`": gradehook(config, "results").output,
                      "GET /api/runs": listed.get_json()["items"][0]["status_reason"]}
    named = [place for place in shown_by_place if place in note]
    assert named
    for place in named:
        assert REFERENCE_LINE in shown_by_place[place], place


def _reference_with_unsafe_entry(git_server, folder: str, unsafe: str) -> None:
    """Commit the reference with a path that cannot be extracted safely into folder: a link
    leading out of the repository, or a name git refuses to write."""
    git_server.commit_entries("staff/reference", {
        b"week1/hello/hello.py": (FILE, b"greeting = 'hello'\n"),
        b"week1/hello/test.yaml": (FILE, ONE_TEST.encode()),
        b"week1/hello/meta.yaml": (FILE, b"testDependencies:\n  - shared/data\n"),
        b"shared/data/a.csv": (FILE, b"a\n"),
        **({f"{folder}/data.csv".encode(): (LINK, b"../../../../etc/passwd")}
           if unsafe == "link" else {})})
    if unsafe == "refused":
        git_server.commit_refused_name("staff/reference", folder, b"..")


UNSAFE = {"link": "{folder}/data.csv is a link to ../../../../etc/passwd, outside the "
                  "repository: commit the file itself instead",
          "refused": "{folder}/.. is a path git does not allow"}


@pytest.mark.parametrize("unsafe", UNSAFE)
def test_an_unsafe_path_no_run_uses_stops_no_run(service_settings, git_server, unsafe):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference_with_unsafe_entry(git_server, "week2/other", unsafe)

    ended = _graded(resources, git_server)

    assert (ended.status, ended.score) == (RunStatus.PASSED, 1.0)


@pytest.mark.parametrize("unsafe", UNSAFE)
@pytest.mark.parametrize("folder", ["week1/hello", "shared/data"],
                         ids=["in-the-assignment", "in-a-test-dependency"])
def test_an_unsafe_path_a_run_uses_is_a_course_error(service_settings, git_server, folder,
                                                     unsafe):
    _, settings = service_settings()
    resources = migrated_resources(settings)
    _reference_with_unsafe_entry(git_server, folder, unsafe)

    ended = _graded(resources, git_server)

    assert (ended.status, ended.score) == (RunStatus.ERROR, None)
    assert ended.status_reason == (
        f"course error: the reference repository could not be read: {folder} cannot be graded: "
        + UNSAFE[unsafe].format(folder=folder))
