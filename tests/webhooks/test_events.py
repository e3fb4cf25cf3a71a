"""parse_delivery on the GitLab fixtures and on malformed or hostile deliveries."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from tests.webhooks.deliveries import (body_of, event_header_for, fixture_names, headers_for,
                                       parse_fixture, payload_of)
from webhooks.events import DeliveryError, Event, MergeRequest, Note, parse_delivery

MR3_HEAD = "0c14c6b2019d0329b451bb2634462926a5687afe"
ZERO = "0" * 40


def parse_payload(stem: str, payload: object, **extra_headers: str) -> Event:
    """Parse an edited fixture payload under the fixture's headers."""
    return parse_delivery(headers_for(stem, **extra_headers), json.dumps(payload).encode())


def refused(stem: str, payload: object) -> DeliveryError:
    """Return the DeliveryError that an edited fixture payload is refused with."""
    with pytest.raises(DeliveryError) as caught:
        parse_payload(stem, payload)
    return caught.value


def test_event_header_is_derived_from_the_fixture_name():
    assert event_header_for("push_hook__docs_example") == "Push Hook"
    assert event_header_for("tag_push_hook__create") == "Tag Push Hook"
    assert event_header_for("merge_request_hook__close") == "Merge Request Hook"
    assert event_header_for("note_hook__on_commit") == "Note Hook"


@pytest.mark.parametrize("stem", fixture_names())
def test_every_fixture_parses_into_the_kind_its_header_names(stem):
    expected = {"Push Hook": "push", "Tag Push Hook": "tag_push",
                "Merge Request Hook": "merge_request", "Note Hook": "note"}
    event = parse_fixture(stem)
    assert event.kind == expected[event_header_for(stem)]
    assert event.event_header == event_header_for(stem)


def test_docs_push_example_with_idempotency_key():
    key = "3a427872-00df-429c-9bc9-a9475de2efe4"
    event = parse_fixture("push_hook__docs_example", **{"Idempotency-Key": key})
    assert event == Event(
        kind="push", event_header="Push Hook", delivery_key=f"gitlab:{key}",
        project_id=15, project_path="mike/diaspora", default_branch="master",
        ref="refs/heads/master", branch="master",
        before="95790bf891e76fee5e1747ab589903a6a1f80f22",
        after="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        checkout_sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        user_id=4, user_username="jsmith",
        # Two commits listed of four: the list is incomplete, so no changed paths.
        changed_paths=None,
        commit_ids=("b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327",
                    "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"))


def test_complete_push_lists_added_modified_and_removed_paths():
    event = parse_fixture("push_hook__assignment_commits")
    assert event.changed_paths == {"README.md", "week1/assignment1/solution.py",
                                   "week2/assignment1/main.py", "week2/assignment1/old.py"}
    assert event.delivery_key == ("payload:push:42:refs/heads/main:"
                                  "b9f85daa6f83cf02ce5c31913d1f64d3f5c8fade")


def test_push_of_more_than_twenty_commits_has_unknown_changed_paths():
    event = parse_fixture("push_hook__more_than_20_commits")
    assert event.changed_paths is None
    assert len(event.commit_ids) == 20


def test_a_commit_without_its_file_lists_makes_changed_paths_unknown():
    payload = payload_of("push_hook__assignment_commits")
    del payload["commits"][1]["removed"]
    assert parse_payload("push_hook__assignment_commits", payload).changed_paths is None


def test_branch_deletion_keeps_zero_after_and_null_checkout_sha():
    event = parse_fixture("push_hook__branch_deletion")
    assert (event.after, event.checkout_sha, event.branch) == (ZERO, None, "week2-draft")
    assert event.changed_paths == frozenset()


def test_tag_push_has_a_ref_but_no_branch():
    event = parse_fixture("tag_push_hook__create")
    assert (event.kind, event.ref, event.branch) == ("tag_push", "refs/tags/v1.0.0", None)
    assert event.checkout_sha == "b9f85daa6f83cf02ce5c31913d1f64d3f5c8fade"


def test_docs_merge_request_example():
    event = parse_fixture("merge_request_hook__open_docs_example")
    assert (event.kind, event.action, event.project_id, event.project_path) == (
        "merge_request", "open", 1, "gitlabhq/gitlab-test")
    assert (event.user_id, event.user_username) == (1, "root")
    assert event.merge_request == MergeRequest(
        iid=1, source_branch="ms-viewport", target_branch="master",
        last_commit_sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7", source_project_id=14,
        target_project_id=14, state="opened", oldrev=None,
        url="http://example.com/diaspora/merge_requests/1", updated_at="2013-12-03T17:23:34Z")
    assert event.changes_present is True
    assert event.delivery_key == ("payload:merge_request:1:1:"
                                  "da1560886d4f094c3e6c9ef40349f7d38b5d27d7:open:"
                                  "2013-12-03T17:23:34Z")


def test_merge_request_update_carries_oldrev_only_when_code_changed():
    with_code = parse_fixture("merge_request_hook__update_with_oldrev")
    without = parse_fixture("merge_request_hook__update_without_oldrev")
    assert with_code.merge_request.oldrev == "0e1a07a7a20f75d7616884a3d938b31eba2283f7"
    assert without.merge_request.oldrev is None


def test_note_on_a_merge_request():
    event = parse_fixture("note_hook__retest_command")
    assert (event.kind, event.action, event.user_id, event.user_username) == (
        "note", "create", 101, "alice")
    assert event.note == Note(id=5001, text="  /retest\n", noteable_type="MergeRequest",
                              merge_request=MergeRequest(
                                  iid=3, source_branch="week2-draft", target_branch="main",
                                  last_commit_sha=MR3_HEAD, source_project_id=42,
                                  target_project_id=42, state="opened", oldrev=None,
                                  url=None, updated_at="2013-12-03T17:23:34Z"))
    assert event.delivery_key == "payload:note:42:5001"


def test_note_on_a_commit_has_no_merge_request():
    event = parse_fixture("note_hook__on_commit")
    assert (event.note.noteable_type, event.note.merge_request) == ("Commit", None)


def test_webhook_id_wins_over_idempotency_key():
    event = parse_fixture("push_hook__docs_example",
                          **{"webhook-id": "msg_2", "Idempotency-Key": "other"})
    assert event.delivery_key == "gitlab:msg_2"


def test_header_names_are_case_insensitive():
    headers = {"content-type": "Application/JSON; charset=utf-8",
               "x-gitlab-event": "Note Hook", "IDEMPOTENCY-KEY": "k-1"}
    event = parse_delivery(headers, body_of("note_hook__other_text"))
    assert (event.kind, event.delivery_key) == ("note", "gitlab:k-1")


def test_other_event_kinds_keep_the_raw_header_and_a_body_key():
    body = b'{"object_kind": "pipeline"}'
    event = parse_delivery({"Content-Type": "application/json",
                            "X-Gitlab-Event": "Pipeline Hook"}, body)
    assert event == Event(kind="other", event_header="Pipeline Hook",
                          delivery_key="body-sha256:" + hashlib.sha256(body).hexdigest())


@pytest.mark.parametrize("stem", ["push_hook__assignment_commits", "tag_push_hook__create",
                                  "merge_request_hook__update_with_oldrev"])
def test_a_system_hook_delivering_a_project_event_is_read_as_that_event(stem):
    # An instance's system hook (the one hook for every project on GitLab without group
    # hooks) sends pushes, tag pushes and merge requests with their webhook bodies.
    event = parse_delivery(headers_for(stem, **{"X-Gitlab-Event": "System Hook"}),
                           body_of(stem))
    assert dataclasses.replace(event, event_header=event_header_for(stem)) == parse_fixture(stem)
    assert event.event_header == "System Hook"


@pytest.mark.parametrize("body", [b'{"event_name": "repository_update"}',
                                  b'{"object_kind": "note"}', b'{"object_kind": 7}'])
def test_a_system_hook_delivering_anything_else_is_another_kind(body):
    event = parse_delivery({"Content-Type": "application/json",
                            "X-Gitlab-Event": "System Hook"}, body)
    assert event.kind == "other"


def test_sixty_four_character_shas_are_accepted_and_lowercased():
    payload = payload_of("push_hook__assignment_commits")
    payload["after"] = payload["checkout_sha"] = "AB" * 32
    event = parse_payload("push_hook__assignment_commits", payload)
    assert event.after == event.checkout_sha == "ab" * 32


def test_a_derived_key_over_255_characters_is_hashed():
    payload = payload_of("push_hook__assignment_commits")
    payload["ref"] = "refs/heads/" + "b" * 240
    key = parse_payload("push_hook__assignment_commits", payload).delivery_key
    assert key.startswith("payload:push:sha256:") and len(key) == len("payload:push:sha256:") + 64


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/jsonp",
                                          "application/x-www-form-urlencoded", ""])
def test_non_json_content_type_is_415(content_type):
    headers = headers_for("push_hook__docs_example")
    del headers["Content-Type"]
    if content_type is not None:
        headers["Content-Type"] = content_type
    with pytest.raises(DeliveryError) as caught:
        parse_delivery(headers, body_of("push_hook__docs_example"))
    assert (caught.value.status, caught.value.field) == (415, "Content-Type")


@pytest.mark.parametrize("body, reason", [
    (b"{", "body is not valid JSON"),
    (b"\xff\xfe{}", "body is not UTF-8"),
    (b"[1, 2]", "body must be a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "body is not valid JSON"),
])
def test_malformed_bodies_are_400(body, reason):
    with pytest.raises(DeliveryError) as caught:
        parse_delivery(headers_for("push_hook__docs_example"), body)
    assert (caught.value.status, caught.value.reason) == (400, reason)


def test_missing_event_header_is_400():
    with pytest.raises(DeliveryError) as caught:
        parse_delivery({"Content-Type": "application/json"}, b"{}")
    assert (caught.value.status, caught.value.field) == (400, "X-Gitlab-Event")


def test_object_kind_must_match_the_header():
    payload = payload_of("push_hook__docs_example")
    payload["object_kind"] = "merge_request"
    error = refused("push_hook__docs_example", payload)
    assert (error.status, error.field) == (400, "object_kind")


@pytest.mark.parametrize("stem, path, reason", [
    ("merge_request_hook__reopen", "object_attributes.iid", "object_attributes.iid is missing"),
    ("merge_request_hook__reopen", "object_attributes.last_commit.id",
     "object_attributes.last_commit.id is missing"),
    ("note_hook__retest_command", "merge_request.source_branch",
     "merge_request.source_branch is missing"),
    ("push_hook__docs_example", "project.path_with_namespace",
     "project.path_with_namespace is missing"),
    ("push_hook__docs_example", "total_commits_count", "total_commits_count is missing"),
])
def test_a_missing_field_is_named(stem, path, reason):
    payload = payload_of(stem)
    *parents, name = path.split(".")
    container = payload
    for parent in parents:
        container = container[parent]
    del container[name]
    error = refused(stem, payload)
    assert (error.status, error.field, error.reason) == (400, path, reason)


@pytest.mark.parametrize("stem, edit, path, reason", [
    ("merge_request_hook__reopen", lambda p: p["object_attributes"].update(iid="3"),
     "object_attributes.iid", "object_attributes.iid must be an integer"),
    ("push_hook__docs_example", lambda p: p["project"].update(id=True),
     "project.id", "project.id must be an integer"),
    ("push_hook__docs_example", lambda p: p.update(commits={}),
     "commits", "commits must be a list"),
    ("push_hook__docs_example", lambda p: p.update(commits=[1]),
     "commits[0]", "commits[0] must be an object"),
    ("push_hook__assignment_commits", lambda p: p["commits"][1].update(added=[3]),
     "commits[1].added", "commits[1].added must be a list of strings"),
    ("note_hook__other_text", lambda p: p.update(user=[]),
     "user", "user must be an object"),
])
def test_a_mistyped_field_is_named(stem, edit, path, reason):
    payload = payload_of(stem)
    edit(payload)
    error = refused(stem, payload)
    assert (error.status, error.field, error.reason) == (400, path, reason)


@pytest.mark.parametrize("sha", ["da1560886d", "g" * 40, "a" * 41, "a" * 40 + "\n",
                                 "--upload-pack=touch /tmp/x", "٣" * 40])
def test_bad_shas_are_refused(sha):
    payload = payload_of("push_hook__docs_example")
    payload["after"] = sha
    error = refused("push_hook__docs_example", payload)
    assert (error.status, error.field) == (400, "after")


@pytest.mark.parametrize("ref", [
    "refs/heads/--upload-pack=touch /tmp/x", "refs/heads/-x", "refs/heads/../../etc/passwd",
    "refs/heads/a..b", "refs/heads/main\x00", "refs/heads/ma\u202ein", "refs/heads/a\u200bb",
    "refs/heads/a b", "refs/heads/a~1", "refs/heads/a^", "refs/heads/a:b", "refs/heads/a\\b",
    "refs/heads/.hidden", "refs/heads/x.lock", "refs/heads/x/", "refs/heads//x",
    "refs/heads/a@{1}", "refs/heads/" + "x" * 245, "heads/main", "--upload-pack=x",
    "refs/heads/\ud800",
])
def test_dangerous_refs_are_refused(ref):
    payload = payload_of("push_hook__docs_example")
    payload["ref"] = ref
    error = refused("push_hook__docs_example", payload)
    assert (error.status, error.field) == (400, "ref")


@pytest.mark.parametrize("field", ["source_branch", "target_branch"])
@pytest.mark.parametrize("branch", ["--upload-pack=x", "-b", "../main", "a\x7fb", "a\u2066b"])
def test_dangerous_merge_request_branches_are_refused(field, branch):
    payload = payload_of("merge_request_hook__reopen")
    payload["object_attributes"][field] = branch
    error = refused("merge_request_hook__reopen", payload)
    assert (error.status, error.field) == (400, f"object_attributes.{field}")


def test_unicode_branch_names_that_git_allows_are_kept():
    payload = payload_of("push_hook__assignment_commits")
    payload["ref"] = "refs/heads/übung-1/lösung"
    assert parse_payload("push_hook__assignment_commits", payload).branch == "übung-1/lösung"


@pytest.mark.parametrize("path", ["../etc", "group/../x", "-group/x", ".group/x", "group/x y",
                                  "group/x\x00", "grüppe/x", "group//x", "group/", ""])
def test_bad_project_paths_are_refused(path):
    payload = payload_of("push_hook__docs_example")
    payload["project"]["path_with_namespace"] = path
    error = refused("push_hook__docs_example", payload)
    assert (error.status, error.field) == (400, "project.path_with_namespace")


def test_a_bad_default_branch_is_refused():
    payload = payload_of("push_hook__docs_example")
    payload["project"]["default_branch"] = "--orphan"
    error = refused("push_hook__docs_example", payload)
    assert (error.status, error.field) == (400, "project.default_branch")


@pytest.mark.parametrize("header", ["webhook-id", "Idempotency-Key"])
@pytest.mark.parametrize("value", ["", "has space", "x" * 201, "ünïcode"])
def test_bad_delivery_id_headers_are_refused(header, value):
    with pytest.raises(DeliveryError) as caught:
        parse_fixture("push_hook__docs_example", **{header: value})
    assert (caught.value.status, caught.value.field) == (400, header)


@pytest.mark.parametrize("header", ["Push\x01Hook", "P" * 65, "Pûsh Hook"])
def test_an_unprintable_or_overlong_event_header_is_refused(header):
    with pytest.raises(DeliveryError) as caught:
        parse_delivery({"Content-Type": "application/json", "X-Gitlab-Event": header}, b"{}")
    assert (caught.value.status, caught.value.field) == (400, "X-Gitlab-Event")


def test_a_lone_surrogate_in_any_read_text_is_refused():
    body = body_of("note_hook__other_text").replace(
        b'"Can someone look at my loop?"', b'"loop \\ud800"')
    with pytest.raises(DeliveryError) as caught:
        parse_delivery(headers_for("note_hook__other_text"), body)
    assert (caught.value.status, caught.value.field) == (400, "object_attributes.note")


def test_a_lone_surrogate_in_a_changed_path_is_refused():
    payload = payload_of("push_hook__assignment_commits")
    payload["commits"][0]["added"] = ["week1/\ud800.py"]
    error = refused("push_hook__assignment_commits", payload)
    assert (error.status, error.field) == (400, "commits[0].added")


@pytest.mark.parametrize("action", ["Open", "open now", "x" * 65, ""])
def test_an_action_that_is_not_a_lowercase_word_is_refused(action):
    payload = payload_of("merge_request_hook__reopen")
    payload["object_attributes"]["action"] = action
    error = refused("merge_request_hook__reopen", payload)
    assert (error.status, error.field) == (400, "object_attributes.action")


@pytest.mark.parametrize("username", ["-alice", "al ice", "alice\n2026-01-01 forged", ""])
def test_a_username_gitlab_would_not_allow_is_refused(username):
    payload = payload_of("note_hook__other_text")
    payload["user"]["username"] = username
    error = refused("note_hook__other_text", payload)
    assert (error.status, error.field) == (400, "user.username")
