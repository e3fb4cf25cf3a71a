"""GitLabClient's exact HTTP mapping, against `responses` fixtures shaped like GitLab's answers."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
import responses
from responses import matchers

from gitlab_client import (AuthGitLabError, Branch, GitLabClient, GitLabError, MergeRequest,
                           MergeRequestVersion, NotFoundGitLabError, Project,
                           RejectedGitLabError, TransientGitLabError, User)

GITLAB = "https://gitlab.example.com"
API = f"{GITLAB}/api/v4"
TOKEN = "glpat-secret-token-value"
SHA = "0123456789abcdef0123456789abcdef01234567"
STATUS_URL = f"{API}/projects/12/statuses/{SHA}"
NOTES_URL = f"{API}/projects/12/merge_requests/3/notes"
MARKER = "<!-- gradehook:mr -->"
BOT = {"id": 99, "username": "gradehook", "name": "Grade Hook"}
STUDENT = {"id": 7, "username": "alice", "name": "Alice"}
TRANSITION_MESSAGE = ('Cannot transition status via :run from :running (Reason(s): Status '
                      'cannot transition via "run")')


class SleepRecorder:
    """Stand in for time.sleep: record the requested pauses instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def pauses() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(pauses: SleepRecorder) -> GitLabClient:
    return GitLabClient(GITLAB, TOKEN, timeout=7.5, bot_username="gradehook",
                        max_rate_limit_retries=2, conflict_retries=2, conflict_backoff=0.2,
                        sleep=pauses)


def note(note_id: int, body: str, author: dict, *, system: bool = False) -> dict:
    return {"id": note_id, "body": body, "author": author, "system": system,
            "noteable_type": "MergeRequest", "noteable_iid": 3}


def merge_request(iid: int, source: str = "submission", **extra) -> dict:
    return {"id": 500 + iid, "iid": iid, "project_id": 12, "title": f"MR {iid}",
            "state": "opened", "source_branch": source, "target_branch": "main",
            "source_project_id": 12, "target_project_id": 12, "sha": SHA,
            "author": STUDENT, "web_url": f"{GITLAB}/course/alice/-/merge_requests/{iid}",
            "updated_at": "2026-03-01T10:00:00.000Z", **extra}


def branch(name: str, sha: str = SHA) -> dict:
    return {"name": name, "protected": name == "main", "default": name == "main",
            "commit": {"id": sha, "short_id": sha[:8]}}


def sent_json(call) -> dict:
    return json.loads(call.request.body)


# Commit statuses


def test_status_posts_all_fields_with_token_header_and_timeout(mocked, client):
    mocked.post(STATUS_URL, status=201, json={"id": 1, "status": "success"})

    posted = client.set_commit_status(12, SHA, state="success", ref="main",
                                      name="gradehook/week1", description="8/10 tests passed",
                                      target_url="https://grade.example.com/runs/r1",
                                      coverage=80.004)

    assert posted is True
    call = mocked.calls[0]
    assert sent_json(call) == {"state": "success", "ref": "main", "name": "gradehook/week1",
                               "description": "8/10 tests passed",
                               "target_url": "https://grade.example.com/runs/r1",
                               "coverage": 80.0}
    assert call.request.headers["PRIVATE-TOKEN"] == TOKEN
    assert call.request.req_kwargs["timeout"] == 7.5


def test_status_cuts_long_description_and_drops_overlong_url(mocked, client):
    mocked.post(STATUS_URL, status=201, json={"id": 1})

    client.set_commit_status(12, SHA, state="failed", ref="main", name="gradehook/a",
                             description="é" * 300, target_url="https://x.example/" + "u" * 250)

    body = sent_json(mocked.calls[0])
    assert body["description"] == "é" * 254 + "…"
    assert len(body["description"]) == 255
    assert "target_url" not in body


def test_status_without_a_known_branch_leaves_the_ref_to_gitlab(mocked, client):
    mocked.post(STATUS_URL, status=201, json={"id": 1})

    client.set_commit_status(12, SHA, state="running", ref=None, name="gradehook/a")

    assert sent_json(mocked.calls[0]) == {"state": "running", "name": "gradehook/a"}


@pytest.mark.parametrize("kwargs, complaint", [
    ({"state": "done", "ref": "main"}, "state"),
    ({"state": "success", "ref": "r" * 256}, "ref"),
    ({"state": "success", "ref": ""}, "ref"),
    ({"state": "success", "ref": "main", "coverage": "80%"}, "coverage"),
])
def test_status_rejects_bad_arguments_without_a_request(mocked, client, kwargs, complaint):
    with pytest.raises(RejectedGitLabError, match=complaint):
        client.set_commit_status(12, SHA, name="gradehook/a", **kwargs)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("sha", ["../../users", "xyz", "", "0" * 65])
def test_status_rejects_a_sha_that_is_not_hex(mocked, client, sha):
    with pytest.raises(RejectedGitLabError, match="SHA"):
        client.set_commit_status(12, sha, state="running", ref="main", name="gradehook/a")
    assert len(mocked.calls) == 0


def test_status_cannot_transition_is_a_no_op(mocked, client):
    mocked.post(STATUS_URL, status=400, json={"message": TRANSITION_MESSAGE})

    assert client.set_commit_status(12, SHA, state="running", ref="main",
                                    name="gradehook/a") is False
    assert len(mocked.calls) == 1


def test_status_other_400_is_rejected(mocked, client):
    mocked.post(STATUS_URL, status=400, json={"error": "state does not have a valid value"})

    with pytest.raises(RejectedGitLabError, match="state does not have a valid value") as err:
        client.set_commit_status(12, SHA, state="running", ref="main", name="gradehook/a")
    assert err.value.status_code == 400


def test_status_409_in_progress_is_retried_with_jittered_backoff(mocked, client, pauses):
    busy = {"message": "Another update to this commit status is in progress"}
    mocked.post(STATUS_URL, status=409, json=busy)
    mocked.post(STATUS_URL, status=409, json=busy)
    mocked.post(STATUS_URL, status=201, json={"id": 1})

    assert client.set_commit_status(12, SHA, state="success", ref="main",
                                    name="gradehook/a") is True
    assert len(mocked.calls) == 3
    assert len(pauses.calls) == 2
    assert 0.1 <= pauses.calls[0] <= 0.3  # 0.2 s with ±50 % jitter
    assert 0.2 <= pauses.calls[1] <= 0.6  # doubled


def test_status_409_that_persists_becomes_transient(mocked, client, pauses):
    for _ in range(3):
        mocked.post(STATUS_URL, status=409,
                    json={"message": "Another update to this commit status is in progress"})

    with pytest.raises(TransientGitLabError) as err:
        client.set_commit_status(12, SHA, state="success", ref="main", name="gradehook/a")
    assert err.value.status_code == 409
    assert len(mocked.calls) == 3  # first try and conflict_retries=2
    assert len(pauses.calls) == 2


def test_429_is_waited_out_by_python_gitlab_then_succeeds(mocked, client):
    mocked.post(STATUS_URL, status=429, body="Retry later", headers={"Retry-After": "0"})
    mocked.post(STATUS_URL, status=201, json={"id": 1})

    assert client.set_commit_status(12, SHA, state="running", ref="main",
                                    name="gradehook/a") is True
    assert [c.response.status_code for c in mocked.calls] == [429, 201]


def test_429_waits_the_seconds_retry_after_names(mocked, client, monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr("gitlab.utils.time.sleep", waited.append)
    mocked.get(f"{API}/user", status=429, body="Retry later", headers={"Retry-After": "7"})
    mocked.get(f"{API}/user", status=200, json=BOT)

    assert client.current_user() == User(id=99, username="gradehook", name="Grade Hook")
    assert waited == [7]


def test_429_after_the_allowed_waits_is_transient(mocked, client):
    for _ in range(3):
        mocked.get(f"{API}/user", status=429, body="Retry later", headers={"Retry-After": "0"})

    with pytest.raises(TransientGitLabError) as err:
        client.current_user()
    assert err.value.status_code == 429
    assert len(mocked.calls) == 3  # one try and max_rate_limit_retries=2


# Error mapping


@pytest.mark.parametrize("status, error_type", [
    (401, AuthGitLabError), (403, AuthGitLabError), (404, NotFoundGitLabError),
    (422, RejectedGitLabError), (500, TransientGitLabError), (502, TransientGitLabError),
    (503, TransientGitLabError), (504, TransientGitLabError),
])
def test_status_codes_map_to_our_errors_without_retrying(mocked, client, status, error_type):
    mocked.get(f"{API}/projects/12", status=status, json={"message": f"{status} trouble"})

    with pytest.raises(error_type) as err:
        client.get_project(12)
    assert err.value.status_code == status
    assert str(err.value) == f"get project: {status} trouble"
    assert len(mocked.calls) == 1  # one retry layer: 5xx go back to the caller's queue


NGINX_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center>"
             "<h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
             "</html>\r\n")


@pytest.mark.parametrize("page, said", [
    (NGINX_502, "502 Bad Gateway"),
    ("<!DOCTYPE html><html><body><p>Service &amp; more</p></body></html>",
     "HTTP 502, an HTML page"),
    ("<!doctype html><title>We&#39;ll be back soon</title>", "We'll be back soon"),
])
def test_a_proxys_html_error_page_is_named_by_its_title_not_its_markup(
        mocked, client, page, said):
    """Before, a run's reason read `get project: <html> <head><title>502 Bad Gateway</title>…`."""
    mocked.get(f"{API}/projects/12", status=502, body=page, content_type="text/html")

    with pytest.raises(TransientGitLabError) as err:
        client.get_project(12)
    assert str(err.value) == f"get project: {said}"


def test_error_messages_never_carry_the_token(mocked, client):
    mocked.get(f"{API}/projects/12", status=401,
               json={"message": f"401 Unauthorized: token {TOKEN} is revoked"})

    with pytest.raises(AuthGitLabError) as err:
        client.get_project(12)
    assert TOKEN not in str(err.value)
    assert "[REDACTED]" in str(err.value)


def test_duplicate_merge_request_409_is_rejected_not_transient(mocked, client):
    mocked.post(f"{API}/projects/12/merge_requests", status=409, json={
        "message": ["Another open merge request already exists for this source branch: !4"]})

    with pytest.raises(RejectedGitLabError, match="already exists"):
        client.open_merge_request(12, "submission", "main", "Submit week 1")


@pytest.mark.parametrize("failure", [requests.exceptions.ConnectTimeout("slow"),
                                     requests.exceptions.ReadTimeout("slow"),
                                     requests.exceptions.ConnectionError("refused")])
def test_network_failures_are_transient(mocked, client, failure):
    mocked.get(f"{API}/projects/12", body=failure)

    with pytest.raises(TransientGitLabError) as err:
        client.get_project(12)
    assert err.value.status_code is None
    assert len(mocked.calls) == 1


def test_an_answer_of_the_wrong_shape_is_a_gitlab_error(mocked, client):
    mocked.get(f"{API}/projects/12", json={"id": 12})

    with pytest.raises(GitLabError, match="unexpected answer from GitLab for Project"):
        client.get_project(12)


# Merge request notes


def test_upsert_finds_our_note_on_page_two_ignoring_others_with_the_marker(mocked, client):
    page2 = f"{NOTES_URL}?page=2&per_page=100&sort=asc&order_by=created_at"
    mocked.get(NOTES_URL, match=[matchers.query_param_matcher(
        {"sort": "asc", "order_by": "created_at", "per_page": "100"})],
        json=[note(1, f"quoting: {MARKER}", STUDENT),
              note(2, f"{MARKER} system", BOT, system=True),
              note(3, "unrelated bot note", BOT)],
        headers={"Link": f'<{page2}>; rel="next"', "X-Page": "1", "X-Next-Page": "2"})
    mocked.get(NOTES_URL, match=[matchers.query_param_matcher(
        {"sort": "asc", "order_by": "created_at", "per_page": "100", "page": "2"})],
        json=[note(4, f"{MARKER}\nold results", BOT), note(5, f"{MARKER} later", BOT)],
        headers={"X-Page": "2", "X-Next-Page": ""})
    mocked.put(f"{NOTES_URL}/4", json=note(4, f"{MARKER}\nnew results", BOT))

    assert client.upsert_mr_note(12, 3, f"{MARKER}\nnew results", marker=MARKER) == 4
    assert sent_json(mocked.calls[2]) == {"body": f"{MARKER}\nnew results"}


def test_upsert_creates_a_note_when_none_is_ours(mocked, client):
    mocked.get(NOTES_URL, json=[note(1, MARKER, STUDENT), note(2, "hi", BOT)])
    mocked.post(NOTES_URL, status=201, json=note(8, f"{MARKER} body", BOT))

    assert client.upsert_mr_note(12, 3, f"{MARKER} body", marker=MARKER) == 8
    assert sent_json(mocked.calls[1]) == {"body": f"{MARKER} body"}


def test_upsert_matches_the_bot_username_case_insensitively(mocked, client):
    mocked.get(NOTES_URL, json=[note(6, f"{MARKER} old", {**BOT, "username": "GradeHook"})])
    mocked.put(f"{NOTES_URL}/6", json=note(6, f"{MARKER} new", BOT))

    assert client.upsert_mr_note(12, 3, f"{MARKER} new", marker=MARKER) == 6


def test_upsert_skips_the_update_when_the_body_is_unchanged(mocked, client):
    mocked.get(NOTES_URL, json=[note(6, f"{MARKER} same", BOT)])

    assert client.upsert_mr_note(12, 3, f"{MARKER} same", marker=MARKER) == 6
    assert len(mocked.calls) == 1


def test_upsert_posts_anew_when_our_note_vanished_before_the_update(mocked, client):
    mocked.get(NOTES_URL, json=[note(6, f"{MARKER} old", BOT)])
    mocked.put(f"{NOTES_URL}/6", status=404, json={"message": "404 Note Not Found"})
    mocked.post(NOTES_URL, status=201, json=note(9, f"{MARKER} new", BOT))

    assert client.upsert_mr_note(12, 3, f"{MARKER} new", marker=MARKER) == 9


def test_upsert_refuses_a_body_without_its_marker(mocked, client):
    with pytest.raises(RejectedGitLabError, match="marker"):
        client.upsert_mr_note(12, 3, "no marker here", marker=MARKER)
    assert len(mocked.calls) == 0


def test_upsert_looks_up_the_bot_once_when_not_configured(mocked, pauses):
    client = GitLabClient(GITLAB, TOKEN, timeout=5, sleep=pauses)
    mocked.get(f"{API}/user", json=BOT)
    mocked.get(NOTES_URL, json=[note(6, f"{MARKER} old", BOT)])
    mocked.put(f"{NOTES_URL}/6", json=note(6, f"{MARKER} new", BOT))

    assert client.upsert_mr_note(12, 3, f"{MARKER} new", marker=MARKER) == 6
    assert client.upsert_mr_note(12, 3, f"{MARKER} new", marker=MARKER) == 6
    assert [c.request.url for c in mocked.calls].count(f"{API}/user") == 1


# Merge requests, branches, projects, users


def test_find_open_merge_requests_filters_on_the_server(mocked, client):
    mocked.get(f"{API}/projects/12/merge_requests", match=[matchers.query_param_matcher(
        {"state": "opened", "source_branch": "submission", "target_branch": "main",
         "per_page": "100"})], json=[merge_request(3)])

    found = client.find_open_merge_requests(12, "submission", "main")

    assert found == [MergeRequest(
        iid=3, project_id=12, title="MR 3", state="opened", source_branch="submission",
        target_branch="main", source_project_id=12, target_project_id=12, sha=SHA,
        author_username="alice", web_url=f"{GITLAB}/course/alice/-/merge_requests/3",
        updated_at=dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone.utc))]


@pytest.mark.parametrize("find", [
    lambda client: client.find_open_merge_requests(12, "main"),
    lambda client: client.find_merge_requests(12, "main", "main", "merged"),
])
def test_merge_requests_from_a_branch_leave_out_a_forks_branch_of_that_name(mocked, client, find):
    """Before, a fork's merge request from its `main` was the project's own `main`'s: the
    project's results were commented into it, and a fork's merge request from a submission
    branch was taken (reused, reopened, or found merged) for the student's submission."""
    mocked.get(f"{API}/projects/12/merge_requests", json=[
        merge_request(4, "main", source_project_id=77), merge_request(3, "main")])

    assert [mr.iid for mr in find(client)] == [3]


def test_merge_requests_into_a_branch_since_a_time_follow_pages(mocked, client):
    since = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    query = {"state": "all", "target_branch": "submissions",
             "updated_after": "2026-03-01T09:30:00+00:00", "per_page": "100"}
    next_url = (f"{API}/projects/12/merge_requests?state=all&target_branch=submissions&"
                "updated_after=2026-03-01T09%3A30%3A00%2B00%3A00&page=2&per_page=100")
    mocked.get(f"{API}/projects/12/merge_requests",
               match=[matchers.query_param_matcher(query)],
               json=[merge_request(5, state="merged", merged_at="2026-03-01T11:00:00.000Z"),
                     merge_request(4, source_project_id=77)],
               headers={"Link": f'<{next_url}>; rel="next"'})
    mocked.get(f"{API}/projects/12/merge_requests",
               match=[matchers.query_param_matcher({**query, "page": "2"})],
               json=[merge_request(2, state="closed")])

    found = client.list_merge_requests_into(12, "submissions", updated_after=since)

    assert [(mr.iid, mr.state, mr.merged_at) for mr in found] == [
        (5, "merged", dt.datetime(2026, 3, 1, 11, tzinfo=dt.timezone.utc)), (2, "closed", None)]


def test_merge_requests_into_a_branch_refuse_a_naive_time(mocked, client):
    with pytest.raises(RejectedGitLabError, match="time zone"):
        client.list_merge_requests_into(12, "submissions", updated_after=dt.datetime(2026, 3, 1))


def test_merge_request_versions(mocked, client):
    # GitLab's documented answer (Merge requests API, "Get merge request diff versions").
    mocked.get(f"{API}/projects/12/merge_requests/3/versions",
               match=[matchers.query_param_matcher({"per_page": "100"})], json=[
                   {"id": 110, "head_commit_sha": "33e2ee8579fda5bc36accc9c6fbd0b4fefda9e30",
                    "base_commit_sha": "eeb57dffe83deb686a60a71c16c32f71046868fd",
                    "start_commit_sha": "eeb57dffe83deb686a60a71c16c32f71046868fd",
                    "created_at": "2016-07-26T14:44:48.926Z", "merge_request_id": 105,
                    "state": "collected", "real_size": "1",
                    "patch_id_sha": "d504412d5b6e6739647e752aff8e468dde093f2f"},
                   {"id": 108, "head_commit_sha": "3eed087b29835c48015768f839d76e5ea8f07a24",
                    "base_commit_sha": "eeb57dffe83deb686a60a71c16c32f71046868fd",
                    "start_commit_sha": "eeb57dffe83deb686a60a71c16c32f71046868fd",
                    "created_at": "2016-07-25T14:21:33.028Z", "merge_request_id": 105,
                    "state": "collected", "real_size": "1",
                    "patch_id_sha": "72c30d1f0115fc1d2bb0b29b24dc2982cbcdfd32"}])

    versions = client.merge_request_versions(12, 3)

    assert versions == [
        MergeRequestVersion(id=110, head_commit_sha="33e2ee8579fda5bc36accc9c6fbd0b4fefda9e30",
                            created_at=dt.datetime(2016, 7, 26, 14, 44, 48, 926000,
                                                   tzinfo=dt.timezone.utc)),
        MergeRequestVersion(id=108, head_commit_sha="3eed087b29835c48015768f839d76e5ea8f07a24",
                            created_at=dt.datetime(2016, 7, 25, 14, 21, 33, 28000,
                                                   tzinfo=dt.timezone.utc))]


def test_merge_request_versions_of_a_missing_merge_request(mocked, client):
    mocked.get(f"{API}/projects/12/merge_requests/3/versions", status=404,
               json={"message": "404 Not found"})

    with pytest.raises(NotFoundGitLabError, match="list merge request versions"):
        client.merge_request_versions(12, 3)


def test_get_merge_request(mocked, client):
    mocked.get(f"{API}/projects/12/merge_requests/3", json=merge_request(3, sha=None))

    assert client.get_merge_request(12, 3).sha is None


def test_get_merge_request_reads_where_its_changes_start(mocked, client):
    base = "c" * 40
    mocked.get(f"{API}/projects/12/merge_requests/3", json={
        **merge_request(3), "diff_refs": {"base_sha": base, "head_sha": "d" * 40,
                                          "start_sha": "e" * 40}})

    assert client.get_merge_request(12, 3).base_sha == base


def test_open_merge_request_sends_the_fields(mocked, client):
    mocked.post(f"{API}/projects/12/merge_requests", status=201, json=merge_request(6))

    created = client.open_merge_request(12, "submission", "main", "Submit week 1", "Please")

    assert created.iid == 6
    assert sent_json(mocked.calls[0]) == {"source_branch": "submission",
                                          "target_branch": "main", "title": "Submit week 1",
                                          "description": "Please"}


def test_branches_by_encoded_name_list_and_create(mocked, client):
    mocked.get(f"{API}/projects/12/repository/branches/feature%2Fweek1",
               json=branch("feature/week1"))
    mocked.get(f"{API}/projects/12/repository/branches", json=[branch("main"), branch("x")])
    mocked.post(f"{API}/projects/12/repository/branches", status=201,
                json=branch("submission"))

    assert client.get_branch(12, "feature/week1") == Branch("feature/week1", SHA, False, False)
    assert [b.name for b in client.list_branches(12)] == ["main", "x"]
    assert client.create_branch(12, "submission", "main").name == "submission"
    assert sent_json(mocked.calls[2]) == {"branch": "submission", "ref": "main"}


def test_missing_branch_is_not_found(mocked, client):
    mocked.get(f"{API}/projects/12/repository/branches/gone", status=404,
               json={"message": "404 Branch Not Found"})

    with pytest.raises(NotFoundGitLabError, match="404 Branch Not Found"):
        client.get_branch(12, "gone")


def test_get_project_by_path_is_url_encoded(mocked, client):
    mocked.get(f"{API}/projects/course%2Fstudents%2Falice",
               json={"id": 12, "path_with_namespace": "course/students/alice",
                     "default_branch": "main", "web_url": f"{GITLAB}/course/students/alice"})

    assert client.get_project("course/students/alice") == Project(
        12, "course/students/alice", "main", f"{GITLAB}/course/students/alice")


@pytest.mark.parametrize("answer, expected", [
    ((200, {"id": 7, "username": "alice", "access_level": 30}), True),
    ((200, {"id": 7, "username": "alice", "access_level": 40}), True),
    ((200, {"id": 7, "username": "alice", "access_level": 20}), False),
    ((404, {"message": "404 Not found"}), False),
])
def test_is_project_member_reads_members_all(mocked, client, answer, expected):
    status, body = answer
    mocked.get(f"{API}/projects/12/members/all/7", status=status, json=body)

    assert client.is_project_member(12, 7) is expected


def test_user_projects_lists_memberships_at_a_role(mocked, client):
    mocked.get(f"{API}/projects", match=[matchers.query_param_matcher(
        {"membership": "True", "simple": "True", "min_access_level": "30",
         "per_page": "100"})],
        json=[{"id": 12, "path_with_namespace": "course/alice", "default_branch": None,
               "web_url": None}])

    assert client.user_projects(min_access_level=30) == [
        Project(12, "course/alice", None, None)]


def test_with_token_acts_as_another_user(mocked, client):
    mocked.get(f"{API}/user", match=[matchers.header_matcher({"PRIVATE-TOKEN": "glpat-alice"})],
               json=STUDENT)

    assert client.with_token("glpat-alice").current_user().username == "alice"


def test_repr_does_not_show_the_token(client):
    assert TOKEN not in repr(client)
