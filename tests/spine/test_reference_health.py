"""A course reference workers cannot fetch, or without assignments, shows in the health answer."""

from __future__ import annotations

import re

from pipeline.celery_app import create_celery
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

    git_server.commit("algo/reference", {"week1/hello/hello.py": "x = 1\n"}, branch="ws2026")
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
    # A course that lists its assignments has them, whatever the reference holds.
    _, listed = service_settings({"courses": [{**DISCOVERING,
                                               "assignments": [{"directory": "week1/hello"}]}]})
    reconcile_ledger(migrated_resources(listed), create_celery(listed))
    assert _problems(listed) == []


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
