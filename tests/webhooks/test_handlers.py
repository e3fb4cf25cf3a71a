"""decide() on the GitLab fixtures: the exact job requests, cancellations, or reasons."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.config import CourseSettings, Settings
from tests.webhooks.deliveries import headers_for, parse_fixture, payload_of
from webhooks.events import Event, parse_delivery
from webhooks.handlers import merge_request, note, push
from webhooks.handlers.assignments import REASON_NO_ASSIGNMENTS
from webhooks.handlers.decisions import (STUDENT_TESTING, SUBMISSION_PROCESSING, CancelRuns,
                                         Context, Ignored, JobRequest, Jobs)
from webhooks.handlers.router import decide
from webhooks.handlers.routing import Router

W1 = "week1/assignment1"
W2 = "week2/assignment1"
ASSIGNMENTS = (W1, W2)
MR3_HEAD = "0c14c6b2019d0329b451bb2634462926a5687afe"
COURSE = CourseSettings(name="prog1", student_projects=("prog1-2026/students/", "mike/*",
                                                        "gitlabhq/gitlab-test"),
                        reference_project="prog1-2026/reference", submission_branch="submission")
SETTINGS = Settings(courses=(COURSE,))


def context_for(event: Event, assignments=ASSIGNMENTS, **overrides) -> Context:
    """Build the context a receiver would: the claiming course and its assignments."""
    return Context(course=SETTINGS.course_for(event.project_path or ""), assignments=assignments,
                   bot_username="gradehook", **overrides)


def decide_fixture(stem: str, **overrides):
    """Parse a fixture and decide on it."""
    event = parse_fixture(stem)
    return decide(event, context_for(event, **overrides))


def decide_payload(stem: str, payload: dict, **overrides):
    """Parse an edited fixture payload and decide on it."""
    event = parse_delivery(headers_for(stem), json.dumps(payload).encode())
    return decide(event, context_for(event, **overrides))


def mr3_request(assignment: str, **changes) -> JobRequest:
    """Return the request for merge request !3's head, as its fixtures should produce."""
    request = JobRequest(task=STUDENT_TESTING, assignment=assignment, commit_sha=MR3_HEAD,
                         ref="refs/heads/week2-draft", branch="week2-draft", base_branch="main",
                         needs_diff=True, merge_request_iid=3)
    return dataclasses.replace(request, **changes)


# Pushes

def test_push_grades_each_touched_assignment_at_the_new_head():
    after = "b9f85daa6f83cf02ce5c31913d1f64d3f5c8fade"
    before = "1405df66cbe219b0bf6355bc3d60361a8376b6b4"
    assert decide_fixture("push_hook__assignment_commits") == Jobs(tuple(
        JobRequest(task=STUDENT_TESTING, assignment=a, commit_sha=after, ref="refs/heads/main",
                   branch="main", before_sha=before, needs_diff=False, supersedes=True)
        for a in (W1, W2)))


def test_push_touching_one_assignment_grades_only_that_one():
    payload = payload_of("push_hook__assignment_commits")
    payload["commits"] = payload["commits"][:1]
    payload["total_commits_count"] = 1
    decision = decide_payload("push_hook__assignment_commits", payload)
    assert [r.assignment for r in decision.requests] == [W1]


def test_push_touching_no_assignment_is_ignored():
    assert decide_fixture("push_hook__outside_assignments") == \
        Ignored(push.REASON_NO_ASSIGNMENT_TOUCHED)


@pytest.mark.parametrize("path, touched", [
    ("week1/assignment1", True),
    ("week1/assignment1/deep/file.py", True),
    ("week1/assignment10/main.py", False),
    ("week1/assignment1.md", False),
    ("week1", False),
])
def test_a_path_is_in_an_assignment_when_equal_or_below_it(path, touched):
    payload = payload_of("push_hook__outside_assignments")
    payload["commits"][0]["modified"] = [path]
    decision = decide_payload("push_hook__outside_assignments", payload)
    expected = [W1] if touched else None
    assert ([r.assignment for r in decision.requests] if isinstance(decision, Jobs)
            else None) == expected


def test_assignment_directories_are_normalised():
    decision = decide_fixture("push_hook__assignment_commits",
                              assignments=("/week1/assignment1/", "week1/assignment1", ""))
    assert [r.assignment for r in decision.requests] == [W1]


def test_push_with_more_commits_than_listed_diffs_every_known_assignment():
    after = "cab834b005aaf7c03fb4c6f315f209543ccc88f0"
    before = "dd43186d84cb2a94322d06bb4aa6a95514dde3d7"
    assert decide_fixture("push_hook__more_than_20_commits") == Jobs(tuple(
        JobRequest(task=STUDENT_TESTING, assignment=a, commit_sha=after, ref="refs/heads/main",
                   branch="main", before_sha=before, needs_diff=True, supersedes=True)
        for a in (W1, W2)))


def test_docs_push_example_with_an_incomplete_list_diffs_every_known_assignment():
    decision = decide_fixture("push_hook__docs_example")
    assert decision == Jobs(tuple(
        JobRequest(task=STUDENT_TESTING, assignment=a,
                   commit_sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                   ref="refs/heads/master", branch="master",
                   before_sha="95790bf891e76fee5e1747ab589903a6a1f80f22", needs_diff=True,
                   supersedes=True)
        for a in (W1, W2)))


def test_push_moving_the_branch_without_new_commits_diffs_every_known_assignment():
    # A forced push back to an older commit lists no commits, yet the branch's files changed.
    payload = payload_of("push_hook__assignment_commits")
    payload.update(commits=[], total_commits_count=0)
    assert decide_payload("push_hook__assignment_commits", payload) == Jobs(tuple(
        JobRequest(task=STUDENT_TESTING, assignment=a, commit_sha=payload["after"],
                   ref="refs/heads/main", branch="main", before_sha=payload["before"],
                   needs_diff=True, supersedes=True)
        for a in (W1, W2)))


def test_new_branch_is_diffed_against_the_default_branch():
    assert decide_fixture("push_hook__new_branch") == Jobs(tuple(
        JobRequest(task=STUDENT_TESTING, assignment=a,
                   commit_sha="0e1a07a7a20f75d7616884a3d938b31eba2283f7",
                   ref="refs/heads/week2-draft", branch="week2-draft", before_sha=None,
                   base_branch="main", needs_diff=True, supersedes=True)
        for a in (W1, W2)))


def test_first_push_of_the_default_branch_has_no_base_to_diff_against():
    payload = payload_of("push_hook__new_branch")
    payload["ref"] = "refs/heads/main"
    decision = decide_payload("push_hook__new_branch", payload)
    assert [(r.assignment, r.base_branch, r.before_sha, r.needs_diff)
            for r in decision.requests] == [(W1, None, None, True), (W2, None, None, True)]


def test_branch_deletion_is_ignored():
    assert decide_fixture("push_hook__branch_deletion") == Ignored(push.REASON_BRANCH_DELETED)


def test_null_checkout_sha_alone_means_deletion():
    payload = payload_of("push_hook__assignment_commits")
    payload["checkout_sha"] = None
    assert decide_payload("push_hook__assignment_commits", payload) == \
        Ignored(push.REASON_BRANCH_DELETED)


def test_tag_push_is_ignored():
    assert decide_fixture("tag_push_hook__create") == Ignored(push.REASON_TAG_PUSH)


def test_push_hook_for_a_non_branch_ref_is_ignored():
    payload = payload_of("push_hook__assignment_commits")
    payload["ref"] = "refs/notes/commits"
    assert decide_payload("push_hook__assignment_commits", payload) == \
        Ignored(push.REASON_NOT_A_BRANCH)


def test_a_course_without_known_assignments_cannot_diff():
    assert decide_fixture("push_hook__new_branch", assignments=()) == \
        Ignored(REASON_NO_ASSIGNMENTS)


# Merge requests

def test_docs_merge_request_open_example_diffs_against_its_target():
    assert decide_fixture("merge_request_hook__open_docs_example") == Jobs(tuple(
        JobRequest(task=STUDENT_TESTING, assignment=a,
                   commit_sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                   ref="refs/heads/ms-viewport", branch="ms-viewport", base_branch="master",
                   needs_diff=True, merge_request_iid=1)
        for a in (W1, W2)))


@pytest.mark.parametrize("stem", ["merge_request_hook__update_with_oldrev",
                                  "merge_request_hook__reopen"])
def test_merge_request_with_new_code_or_reopened_grades_its_head(stem):
    assert decide_fixture(stem) == Jobs((mr3_request(W1), mr3_request(W2)))


def test_merge_request_update_without_oldrev_is_ignored():
    assert decide_fixture("merge_request_hook__update_without_oldrev") == \
        Ignored(merge_request.REASON_NO_CODE_CHANGE)


def test_merge_request_retargeted_onto_the_submission_branch_is_a_submission():
    # Editing the target branch sends no oldrev: the head is unchanged, what it is graded as not.
    payload = payload_of("merge_request_hook__update_without_oldrev")
    payload["object_attributes"]["target_branch"] = "submission"
    payload["changes"]["target_branch"] = {"previous": "main", "current": "submission"}
    decision = decide_payload("merge_request_hook__update_without_oldrev", payload)
    assert decision == Jobs((mr3_request(W1, task=SUBMISSION_PROCESSING, base_branch="submission"),
                             mr3_request(W2, task=SUBMISSION_PROCESSING, base_branch="submission")))


def test_a_closed_merge_request_retargeted_is_not_graded():
    """Before, editing a closed merge request's target onto the submission branch made a
    submission, which then failed as closed."""
    payload = payload_of("merge_request_hook__update_without_oldrev")
    payload["object_attributes"].update(target_branch="submission", state="closed")
    payload["changes"]["target_branch"] = {"previous": "main", "current": "submission"}
    decision = decide_payload("merge_request_hook__update_without_oldrev", payload)
    assert decision == Ignored(merge_request.REASON_NOT_OPEN)


def test_merge_request_close_cancels_its_queued_runs():
    assert decide_fixture("merge_request_hook__close") == Jobs(
        (), cancel=CancelRuns(merge_request_iid=3, reason=merge_request.REASON_CLOSED))


@pytest.mark.parametrize("stem, decision", [
    ("merge_request_hook__close",
     Jobs((), cancel=CancelRuns(merge_request_iid=3, reason=merge_request.REASON_CLOSED))),
    ("merge_request_hook__reopen", Ignored(merge_request.REASON_NO_HEAD_COMMIT)),
])
def test_a_merge_request_without_a_head_commit_is_closed_but_not_graded(stem, decision):
    """GitLab sends `last_commit: null` for a merge request with no diff head; before, that
    was a 400, and a close failed to cancel the merge request's queued runs."""
    payload = payload_of(stem)
    payload["object_attributes"]["last_commit"] = None
    assert decide_payload(stem, payload) == decision


def test_merge_request_into_the_submission_branch_is_a_submission():
    assert decide_fixture("merge_request_hook__open_into_submission_branch") == Jobs(tuple(
        JobRequest(task=SUBMISSION_PROCESSING, assignment=a,
                   commit_sha="fddbe9f11cbbd11b7684e360490f33609ff5e17e",
                   ref="refs/heads/main", branch="main", base_branch="submission",
                   needs_diff=True, merge_request_iid=4)
        for a in (W1, W2)))


def fork_payload(stem: str, attributes: str) -> dict:
    """Return a fixture payload whose merge request comes from another project (a fork)."""
    payload = payload_of(stem)
    payload[attributes]["source_project_id"] = 77
    payload[attributes]["source"]["path_with_namespace"] = "mallory/alice-fork"
    return payload


@pytest.mark.parametrize("stem", ["merge_request_hook__open_into_submission_branch",
                                  "merge_request_hook__update_with_oldrev",
                                  "merge_request_hook__reopen"])
def test_a_merge_request_from_a_fork_is_not_graded(stem):
    assert decide_payload(stem, fork_payload(stem, "object_attributes")) == \
        Ignored(merge_request.REASON_FROM_FORK)


@pytest.mark.parametrize("action", ["approved", "unapproved", "approval", "merge"])
def test_other_merge_request_actions_are_ignored(action):
    payload = payload_of("merge_request_hook__approved")
    payload["object_attributes"]["action"] = action
    assert decide_payload("merge_request_hook__approved", payload) == \
        Ignored(f"merge request action {action} does not grade")


# Notes

def test_retest_command_regrades_the_merge_request_head_for_its_author():
    assert decide_fixture("note_hook__retest_command") == Jobs(
        (mr3_request(W1, requested_by_user_id=101), mr3_request(W2, requested_by_user_id=101)))


def test_a_configured_command_replaces_retest():
    assert decide_fixture("note_hook__retest_command", retest_command="/grade") == \
        Ignored(note.REASON_NOT_A_COMMAND)
    payload = payload_of("note_hook__retest_command")
    payload["object_attributes"]["note"] = "/grade"
    decision = decide_payload("note_hook__retest_command", payload, retest_command="/grade")
    assert [r.requested_by_user_id for r in decision.requests] == [101, 101]


def test_the_bots_own_note_is_ignored():
    assert decide_fixture("note_hook__by_gradehook") == Ignored(note.REASON_BOT_NOTE)


def test_the_bot_writing_the_command_is_still_ignored_whatever_the_case():
    payload = payload_of("note_hook__by_gradehook")
    payload["object_attributes"]["note"] = "/retest"
    payload["user"]["username"] = "GradeHook"
    assert decide_payload("note_hook__by_gradehook", payload) == Ignored(note.REASON_BOT_NOTE)


def test_an_ordinary_comment_is_ignored():
    assert decide_fixture("note_hook__other_text") == Ignored(note.REASON_NOT_A_COMMAND)


def test_the_command_inside_other_text_is_not_a_command():
    payload = payload_of("note_hook__other_text")
    payload["object_attributes"]["note"] = "please /retest"
    assert decide_payload("note_hook__other_text", payload) == Ignored(note.REASON_NOT_A_COMMAND)


@pytest.mark.parametrize("text", [
    "/retest", "  /retest  ", "/Retest", "Fixed the empty list case.\n/retest",
    "/retest\nThanks!", "> the tests fail\n\n/retest", "```\nprint()\n```\n/retest",
    "~~~~\n/retest\n~~~~\n/retest", ">>>\nquoted\n>>>\n/retest",
    # GitLab skips only closed blocks: one left open hides nothing.
    "```\n/retest", "~~~\n/retest\n```\n", "````\n```\n/retest", ">>>\n/retest",
    "```\ncode\n```\n```\n/retest"])
def test_the_command_on_a_line_of_its_own_regrades(text):
    payload = payload_of("note_hook__retest_command")
    payload["object_attributes"]["note"] = text
    decision = decide_payload("note_hook__retest_command", payload)
    assert [r.requested_by_user_id for r in decision.requests] == [101, 101]


@pytest.mark.parametrize("text", [
    "/retests", "/retest please", "> /retest", "   > /retest", "    /retest", "\t/retest",
    "```\n/retest\n```", "```sh\n/retest\n``` \n", "~~~\n/retest\n```\n~~~",
    "````\n```\n/retest\n````", ">>>\n/retest\n>>>", "```\n> /retest",
    "Write `/retest` to grade again"])
def test_the_command_in_a_quote_code_or_sentence_is_not_a_command(text):
    payload = payload_of("note_hook__retest_command")
    payload["object_attributes"]["note"] = text
    assert decide_payload("note_hook__retest_command", payload) == \
        Ignored(note.REASON_NOT_A_COMMAND)


# GitLab keeps notes of up to 1,000,000 characters: fences left open by the thousand are read in
# time and without deep recursion.
@pytest.mark.timeout(20)
@pytest.mark.parametrize("fences", ["```sh\n", "~~~ x\n>>>>\n", ">>> see\n"])
def test_a_huge_note_of_fences_left_open_is_read_in_time(fences):
    payload = payload_of("note_hook__retest_command")
    payload["object_attributes"]["note"] = fences * (999_000 // len(fences)) + "/retest"
    decision = decide_payload("note_hook__retest_command", payload)
    assert [r.requested_by_user_id for r in decision.requests] == [101, 101]


def test_a_note_on_a_commit_is_ignored():
    assert decide_fixture("note_hook__on_commit") == Ignored(note.REASON_NOT_ON_MERGE_REQUEST)


def test_the_command_in_an_internal_note_regrades_like_any_note():
    # Internal notes on merge requests (GitLab 16.9+) arrive as Confidential Note Hooks.
    payload = payload_of("note_hook__retest_command")
    payload["event_type"] = "confidential_note"
    payload["object_attributes"]["internal"] = True
    event = parse_delivery(headers_for("note_hook__retest_command",
                                       **{"X-Gitlab-Event": "Confidential Note Hook"}),
                           json.dumps(payload).encode())
    assert decide(event, context_for(event)) == Jobs(
        (mr3_request(W1, requested_by_user_id=101), mr3_request(W2, requested_by_user_id=101)))


def test_the_command_on_a_merge_request_from_a_fork_is_not_graded():
    payload = fork_payload("note_hook__retest_command", "merge_request")
    assert decide_payload("note_hook__retest_command", payload) == \
        Ignored(merge_request.REASON_FROM_FORK)


def test_the_command_on_a_closed_merge_request_is_ignored():
    payload = payload_of("note_hook__retest_command")
    payload["merge_request"]["state"] = "closed"
    assert decide_payload("note_hook__retest_command", payload) == \
        Ignored(merge_request.REASON_NOT_OPEN)


def test_an_edited_note_is_ignored():
    payload = payload_of("note_hook__retest_command")
    payload["object_attributes"]["action"] = "update"
    assert decide_payload("note_hook__retest_command", payload) == \
        Ignored(note.REASON_NOTE_EDITED)


def test_a_note_without_action_from_older_gitlab_is_a_new_note():
    payload = payload_of("note_hook__retest_command")
    del payload["object_attributes"]["action"]
    decision = decide_payload("note_hook__retest_command", payload)
    assert decision == Jobs((mr3_request(W1, requested_by_user_id=101),
                             mr3_request(W2, requested_by_user_id=101)))


def test_the_command_on_a_submission_merge_request_reprocesses_the_submission():
    payload = payload_of("note_hook__retest_command")
    payload["merge_request"]["target_branch"] = "submission"
    decision = decide_payload("note_hook__retest_command", payload)
    assert {(r.task, r.base_branch) for r in decision.requests} == \
        {(SUBMISSION_PROCESSING, "submission")}


# Routing

def test_a_project_no_course_claims_is_ignored():
    payload = payload_of("push_hook__assignment_commits")
    payload["project"]["path_with_namespace"] = "someone/else"
    assert decide_payload("push_hook__assignment_commits", payload) == \
        Ignored("no course claims project someone/else")


def test_other_event_kinds_are_ignored():
    event = parse_delivery({"Content-Type": "application/json",
                            "X-Gitlab-Event": "Pipeline Hook"}, b"{}")
    assert decide(event, Context(course=COURSE, assignments=ASSIGNMENTS)) == \
        Ignored("Pipeline Hook events are not graded")


def test_a_router_refuses_two_handlers_for_one_route():
    with pytest.raises(ValueError):
        Router(push.router, push.router)


def test_an_exact_action_wins_over_the_catch_all():
    router = Router()
    router.register("note")(lambda event, context: Ignored("any"))
    router.register("note", "create")(lambda event, context: Ignored("create"))
    event = parse_fixture("note_hook__other_text")
    assert router.handler_for(event)(event, None) == Ignored("create")
    assert router.handler_for(dataclasses.replace(event, action="update"))(event, None) == \
        Ignored("any")
    assert router.handler_for(dataclasses.replace(event, kind="push")) is None
