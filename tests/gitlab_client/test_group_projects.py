"""GitLabClient.list_group_projects: the Groups API's project listing, pages and errors."""

from __future__ import annotations

import pytest
import responses
from responses import matchers

from gitlab_client import GitLabClient, NotFoundGitLabError, Project, TransientGitLabError

GITLAB = "https://gitlab.example.com"
GROUP_URL = f"{GITLAB}/api/v4/groups/prog1%2Fstudents/projects"
QUERY = {"include_subgroups": "True", "archived": "False", "simple": "True", "per_page": "100"}


def project(project_id: int, path: str) -> dict:
    return {"id": project_id, "path_with_namespace": path, "default_branch": "main",
            "web_url": f"{GITLAB}/{path}"}


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> GitLabClient:
    return GitLabClient(GITLAB, "glpat-bot", timeout=5, max_rate_limit_retries=0)


def test_lists_projects_of_subgroups_across_pages(mocked, client):
    second = f"{GROUP_URL}?page=2&per_page=100"
    mocked.get(GROUP_URL, match=[matchers.query_param_matcher(QUERY)],
               json=[project(12, "prog1/students/alice")],
               headers={"Link": f'<{second}>; rel="next"', "X-Next-Page": "2"})
    mocked.get(GROUP_URL, match=[matchers.query_param_matcher({**QUERY, "page": "2"})],
               json=[project(13, "prog1/students/late/bob")])

    assert client.list_group_projects("prog1/students") == [
        Project(12, "prog1/students/alice", "main", f"{GITLAB}/prog1/students/alice"),
        Project(13, "prog1/students/late/bob", "main", f"{GITLAB}/prog1/students/late/bob")]


@pytest.mark.parametrize("status, error", [(404, NotFoundGitLabError),
                                           (503, TransientGitLabError)])
def test_errors_map_to_our_types(mocked, client, status, error):
    mocked.get(GROUP_URL, status=status, json={"message": f"{status} Group Not Found"})

    with pytest.raises(error, match="list group projects"):
        client.list_group_projects("prog1/students")
