"""A push to the running service ends in commit statuses and one merge request comment."""

from __future__ import annotations

import pytest

from pipeline.ledger.models import TestRun
from tests.e2e.scenario import ASSIGNMENT, running_service, solution

pytestmark = pytest.mark.slow
FINAL = {"success", "failed"}
GREETING_ROW = ("| ❌ | ` greeting ` (Greeting) | ` length 5: 'hello' ` | ` length 2: 'hi' ` "
                "| ` incorrect length ` |")


def test_push_ends_in_statuses_and_one_comment_updated_in_place(
        tmp_path, service_settings, git_server):
    with running_service(tmp_path, service_settings, git_server) as service:
        gitlab, pid = service.gitlab, service.project_id
        draft = service.git.commit("prog1-2026/students/alice", {"notes.txt": "draft\n"},
                                   branch="work")
        gitlab.set_branch(pid, "work", draft)
        mr = gitlab.add_merge_request(pid, "work", "main", title="Week 1")

        first_sha, answer = service.push("work", solution("hi", 3), key="push-1")
        run_id, = answer["runs"]
        assert gitlab.wait_for(lambda: FINAL & set(service.states(first_sha)), timeout=90)
        assert service.states(first_sha) == ["pending", "running", "failed"]
        jobs = gitlab.commit_statuses(pid, first_sha)
        assert len(jobs) == 1
        job = jobs[0]
        assert (job["name"], job["ref"], job["status"]) == \
            (f"gradehook/{ASSIGNMENT}", "work", "failed")
        assert job["description"] == "Score 0% (0 of 1 collection passed, 1/2 tests passed)"
        assert job["coverage"] == 0.0
        assert job["target_url"] == f"http://127.0.0.1:{service.port}/results/{run_id}"
        assert gitlab.wait_for(lambda: len(gitlab.notes(pid, mr["iid"])) == 1, timeout=30)
        note, = gitlab.notes(pid, mr["iid"])
        assert note["body"].startswith("<!-- gradehook:")
        assert GREETING_ROW in note["body"]
        assert "[Full report](http://127.0.0.1:" in note["body"]

        second_sha, answer = service.push("work", solution("hello", 3), key="push-2")
        assert gitlab.wait_for(lambda: FINAL & set(service.states(second_sha)), timeout=90)
        assert service.states(second_sha) == ["pending", "running", "success"]
        assert gitlab.commit_statuses(pid, second_sha)[0]["description"] == \
            "Score 100% (1 of 1 collection passed, 2/2 tests passed)"

        def comment_updated():
            notes = gitlab.notes(pid, mr["iid"])
            return len(notes) == 1 and notes[0]["body"] != note["body"] and notes[0]
        assert gitlab.wait_for(comment_updated, timeout=30)
        updated, = gitlab.notes(pid, mr["iid"])
        assert updated["id"] == note["id"]
        assert "2/2" in updated["body"]
        with service.resources.sessions() as session:
            first = session.get(TestRun, run_id)
            assert (first.reported_status, first.reported_at is not None) == ("failed", True)


def test_a_merge_request_opened_after_its_commit_was_graded_gets_the_comment(
        tmp_path, service_settings, git_server):
    with running_service(tmp_path, service_settings, git_server) as service:
        gitlab, pid = service.gitlab, service.project_id
        sha, answer = service.push("work", solution("hi", 3), key="push-1")
        run_id, = answer["runs"]
        assert gitlab.wait_for(lambda: FINAL & set(service.states(sha)), timeout=90)
        # The worker looked for open merge requests of the branch after the final status, and
        # found none: only then is the merge request opened.
        assert gitlab.wait_for(lambda: gitlab.requests_to(
            "GET", rf"/projects/{pid}/merge_requests$"), timeout=30)

        mr, answer = service.open_merge_request("work", "main", key="mr-open")
        # The head commit is graded already: no new run, and the result goes to the comment.
        assert (answer["runs"], answer["existing_runs"]) == ([], [run_id])
        assert gitlab.wait_for(lambda: len(gitlab.notes(pid, mr["iid"])) == 1, timeout=30)
        note, = gitlab.notes(pid, mr["iid"])
        assert GREETING_ROW in note["body"]
        assert service.states(sha) == ["pending", "running", "failed"]
