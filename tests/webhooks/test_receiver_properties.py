"""Property: whatever bodies and headers arrive, the receiver never answers 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.infra.ledger import migrated_resources
from tests.webhooks.deliveries import fixture_names, payload_of
from webhooks.app import create_app

SECRET = "prop-secret"
EVENT_HEADERS = ["Push Hook", "Tag Push Hook", "Merge Request Hook", "Note Hook",
                 "Pipeline Hook", "System Hook"]
COURSE = {"name": "prog1", "student_projects": ["prog1-2026/students/"],
          "reference_project": "prog1-2026/reference", "discover_assignments": False,
          "assignments": [{"directory": "week1/assignment1"}]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


@st.composite
def mutated_fixture(draw) -> bytes:
    """A real payload with some fields replaced by arbitrary JSON values or removed."""
    payload = payload_of(draw(st.sampled_from([n for n in fixture_names()])))
    for _ in range(draw(st.integers(0, 4))):
        target = payload
        path = draw(st.lists(st.sampled_from(sorted(_keys(payload))), min_size=1, max_size=2))
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                break
            target = target[key]
        if draw(st.booleans()):
            target.pop(path[-1], None)
        else:
            target[path[-1]] = draw(json_values)
    return json.dumps(payload).encode()


def _keys(payload) -> set[str]:
    keys = set(payload)
    for value in payload.values():
        if isinstance(value, dict):
            keys |= set(value)
    return keys


bodies = st.one_of(st.binary(max_size=300), mutated_fixture(),
                   json_values.map(lambda v: json.dumps(v).encode()))
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=60)
headers = st.fixed_dictionaries(
    {"Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; "
                                      "charset=utf-8", ""])},
    optional={"X-Gitlab-Event": st.sampled_from(EVENT_HEADERS) | header_values,
              "X-Gitlab-Token": st.sampled_from([SECRET]) | header_values,
              "Idempotency-Key": header_values, "webhook-id": header_values,
              "webhook-timestamp": header_values, "webhook-signature": header_values})


def test_no_input_gets_a_500(service_settings):
    _, settings_ = service_settings({"gitlab": {"webhook_secret": SECRET}, "courses": [COURSE]})
    migrated_resources(settings_)
    client = create_app(settings_).test_client()

    @settings(max_examples=250, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=bodies, sent_headers=headers)
    def never_500(body, sent_headers):
        response = client.post("/webhooks/gitlab", data=body, headers=sent_headers)
        assert response.status_code < 500, (response.status_code, response.get_data()[:300])
        assert response.is_json

    never_500()
