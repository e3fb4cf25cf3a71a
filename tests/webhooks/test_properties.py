"""Property-based checks: any input gives a typed error or a result; valid pushes round-trip."""

from __future__ import annotations

import dataclasses
import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import CourseSettings
from tests.webhooks.deliveries import event_header_for, fixture_names, payload_of
from webhooks.auth import AuthError, verify_delivery
from webhooks.events import DeliveryError, parse_delivery
from webhooks.handlers.decisions import Context, Ignored, Jobs
from webhooks.handlers.router import decide

HEADER_NAMES = ["Content-Type", "X-Gitlab-Event", "X-Gitlab-Token", "webhook-id",
                "webhook-timestamp", "webhook-signature", "Idempotency-Key", "WEBHOOK-ID"]
EVENT_HEADERS = ["Push Hook", "Tag Push Hook", "Merge Request Hook", "Note Hook",
                 "Pipeline Hook", "System Hook"]
COURSE = CourseSettings(name="c", student_projects=("*",), reference_project="c/ref")

odd_text = st.text(alphabet=st.characters(categories=("Cs", "Cc", "Cf")), max_size=4)
json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=20) | odd_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
header_values = st.text(max_size=40) | odd_text | st.sampled_from(
    ["application/json", "application/json; charset=utf-8", *EVENT_HEADERS, "v1,", "v1,AAAA",
     "1760000000", "whsec_AAAA"])
headers = st.dictionaries(st.sampled_from(HEADER_NAMES) | st.text(max_size=10), header_values,
                          max_size=8)


def strings_in(value):
    """Yield every string inside an event: its fields, nested records and collections."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from strings_in(getattr(value, field.name))
    elif isinstance(value, (tuple, frozenset)):
        for item in value:
            yield from strings_in(item)


def all_paths(value, prefix=()):
    """Yield the key path of every value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from all_paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from all_paths(inner, prefix + (index,))


def replaced(document, path, new_value):
    """Return the document with the value at path replaced."""
    if not path:
        return new_value
    container = document
    for key in path[:-1]:
        container = container[key]
    container[path[-1]] = new_value
    return document


@st.composite
def mutated_fixtures(draw):
    """Draw a fixture with a few of its values replaced by arbitrary JSON, and its headers."""
    stem = draw(st.sampled_from(fixture_names()))
    document = payload_of(stem)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = list(all_paths(document))
        document = replaced(document, draw(st.sampled_from(paths)), draw(json_values))
    return ({"Content-Type": "application/json", "X-Gitlab-Event": event_header_for(stem)},
            json.dumps(document).encode())


@settings(max_examples=300, deadline=None)
@given(headers, st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_deliveries_raise_only_delivery_errors(some_headers, body):
    try:
        parse_delivery(some_headers, body)
    except DeliveryError as error:
        assert error.status in (400, 415) and error.reason


@settings(max_examples=400, deadline=None)
@given(mutated_fixtures())
def test_mutated_fixtures_parse_or_fail_cleanly_and_decide_without_raising(delivery):
    try:
        event = parse_delivery(*delivery)
    except DeliveryError as error:
        assert error.status == 400 and error.reason
        return
    for text in strings_in(event):
        text.encode("utf-8")  # storable and loggable: no lone surrogates got through
    decision = decide(event, Context(course=COURSE, assignments=("a", "b/c"),
                                     bot_username="gradehook"))
    assert isinstance(decision, (Ignored, Jobs))


@settings(max_examples=300, deadline=None)
@given(headers, st.binary(max_size=100), st.text(max_size=20),
       st.text(max_size=20) | st.just("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
       st.booleans(), st.integers(min_value=0, max_value=10**6),
       st.floats(min_value=0, max_value=4e9))
def test_arbitrary_credentials_raise_only_auth_errors(some_headers, body, secret, signing,
                                                      require, tolerance, now):
    try:
        verify_delivery(some_headers, body, secret_token=secret, signing_token=signing,
                        require_signature=require, tolerance_seconds=tolerance, now=now)
    except AuthError as error:
        assert error.reason


sha1s = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
shas = sha1s | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
path_parts = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,11}", fullmatch=True)
branch_parts = st.text(alphabet=string.ascii_letters + string.digits + "_-äöü", min_size=1,
                       max_size=12).filter(lambda part: not part.startswith("-"))
file_paths = st.lists(st.text(min_size=1, max_size=30), max_size=4)


@st.composite
def push_payloads(draw):
    """Draw a valid-shaped Push Hook body."""
    commits = draw(st.lists(st.fixed_dictionaries({
        "id": shas, "message": st.text(max_size=20), "added": file_paths,
        "modified": file_paths, "removed": file_paths}), max_size=5))
    return {
        "object_kind": "push",
        "before": draw(shas), "after": draw(shas), "checkout_sha": draw(st.none() | shas),
        "ref": "refs/heads/" + "/".join(draw(st.lists(branch_parts, min_size=1, max_size=3))),
        "user_id": draw(st.integers(min_value=1, max_value=2**53)),
        "user_username": draw(st.from_regex(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,19}",
                                            fullmatch=True)),
        "project": {"id": draw(st.integers(min_value=1, max_value=2**53)),
                    "path_with_namespace": "/".join(draw(st.lists(path_parts, min_size=2,
                                                                  max_size=4))),
                    "default_branch": draw(st.none() | branch_parts)},
        "commits": commits,
        "total_commits_count": len(commits) + draw(st.sampled_from([0, 0, 1, 30])),
    }


@settings(max_examples=300, deadline=None)
@given(push_payloads(), st.none() | st.from_regex(r"[A-Za-z0-9-]{1,40}", fullmatch=True))
def test_valid_push_payloads_round_trip(payload, webhook_id):
    delivery_headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook"}
    if webhook_id is not None:
        delivery_headers["webhook-id"] = webhook_id
    event = parse_delivery(delivery_headers, json.dumps(payload).encode())
    commits = payload["commits"]
    complete = payload["total_commits_count"] == len(commits)
    assert (event.kind, event.project_id, event.project_path, event.default_branch) == (
        "push", payload["project"]["id"], payload["project"]["path_with_namespace"],
        payload["project"]["default_branch"])
    assert (event.ref, event.branch) == (payload["ref"], payload["ref"][len("refs/heads/"):])
    assert (event.before, event.after, event.checkout_sha) == (
        payload["before"], payload["after"], payload["checkout_sha"])
    assert (event.user_id, event.user_username) == (payload["user_id"],
                                                    payload["user_username"])
    assert event.commit_ids == tuple(c["id"] for c in commits)
    assert event.changed_paths == (
        {p for c in commits for p in c["added"] + c["modified"] + c["removed"]}
        if complete else None)
    if webhook_id is None:
        assert event.delivery_key == (f"payload:push:{payload['project']['id']}:"
                                      f"{payload['ref']}:{payload['after']}")
    else:
        assert event.delivery_key == f"gitlab:{webhook_id}"
