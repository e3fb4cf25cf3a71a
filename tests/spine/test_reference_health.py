"""A course reference workers cannot fetch, or without assignments, shows in the health answer."""

from __future__ import annotations

import re

from pipeline.celery_app import create_celery
from pipeline.grading import gradable
from pipeline.grading.staging import stage_assignment
from pipeline.reconcile import reconcile_ledger
from pipeline.repos import MissingCommitError
from tests.infra.assignments import ONE_TEST
from tests.infra.ledger import migrated_resources
from webhooks.app import create_app

HEALTH = "/api/tests-celery/health"
SEEN = r" \(seen \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)"
DISCOVERING = {"name": "prog1", "student_projects": ["students/"],
               "reference_project": "staff/reference"}
LISTING = {"name": "algo", "student_projects": ["algo/students/"],
           "reference_project": "algo/reference", "reference_branch": "ws2026",
           "discover_assignments": False, "assignments": [{"directory": "week1/hello"}]}


def _problems(settings) -> list[str]:
    return create_app(settings).test_client().get(HEALTH).get_json()["problems"]


def _unfetchable(course: str, project: str, branch: str, git_says: str) -> str:
    return (f"course {course}: its reference {project} \\(branch {branch}\\) cannot be fetched: "
            f"{git_says}{SEEN}")


def test_an_unfetchable_reference_shows_in_the_health_answer_until_a_sweep_fetches_it(
        service_settings, git_server):
    _, settings = service_settings({"courses": [DISCOVERING, LISTING]})
    resources, celery = migrated_resources(settings), create_celery(settings)
    assert _problems(settings) == []

    reconcile_ledger(resources, celery)

    prog1, algo = _problems(settings)
    missing = "fatal: '.*' does not appear to be a git repository"
    assert re.fullmatch(_unfetchable("prog1", "staff/reference", "main",
                                     f"fetching staff/reference failed: {missing}"), prog1)
    assert re.fullmatch(_unfetchable("algo", "algo/reference", "ws2026",
                                     f"fetching algo/reference failed: {missing}"), algo)

    git_server.commit("staff/reference", {"week1/hello/test.yaml": ONE_TEST})
    git_server.commit("algo/reference", {"week1/hello/hello.py": "x = 1\n"})
    reconcile_ledger(resources, celery)
    assert re.fullmatch(_unfetchable("algo", "algo/reference", "ws2026",
                                     "branch ws2026 does not exist in project algo/reference"),
                        *_problems(settings))

    git_server.commit("algo/reference", {"week1/hello/test.yaml": ONE_TEST}, branch="ws2026")
    reconcile_ledger(resources, celery)
    assert _problems(settings) == []


def test_a_reference_holding_no_assignment_shows_in_the_health_answer(
        service_settings, git_server):
    _, settings = service_settings({"courses": [DISCOVERING]})
    resources = migrated_resources(settings)
    sha = git_server.commit("staff/reference", {"week1/hello/hello.py": "x = 1\n"})

    reconcile_ledger(resources, create_celery(settings))

    [problem] = _problems(settings)
    assert re.fullmatch(f"course prog1: it has no assignment: its reference staff/reference "
                        f"\\(branch main, commit {sha[:12]}\\) holds no test.yaml, and "
                        f"config.toml lists none{SEEN}", problem)


def test_a_listed_assignment_the_reference_lacks_shows_in_the_health_answer(
        service_settings, git_server):
    """Before, each of its runs ended as a course error, and the health answer said nothing."""
    listed = [{"directory": "week1/hello"}, {"directory": "week2/loops"}]
    _, settings = service_settings({"courses": [{**LISTING, "assignments": listed},
                                                {**DISCOVERING, "assignments": listed}]})
    resources, celery = migrated_resources(settings), create_celery(settings)
    algo = git_server.commit("algo/reference", {"week1/hello/test.yaml": ONE_TEST,
                                                "week2/loop/loop.py": "x = 1\n"},
                             branch="ws2026")
    prog1 = git_server.commit("staff/reference", {"week1/hello.py": "x = 1\n",
                                                  "week2/loops/test.yaml": ONE_TEST})

    reconcile_ledger(resources, celery)

    assert [re.sub(SEEN, "", problem) for problem in _problems(settings)] == [
        f"course algo: its reference algo/reference (branch ws2026, commit {algo[:12]}) holds "
        "no files in week2/loops, which config.toml lists: their runs end as course errors",
        f"course prog1: its reference staff/reference (branch main, commit {prog1[:12]}) holds "
        "no files in week1/hello, which config.toml lists: their runs end as course errors"]
    git_server.commit("algo/reference", {"week2/loops/test.yaml": ONE_TEST}, branch="ws2026")
    git_server.commit("staff/reference", {"week1/hello/test.yaml": ONE_TEST})
    reconcile_ledger(resources, celery)
    assert _problems(settings) == []


def test_listed_assignments_graded_by_pytest_files_or_output_are_no_problem(
        service_settings, git_server):
    """Before, the health answer said each ran into a course error for want of test.yaml."""
    listed = [{"directory": "week1/hello"}, {"directory": "week2/calc"},
              {"directory": "week3/echo"}]
    _, settings = service_settings({"courses": [{**LISTING, "assignments": listed},
                                                {**DISCOVERING, "assignments": listed}]})
    resources = migrated_resources(settings)
    files = {"week1/hello/test.yaml": ONE_TEST,
             "week2/calc/calc.py": "def add(a, b):\n    return a + b\n",
             "week2/calc/tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
                                              "    assert add(2, 3) == 5\n",
             "week3/echo/echo.py": "print(input())\n"}
    git_server.commit("algo/reference", files, branch="ws2026")
    git_server.commit("staff/reference", files)

    reconcile_ledger(resources, create_celery(settings))

    assert _problems(settings) == []


def test_a_listed_folder_holding_nothing_to_grade_shows_in_the_health_answer(
        service_settings, git_server):
    """Before, a listed folder holding meta.yaml alone was no problem to the health answer, and
    each of its runs ended as a course error: 'the reference holds no test.yaml, no test_*.py and
    no file to compare the student's with, so there is nothing to grade'."""
    listed = [{"directory": "week1/hello"}, {"directory": "week2/loops"},
              {"directory": "week3/echo"}]
    _, settings = service_settings({"courses": [{**LISTING, "assignments": listed}]})
    resources, celery = migrated_resources(settings), create_celery(settings)
    sha = git_server.commit("algo/reference", {"week1/hello/meta.yaml": "properties: {}\n",
                                               "week1/hello/.gitkeep": "",
                                               "week3/echo/meta.yaml": "properties: {}\n",
                                               "week3/echo/echo.py": "print(input())\n"},
                            branch="ws2026")

    reconcile_ledger(resources, celery)

    assert [re.sub(SEEN, "", problem) for problem in _problems(settings)] == [
        f"course algo: its reference algo/reference (branch ws2026, commit {sha[:12]}) holds "
        "no files in week2/loops and nothing to grade in week1/hello (no test.yaml, no "
        "test_*.py and no file to compare the student's with), which config.toml lists: their "
        "runs end as course errors"]
    sha = git_server.commit("algo/reference", {"week2/loops/loops.py": "print(1)\n"},
                            branch="ws2026")
    reconcile_ledger(resources, celery)
    assert [re.sub(SEEN, "", problem) for problem in _problems(settings)] == [
        f"course algo: its reference algo/reference (branch ws2026, commit {sha[:12]}) holds "
        "nothing to grade in week1/hello (no test.yaml, no test_*.py and no file to compare the "
        "student's with), which config.toml lists: their runs end as course errors"]
    git_server.commit("algo/reference", {"week1/hello/hello.py": "print('hello')\n"},
                      branch="ws2026")
    reconcile_ledger(resources, celery)
    assert _problems(settings) == []


def test_a_reference_branch_removed_as_the_sweep_looks_at_it_is_a_problem_not_a_crash(
        service_settings, git_server, monkeypatch):
    """Another process's fetch removes the branch between discovery and the sweep's second
    look at it: the sweep names the problem and goes on, instead of raising out of itself."""
    _, settings = service_settings({"courses": [DISCOVERING]})
    resources = migrated_resources(settings)
    git_server.commit("staff/reference", {"week1/hello/hello.py": "x = 1\n"})
    resolve = resources.repositories.resolve_branch

    def removed_once_fetched(project, branch, *, fetch=True, **options):
        if not fetch:
            raise MissingCommitError(f"branch {branch} does not exist in project {project}")
        return resolve(project, branch, fetch=fetch, **options)
    monkeypatch.setattr(resources.repositories, "resolve_branch", removed_once_fetched)

    reconcile_ledger(resources, create_celery(settings))

    assert re.fullmatch(_unfetchable("prog1", "staff/reference", "main",
                                     "branch main does not exist in project staff/reference"),
                        *_problems(settings))


def test_a_problem_of_a_reference_no_longer_configured_is_not_shown(
        service_settings, git_server):
    _, settings = service_settings({"courses": [DISCOVERING]})
    reconcile_ledger(migrated_resources(settings), create_celery(settings))
    assert len(_problems(settings)) == 1

    git_server.commit("staff/reference-2026", {"week1/hello/test.yaml": ONE_TEST})
    _, fixed = service_settings({"courses": [{**DISCOVERING,
                                              "reference_project": "staff/reference-2026"}]})
    assert _problems(fixed) == []


def test_an_assignment_whose_test_yaml_is_invalid_shows_in_the_health_answer_until_fixed(
        service_settings, git_server):
    """Before, the health answer said nothing of it, and staff learnt of it only as each run of
    the assignment ended as a course error naming these lines."""
    broken = ONE_TEST.replace("properties:\n", "properties:\n  storeGraphicsArtifacts: maybe\n") \
        .replace("entryPoint: hello.py\n", "entryPoint: hello.py\n      failureMessage: [1]\n")
    listed = [{"directory": "week1/hello"}, {"directory": "week2/calc"}]
    _, settings = service_settings({"courses": [DISCOVERING, {**LISTING, "assignments": listed}]})
    resources, celery = migrated_resources(settings), create_celery(settings)
    prog1 = git_server.commit("staff/reference", {"week1/hello/test.yaml": ONE_TEST,
                                                  "week2/loops/test.yaml": broken})
    algo = git_server.commit("algo/reference", {
        "week1/hello/test.yaml": broken, "week2/calc/calc.py": "def add(a, b):\n    return a + b\n",
        "week2/calc/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
                                   "    assert add(2, 3) == 5\n",
        "week2/calc/meta.yaml": "properties:\n  hiddenTests: [test_cal.py]\n"}, branch="ws2026")

    reconcile_ledger(resources, celery)

    errors = ("test.yaml line 4: properties.storeGraphicsArtifacts: must be true or false, got "
              "'maybe'; test.yaml line 9: properties.tests[0].failureMessage: must be a string, "
              "got [1]")
    assert [re.sub(SEEN, "", problem) for problem in _problems(settings)] == [
        f"course prog1: its reference staff/reference (branch main, commit {prog1[:12]}) holds "
        f"assignments whose runs all end as course errors: in week2/loops, {errors}",
        f"course algo: its reference algo/reference (branch ws2026, commit {algo[:12]}) holds "
        f"assignments whose runs all end as course errors: in week1/hello, {errors}; in "
        "week2/calc, meta.yaml line 2: properties.hiddenTests[0]: no test file (test_*.py) is "
        "named 'test_cal.py' or lies in a folder of that name, so this entry hides nothing; did "
        "you mean test_calc.py?"]
    git_server.commit("staff/reference", {"week2/loops/test.yaml": ONE_TEST})
    git_server.commit("algo/reference", {"week1/hello/test.yaml": ONE_TEST,
                                         "week2/calc/meta.yaml": "properties:\n  hiddenTests: "
                                                                 "[test_calc.py]\n"},
                      branch="ws2026")
    reconcile_ledger(resources, celery)
    assert _problems(settings) == []


def test_assignments_whose_course_files_or_dependencies_fail_every_run_show_in_the_health_answer(
        service_settings, git_server):
    """Before, the sweep read test.yaml and meta.yaml alone: a testFile the folder lacks, a
    default comparison of two programs none named, a successDependency naming no collection and
    a collection checking a file the reference lacks were no problem to the health answer, and
    staff learnt of each only as every run of it ended as a course error in these words."""
    listed = [{"directory": "week1/hello"}, {"directory": "week2/calc"},
              {"directory": "week3/echo"}]
    _, settings = service_settings({"courses": [{**LISTING, "assignments": listed}]})
    resources, celery = migrated_resources(settings), create_celery(settings)
    hello = ONE_TEST.replace("entryPoint: hello.py\n",
                             "entryPoint: hello.py\n      successDependency: [nowhere]\n") \
        + "    - type: exist\n      name: Data\n      file: data.txt\n      tests:\n" \
          "        - name: data.txt\n"
    sha = git_server.commit("algo/reference", {
        "week1/hello/test.yaml": hello, "week1/hello/hello.py": "greeting = 'hi'\n",
        "week2/calc/calc.py": "def add(a, b):\n    return a + b\n",
        "week2/calc/test_calc.py": "from calc import add\nfrom helpers import CASES\n\n\n"
                                   "def test_add():\n    assert add(*CASES) == 5\n",
        "week2/calc/meta.yaml": "properties:\n  testFiles: [helper.py]\n",
        "week2/calc/helpers.py": "CASES = (2, 3)\n",
        "week3/echo/echo.py": "print(input())\n", "week3/echo/shout.py": "print('!')\n"},
        branch="ws2026")

    reconcile_ledger(resources, celery)

    assert [re.sub(SEEN, "", problem) for problem in _problems(settings)] == [
        f"course algo: its reference algo/reference (branch ws2026, commit {sha[:12]}) holds "
        "assignments whose runs all end as course errors: in week1/hello, test.yaml line 8: "
        "properties.tests[0].successDependency: `nowhere` names no collection: no collection "
        "has an id, and it is not a number from 1 to 2; collection `Data` checks the file "
        "`data.txt`, which the reference solution does not have, so the reference would fail it "
        "too; in week2/calc, meta.yaml line 2: properties.testFiles[0]: helper.py does not "
        "exist in week2/calc; in week3/echo, the default comparison cannot tell which program "
        "to run: the reference has 2 Python files at its top (echo.py, shout.py) and no main.py; "
        "name the program main.py, list it first in meta.yaml's studentSubmissionFiles, or add "
        "test.yaml or pytest files"]
    git_server.commit("algo/reference", {
        "week1/hello/test.yaml": ONE_TEST, "week2/calc/meta.yaml": "properties:\n  testFiles: "
                                                                   "[helpers.py]\n",
        "week3/echo/shout.py": None}, branch="ws2026")
    reconcile_ledger(resources, celery)
    assert _problems(settings) == []


def test_pytest_files_collecting_more_tests_than_a_run_reports_show_in_the_health_answer(
        service_settings, git_server):
    """Before, the sweep ran no code: pytest files whose parametrize collects more tests than a
    run reports were no problem to the health answer, while every run of them ended as a course
    error."""
    _, settings = service_settings({"courses": [{**LISTING, "assignments": [
        {"directory": "week2/calc"}]}]})
    resources, celery = migrated_resources(settings), create_celery(settings)
    tests = "import pytest\nfrom calc import add\n\n\n" \
            "@pytest.mark.parametrize('number', range({count}))\n" \
            "def test_add(number):\n    assert add(number, 0) == number\n"
    sha = git_server.commit("algo/reference", {
        "week2/calc/calc.py": "def add(a, b):\n    return a + b\n",
        "week2/calc/test_calc.py": tests.replace("{count}", "2001")}, branch="ws2026")

    reconcile_ledger(resources, celery)

    assert [re.sub(SEEN, "", problem) for problem in _problems(settings)] == [
        f"course algo: its reference algo/reference (branch ws2026, commit {sha[:12]}) holds "
        "assignments whose runs all end as course errors: in week2/calc, its pytest files "
        "collect 2001 tests with the reference solution, more than the 2000 gradehook grades in "
        "a run: spread them over more assignments, or parametrize less"]
    git_server.commit("algo/reference", {"week2/calc/test_calc.py": tests.replace(
        "{count}", "2000")}, branch="ws2026")
    reconcile_ledger(resources, celery)
    assert _problems(settings) == []


def test_a_problem_too_long_to_keep_loses_its_middle_not_its_last_places(
        service_settings, git_server):
    """Before, a problem was cut after 1,000 characters, silently: the course errors of the
    assignments after the cut, and where they lie, were lost without a word."""
    _, settings = service_settings({"courses": [LISTING]})
    resources = migrated_resources(settings)
    broken = "".join(f"    - name: c{number}\n      entryPoint: hello.py\n      tests:\n"
                     f"        - name: x\n          qualification: equal\n"
                     for number in range(12))
    git_server.commit("algo/reference", {"week1/hello/test.yaml": "properties:\n  tests:\n"
                                                                  + broken}, branch="ws2026")

    reconcile_ledger(resources, create_celery(settings))

    problem, = _problems(settings)
    assert len(re.sub(SEEN, "", problem.removeprefix("course algo: "))) == 1000
    assert problem.startswith("course algo: its reference algo/reference (branch ws2026, "
                              "commit ")
    assert re.search(r"in week1/hello, test.yaml line 7: properties.tests\[0\].tests\[0\]"
                     r"\.qualification: must be one of .* \[\.\.\. cut here: \d+ characters "
                     r"in all \.\.\.\] .*test\.yaml line 62: properties\.tests\[11\]"
                     r"\.tests\[0\]\.qualification: must be one of verifyEqual, matches, "
                     r"contains, startsWith, endsWith, count, regexp, got 'equal'" + SEEN,
                     problem)


def test_a_sweep_of_an_unchanged_reference_stages_none_of_its_folders_again(
        service_settings, git_server, monkeypatch):
    """Before, every sweep (each minute) staged a scratch copy of each listed folder graded by
    comparing output, to see it held something to grade, though the commit had not changed."""
    listed = [{"directory": "week1/hello"}, {"directory": "week3/echo"}]
    _, settings = service_settings({"courses": [{**LISTING, "assignments": listed}]})
    resources, celery = migrated_resources(settings), create_celery(settings)
    staged = []

    def counted(work, student_dir, reference_dir, *rest):
        staged.append(reference_dir.relative_to(reference_dir.parents[1]).as_posix())
        return stage_assignment(work, student_dir, reference_dir, *rest)
    monkeypatch.setattr(gradable, "stage_assignment", counted)
    git_server.commit("algo/reference", {"week1/hello/test.yaml": ONE_TEST,
                                         "week3/echo/echo.py": "print(input())\n"},
                      branch="ws2026")

    reconcile_ledger(resources, celery)
    reconcile_ledger(resources, celery)
    assert staged == ["week1/hello", "week3/echo"]

    sha = git_server.commit("algo/reference", {"week3/echo/echo.py": None,
                                               "week3/echo/meta.yaml": "properties: {}\n"},
                            branch="ws2026")
    reconcile_ledger(resources, celery)
    assert staged == ["week1/hello", "week3/echo", "week1/hello", "week3/echo"]
    assert [re.sub(SEEN, "", problem) for problem in _problems(settings)] == [
        f"course algo: its reference algo/reference (branch ws2026, commit {sha[:12]}) holds "
        "nothing to grade in week3/echo (no test.yaml, no test_*.py and no file to compare the "
        "student's with), which config.toml lists: their runs end as course errors"]
