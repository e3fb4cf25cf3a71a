"""GitLabClient against the local GitLab stand-in, and the stand-in's own GitLab behaviours."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import requests

from gitlab_client import (AuthGitLabError, BadgeChange, GitLabClient, NotFoundGitLabError,
                           RejectedGitLabError, TransientGitLabError, UnansweredGitLabError)
from tests.support import gitlab_standin as standin_support
from tests.support.gitlab_standin import (DEVELOPER, MAINTAINER, REPORTER, FaultPlan,
                                          GitLabStandIn)

MAIN_SHA = "1" * 40
WORK_SHA = "2" * 40
MARKER = "<!-- gradehook:mr -->"
START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
gitlab_standin = standin_support.gitlab_standin  # the ready-made fixture, used as others would


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gitlab(clock):
    with GitLabStandIn(clock=clock) as standin:
        yield standin


@pytest.fixture
def student(gitlab):
    return gitlab.add_user("alice")


@pytest.fixture
def project(gitlab, student):
    return gitlab.add_project("course/alice",
                              branches={"main": MAIN_SHA, "submission": WORK_SHA},
                              members={student.id: DEVELOPER})


@pytest.fixture
def client(gitlab):
    with GitLabClient(gitlab.url, gitlab.bot.token, timeout=5, bot_username="gradehook",
                      max_rate_limit_retries=3, sleep=lambda seconds: None) as made:
        yield made


def status(client, project, state, name="gradehook/week1", ref="main"):
    return client.set_commit_status(project["id"], MAIN_SHA, state=state, ref=ref, name=name,
                                    description=f"now {state}")


# Commit statuses and their transition rules (spec/gitlab.md §4)


def test_pending_running_success_updates_one_job(gitlab, client, project):
    assert [status(client, project, s) for s in ("pending", "running", "success")] == \
        [True, True, True]

    jobs = gitlab.commit_statuses(project["id"], MAIN_SHA, include_retried=True)
    assert [(j["name"], j["status"], j["description"]) for j in jobs] == \
        [("gradehook/week1", "success", "now success")]
    assert jobs[0]["author"]["username"] == "gradehook"


@pytest.mark.parametrize("state", ["pending", "running"])
def test_repeating_an_unfinished_state_is_a_no_op(gitlab, client, project, state):
    assert status(client, project, state) is True
    assert status(client, project, state) is False

    assert len(gitlab.commit_statuses(project["id"], MAIN_SHA, include_retried=True)) == 1
    rejected = gitlab.requests_to("POST", r"/statuses/")[-1]
    assert rejected.status == 400


def test_posting_after_a_final_state_creates_a_new_job_and_hides_the_old(
        gitlab, client, project):
    status(client, project, "failed")
    status(client, project, "running")
    status(client, project, "success")

    jobs = gitlab.commit_statuses(project["id"], MAIN_SHA, include_retried=True)
    assert [(j["status"], j["retried"]) for j in jobs] == [("failed", True), ("success", False)]
    assert jobs[0]["pipeline_id"] == jobs[1]["pipeline_id"]
    listed = requests.get(f"{gitlab.url}/api/v4/projects/{project['id']}/repository/commits/"
                          f"{MAIN_SHA}/statuses", headers={"PRIVATE-TOKEN": gitlab.bot.token},
                          timeout=5)
    assert [j["status"] for j in listed.json()] == ["success"]
    assert "X-Total" not in listed.headers  # the Commits API sends no totals


def test_statuses_with_other_names_or_refs_are_separate_jobs(gitlab, client, project):
    status(client, project, "running", name="gradehook/week1")
    status(client, project, "running", name="gradehook/week2")
    status(client, project, "running", name="gradehook/week1", ref="submission")

    jobs = gitlab.commit_statuses(project["id"], MAIN_SHA)
    assert sorted((j["name"], j["ref"]) for j in jobs) == [
        ("gradehook/week1", "main"), ("gradehook/week1", "submission"),
        ("gradehook/week2", "main")]


def test_running_cannot_go_back_to_pending(gitlab, client, project):
    status(client, project, "running")

    answer = requests.post(f"{gitlab.url}/api/v4/projects/{project['id']}/statuses/{MAIN_SHA}",
                           json={"state": "pending", "ref": "main", "name": "gradehook/week1"},
                           headers={"PRIVATE-TOKEN": gitlab.bot.token}, timeout=5)
    assert (answer.status_code, answer.json()) == (400, {
        "message": "Cannot transition status via :enqueue from :running (Reason(s): Status "
                   'cannot transition via "enqueue")'})
    assert status(client, project, "pending") is False
    assert [j["status"] for j in gitlab.commit_statuses(project["id"], MAIN_SHA)] == ["running"]


# Notes


def test_upsert_keeps_one_note_and_ignores_a_students_quote(gitlab, client, project, student):
    mr = gitlab.add_merge_request(project["id"], "submission", "main", author=student)
    gitlab.add_note(project["id"], mr["iid"], f"you wrote {MARKER}", student)

    first = client.upsert_mr_note(project["id"], mr["iid"], f"{MARKER}\nrun 1", marker=MARKER)
    second = client.upsert_mr_note(project["id"], mr["iid"], f"{MARKER}\nrun 2", marker=MARKER)

    assert first == second
    bodies = [(n["author"]["username"], n["body"]) for n in gitlab.notes(project["id"],
                                                                         mr["iid"])]
    assert bodies == [("alice", f"you wrote {MARKER}"), ("gradehook", f"{MARKER}\nrun 2")]


def test_upsert_follows_real_pagination_to_find_its_note(gitlab, client, project, student):
    mr = gitlab.add_merge_request(project["id"], "submission", "main", author=student)
    for number in range(130):
        gitlab.add_note(project["id"], mr["iid"], f"comment {number} {MARKER}", student)
    ours = gitlab.add_note(project["id"], mr["iid"], f"{MARKER}\nold", gitlab.bot)

    assert client.upsert_mr_note(project["id"], mr["iid"], f"{MARKER}\nnew",
                                 marker=MARKER) == ours["id"]
    pages = [r.query.get("page", ["1"])[0]
             for r in gitlab.requests_to("GET", r"/notes$")]
    assert pages == ["1", "2"]
    assert gitlab.notes(project["id"], mr["iid"])[-1]["body"] == f"{MARKER}\nnew"
    assert len(gitlab.notes(project["id"], mr["iid"])) == 131


# Merge requests, branches, projects, members


def test_merge_request_lifecycle_and_filters(gitlab, client, project, clock):
    gitlab.set_branch(project["id"], "week2", "3" * 40)
    opened = client.open_merge_request(project["id"], "submission", "main", "Week 1")
    clock.now = START + dt.timedelta(hours=1)
    later = client.open_merge_request(project["id"], "week2", "main", "Week 2")
    client.open_merge_request(project["id"], "week2", "submission", "Elsewhere")

    assert client.find_open_merge_requests(project["id"], "submission") == [opened]
    since = START + dt.timedelta(minutes=30)
    assert client.list_merge_requests_into(project["id"], "main", updated_after=since) == [later]
    clock.now = START + dt.timedelta(hours=2)
    gitlab.set_branch(project["id"], "submission", "4" * 40)  # a push touches its MR
    touched = client.list_merge_requests_into(
        project["id"], "main", updated_after=START + dt.timedelta(minutes=90))
    assert [(mr.iid, mr.sha) for mr in touched] == [(opened.iid, "4" * 40)]
    clock.now = START + dt.timedelta(hours=3)
    gitlab.set_merge_request_state(project["id"], later.iid, "merged")
    assert client.find_open_merge_requests(project["id"], "week2", "main") == []
    merged = client.get_merge_request(project["id"], later.iid)
    assert (merged.state, merged.merged_at) == ("merged", clock.now)
    assert [(mr.iid, mr.state) for mr in client.list_merge_requests_into(project["id"], "main")] \
        == [(later.iid, "merged"), (opened.iid, "opened")]


def test_merge_request_versions_name_each_head_and_when_gitlab_recorded_it(
        gitlab, client, project, clock):
    opened = client.open_merge_request(project["id"], "submission", "main", "Week 1")
    clock.now = START + dt.timedelta(minutes=20)
    gitlab.set_branch(project["id"], "submission", "4" * 40)
    gitlab.set_branch(project["id"], "submission", "4" * 40)  # no new head: no new version
    clock.now = START + dt.timedelta(minutes=40)
    gitlab.set_merge_request_state(project["id"], opened.iid, "closed")
    gitlab.set_branch(project["id"], "submission", "5" * 40)  # closed: no new version

    versions = client.merge_request_versions(project["id"], opened.iid)

    assert [(v.head_commit_sha, v.created_at) for v in versions] == [
        ("4" * 40, START + dt.timedelta(minutes=20)), (WORK_SHA, START)]
    assert versions[0].id > versions[1].id
    with pytest.raises(NotFoundGitLabError):
        client.merge_request_versions(project["id"], opened.iid + 1)


def test_a_forks_merge_request_is_listed_by_gitlab_and_left_out_by_the_client(
        gitlab, client, project, student):
    fork = gitlab.add_project("students/alice-fork", branches={"main": "6" * 40},
                              members={student.id: DEVELOPER})
    from_fork = gitlab.add_merge_request(project["id"], "main", "submission",
                                         source_project_id=fork["id"])
    own = gitlab.add_merge_request(project["id"], "main", "submission")

    answer = requests.get(f"{gitlab.url}/api/v4/projects/{project['id']}/merge_requests",
                          headers={"PRIVATE-TOKEN": gitlab.bot.token}, timeout=5).json()
    assert {(mr["iid"], mr["source_project_id"], mr["sha"]) for mr in answer} == {
        (from_fork["iid"], fork["id"], "6" * 40), (own["iid"], project["id"], MAIN_SHA)}
    assert [mr.iid for mr in client.list_merge_requests_into(project["id"], "submission")] == \
        [own["iid"]]


def test_a_second_open_merge_request_for_a_branch_is_rejected(client, project):
    client.open_merge_request(project["id"], "submission", "main", "Week 1")

    with pytest.raises(RejectedGitLabError, match="already exists"):
        client.open_merge_request(project["id"], "submission", "main", "Again")


def test_branches_create_get_list_and_errors(client, project):
    created = client.create_branch(project["id"], "feature/week1", "main")

    assert (created.name, created.commit_sha) == ("feature/week1", MAIN_SHA)
    assert client.get_branch(project["id"], "feature/week1") == created
    assert [b.name for b in client.list_branches(project["id"])] == [
        "feature/week1", "main", "submission"]
    with pytest.raises(RejectedGitLabError, match="Branch already exists"):
        client.create_branch(project["id"], "main", "submission")
    with pytest.raises(RejectedGitLabError, match="Invalid reference name: nowhere"):
        client.create_branch(project["id"], "other", "nowhere")
    with pytest.raises(NotFoundGitLabError):
        client.get_branch(project["id"], "missing")


def test_projects_are_visible_only_to_members(gitlab, client, project, student):
    other = gitlab.add_project("course/bob", branches={"main": MAIN_SHA})
    as_student = client.with_token(student.token)

    assert as_student.current_user().username == "alice"
    assert as_student.get_project("course/alice").id == project["id"]
    with pytest.raises(NotFoundGitLabError):
        as_student.get_project(other["id"])
    assert [p.path_with_namespace for p in as_student.user_projects()] == ["course/alice"]
    assert as_student.user_projects(min_access_level=40) == []
    assert client.is_project_member(project["id"], student.id) is True
    assert client.is_project_member(other["id"], student.id) is False
    gitlab.add_member(other["id"], student.id, REPORTER)
    assert client.is_project_member(other["id"], student.id) is False
    assert client.is_project_member(other["id"], student.id, min_access_level=REPORTER) is True


def test_a_reporter_may_not_post_statuses(gitlab, client, project):
    reporter = gitlab.add_user("ta")
    gitlab.add_member(project["id"], reporter.id, REPORTER)

    with pytest.raises(AuthGitLabError):
        status(client.with_token(reporter.token), project, "running")


def test_wrong_token_is_refused(gitlab, project):
    with GitLabClient(gitlab.url, "glpat-wrong", timeout=5) as stranger:
        with pytest.raises(AuthGitLabError) as err:
            stranger.get_project(project["id"])
    assert err.value.status_code == 401
    assert "glpat-wrong" not in str(err.value)


# Project badges (spec/gitlab.md §5)

BADGE = "gradehook score week1"
IMAGE = "https://grades.example.org/badges/{id}/week1.svg?ref=%{{default_branch}}&key=first"
LINK = "https://grades.example.org/results/latest/{id}/week1?ref=%{{default_branch}}&key=first"


def set_badge(client, project, image=IMAGE, link=LINK):
    return client.set_project_badge(project["id"], name=BADGE, link_url=link.format(**project),
                                    image_url=image.format(**project))


def test_a_badge_is_added_once_then_updated_in_place(gitlab, client, project):
    gitlab.add_badge(project["id"], name="coverage", link_url="https://x.example/",
                     image_url="https://x.example/c.svg")
    gitlab.add_badge(project["id"], name=BADGE, link_url="https://group.example/",
                     image_url="https://group.example/b.svg", kind="group")

    first = set_badge(client, project)
    again = set_badge(client, project)
    moved = set_badge(client, project, image=IMAGE.replace("first", "second"))

    assert (first, again, moved) == (BadgeChange.ADDED, BadgeChange.UNCHANGED,
                                     BadgeChange.UPDATED)
    ours = [b for b in gitlab.badges(project["id"]) if b["kind"] == "project"
            and b["name"] == BADGE]
    assert len(ours) == 1 and ours[0]["image_url"].endswith("key=second")
    assert ours[0]["rendered_image_url"] == \
        f"https://grades.example.org/badges/{project['id']}/week1.svg?ref=main&key=second"
    group = next(b for b in gitlab.badges(project["id"]) if b["kind"] == "group")
    assert group["link_url"] == "https://group.example/", "a group badge is not ours to change"
    assert len(gitlab.requests_to("POST", r"/badges$")) == 1
    assert len(gitlab.requests_to("PUT", r"/badges/\d+$")) == 1


def test_a_badge_removed_before_its_update_is_added_again(gitlab, client, project):
    set_badge(client, project)
    plan = gitlab.inject_faults(FaultPlan(status=None, every=1, limit=1, method="PUT",
                                          path_pattern=r"/badges/\d+$",
                                          hold=threading.Event()))
    outcome = []
    moving = threading.Thread(target=lambda: outcome.append(
        set_badge(client, project, link=LINK.replace("first", "second"))))
    moving.start()
    assert plan.arrived.wait(10)
    [badge] = gitlab.badges(project["id"])
    with gitlab.state.lock:
        gitlab.state.badges[project["id"]].clear()
    plan.hold.set()
    moving.join(10)

    assert outcome == [BadgeChange.ADDED]
    [again] = gitlab.badges(project["id"])
    assert again["id"] != badge["id"] and again["link_url"].endswith("key=second")


def test_only_a_maintainer_may_set_badges_and_urls_must_be_http(
        gitlab, client, project, student):
    with pytest.raises(AuthGitLabError):
        set_badge(client.with_token(student.token), project)
    gitlab.add_member(project["id"], student.id, MAINTAINER)
    assert set_badge(client.with_token(student.token), project) == BadgeChange.ADDED
    with pytest.raises(RejectedGitLabError) as error:
        set_badge(client, project, image="javascript:alert(1)")
    assert error.value.status_code == 400 and "image_url" in str(error.value)
    with pytest.raises(NotFoundGitLabError):
        client.set_project_badge(10**6, name=BADGE, link_url="https://a.example/",
                                 image_url="https://a.example/b.svg")


# Faults


def test_every_third_request_rate_limited_is_absorbed_by_the_client(gitlab, client, project):
    plan = gitlab.inject_faults(FaultPlan(status=429, every=3, retry_after=0))

    for state in ("pending", "running", "success"):
        status(client, project, state, name="gradehook/a")
        status(client, project, state, name="gradehook/b")
    mr = client.open_merge_request(project["id"], "submission", "main", "Week 1")
    client.upsert_mr_note(project["id"], mr.iid, f"{MARKER} hi", marker=MARKER)

    assert plan.injected >= 3
    answered = [r.status for r in gitlab.requests]
    assert answered.count(429) == plan.injected
    assert [j["status"] for j in gitlab.commit_statuses(project["id"], MAIN_SHA)] == \
        ["success", "success"]
    assert len(gitlab.notes(project["id"], mr.iid)) == 1


def test_server_errors_surface_as_transient_without_retry(gitlab, client, project):
    gitlab.inject_faults(FaultPlan(status=502, every=1, limit=1))

    with pytest.raises(TransientGitLabError) as err:
        client.get_project(project["id"])
    assert err.value.status_code == 502
    assert client.get_project(project["id"]).id == project["id"]
    assert [r.status for r in gitlab.requests] == [502, 200]


def test_status_409_from_the_server_is_retried_by_the_client(gitlab, client, project):
    gitlab.inject_faults(FaultPlan(status=409, every=1, limit=2, method="POST",
                                   path_pattern=r"/statuses/"))

    assert status(client, project, "running") is True
    assert [r.status for r in gitlab.requests_to("POST", "/statuses/")] == [409, 409, 201]


def test_a_slow_answer_times_out_as_transient(gitlab, project):
    gitlab.inject_faults(FaultPlan(status=None, delay_seconds=2.0, every=1, limit=1))

    # A second is long for a local answer even on a busy host, and short against the delay.
    with GitLabClient(gitlab.url, gitlab.bot.token, timeout=1.0) as impatient:
        # The request went out: GitLab may have carried it out, which callers need to know.
        with pytest.raises(UnansweredGitLabError, match="ReadTimeout"):
            impatient.get_project(project["id"])
        assert impatient.get_project(project["id"]).id == project["id"]


# Raw protocol details other engineers' tests rely on


def test_bearer_auth_pagination_headers_and_recording(gitlab, project, student):
    for number in range(5):
        gitlab.set_branch(project["id"], f"b{number}", MAIN_SHA)
    url = f"{gitlab.url}/api/v4/projects/course%2Falice/repository/branches"

    answer = requests.get(url, params={"per_page": 3, "page": 2},
                          headers={"Authorization": f"Bearer {student.token}"}, timeout=5)

    assert answer.status_code == 200
    assert [b["name"] for b in answer.json()] == ["b3", "b4", "main"]
    assert {k: answer.headers[k] for k in ("X-Page", "X-Per-Page", "X-Next-Page",
                                           "X-Prev-Page", "X-Total", "X-Total-Pages")} == {
        "X-Page": "2", "X-Per-Page": "3", "X-Next-Page": "3", "X-Prev-Page": "1",
        "X-Total": "7", "X-Total-Pages": "3"}
    assert answer.links["next"]["url"] == f"{url}?per_page=3&page=3"
    assert answer.links["last"]["url"] == f"{url}?per_page=3&page=3"
    recorded = gitlab.requests[-1]
    assert (recorded.method, recorded.path, recorded.username, recorded.status) == (
        "GET", "/api/v4/projects/course%2Falice/repository/branches", "alice", 200)


def test_unknown_paths_objects_and_missing_tokens(gitlab, project):
    api = f"{gitlab.url}/api/v4"
    auth = {"PRIVATE-TOKEN": gitlab.bot.token}

    assert requests.get(f"{api}/projects/{project['id']}", timeout=5).status_code == 401
    assert requests.get(f"{api}/projects/999", headers=auth, timeout=5).json() == {
        "message": "404 Project Not Found"}
    assert requests.get(f"{api}/nothing", headers=auth, timeout=5).status_code == 404
    missing = requests.post(f"{api}/projects/{project['id']}/statuses/{MAIN_SHA}",
                            headers=auth, json={}, timeout=5)
    assert (missing.status_code, missing.json()) == (400, {"error": "state is missing"})


def test_notes_can_be_deleted_by_their_author_only(gitlab, project, student):
    mr = gitlab.add_merge_request(project["id"], "submission", "main", author=student)
    note = gitlab.add_note(project["id"], mr["iid"], "bot words", gitlab.bot)
    url = (f"{gitlab.url}/api/v4/projects/{project['id']}/merge_requests/{mr['iid']}/notes/"
           f"{note['id']}")

    assert requests.put(url, json={"body": "edited"}, timeout=5,
                        headers={"PRIVATE-TOKEN": student.token}).status_code == 403
    assert requests.delete(url, timeout=5,
                           headers={"PRIVATE-TOKEN": student.token}).status_code == 403
    assert requests.delete(url, timeout=5,
                           headers={"PRIVATE-TOKEN": gitlab.bot.token}).status_code == 204
    assert gitlab.notes(project["id"], mr["iid"]) == []


def test_wait_for_sees_a_status_posted_from_another_thread(gitlab, client, project):
    poster = threading.Thread(target=status, args=(client, project, "running"))
    poster.start()

    assert gitlab.wait_for(lambda: len(gitlab.commit_statuses(project["id"], MAIN_SHA)) == 1,
                           timeout=10)
    poster.join(timeout=10)
    assert gitlab.wait_for(lambda: False, timeout=0.01) is False


def test_the_ready_made_fixture_serves(gitlab_standin):
    answer = requests.get(f"{gitlab_standin.url}/api/v4/user", timeout=5,
                          headers={"PRIVATE-TOKEN": gitlab_standin.bot.token})

    assert answer.json()["username"] == "gradehook"
