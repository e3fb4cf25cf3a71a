"""Property: whatever a REST caller sends, no 5xx but the documented 503s, and no run is lost."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from sqlalchemy import func, select

from pipeline.ledger.models import RunStatus, TestRun
from tests.api.world import (ASSIGNMENT, OTHER_ASSIGNMENT, SHA_A, SHA_B, SHA_C, STAFF_TOKEN, World,
                             build_world)
from tests.infra.ledger import end_run, queue_run
from tests.support.gitlab_standin import gitlab_standin  # noqa: F401  a fixture

# The health check answers 503 while no worker runs, as documented; nothing else may 5xx here.
HEALTH = "/api/tests-celery/health"
EXAMPLES_PER_ROUTE = 60
# The health check waits for workers to answer a ping each time; it reads no input but headers.
FEWER_EXAMPLES = {"health": 8}
STAFF_JSON = {"Authorization": f"Bearer {STAFF_TOKEN}", "Content-Type": "application/json"}
QUEUES = ("high_priority", "default", "low_priority", "notify")
# What a field or path segment holds when it is wrong: each kind of value a check stands for,
# then more that look nearly right.
ODD_VALUES = ["\x00", "\ud800", "é", "", "..", "a" * 300, str(2 ** 64), "-1", "９", "\n"]
ODD_TEXT = [*ODD_VALUES, "%00", "../..", "\u202e", " ", "null", "1e999", "0", str(2 ** 63),
            "week1/hello", "students/alice", "students/alice\n", "queued", "a/../b", "/", "\\"]
json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.sampled_from(ODD_TEXT) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=8), children, max_size=3),
                           max_leaves=8)
RAW_BODIES = [b"", b"null", b"[]", b"{", b"\xff\xfe{}", b'{"scope":"run","scope":"student"}',
              b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
              b'{"project":' + b"9" * 5_000 + b"}", '{"directory":"é"}'.encode("latin-1"),
              '{"scope":"branch_heads"}'.encode("utf-16")]


def usually(draw, right, odd):
    """Draw from `right` three times in four, else from `odd` (a request is mostly well-formed,
    so that what lies behind each check is reached)."""
    return draw(odd) if draw(st.integers(0, 3)) == 3 else draw(right)


def encoded(text, safe: str = ""):
    """Percent-encode drawn text, lone surrogates as the bytes Python would write for them."""
    return text.map(lambda t: urllib.parse.quote(t, safe=safe, errors="surrogatepass"))


def odd_bodies(valid: dict):
    """A valid body with fields removed or replaced by arbitrary JSON (NaN, Infinity and huge
    ints included), or bytes that are not such a body at all."""
    @st.composite
    def mutated(draw) -> bytes:
        body = dict(valid)
        for name in draw(st.lists(st.sampled_from(sorted(valid) + ["extra"]), min_size=1,
                                  max_size=3)):
            if draw(st.booleans()):
                body.pop(name, None)
            else:
                body[name] = draw(json_values)
        return json.dumps(body).encode()
    return st.one_of(mutated(), st.sampled_from(RAW_BODIES), st.binary(max_size=64),
                     json_values.map(lambda value: json.dumps(value).encode()))


def grading_bodies(world: World):
    """Bodies of POST /api/tests and /api/tests-celery that create or find a run."""
    return st.fixed_dictionaries(
        {"directory": st.sampled_from([ASSIGNMENT, OTHER_ASSIGNMENT]),
         "version_identifier": st.sampled_from([SHA_A, SHA_B, SHA_C]),
         "project": st.sampled_from([world.alice_project["path_with_namespace"],
                                     world.alice_project["id"]])},
        optional={"submit": st.booleans(), "retry": st.booleans()})


def regrade_bodies(world: World, run_id: str):
    """Bodies of POST /api/regrade, one of each scope."""
    return st.sampled_from([
        {"scope": "run", "run_id": run_id},
        {"scope": "student", "project": world.alice_project["id"], "assignment": ASSIGNMENT},
        {"scope": "assignment", "assignment": ASSIGNMENT, "course": "prog1"},
        {"scope": "branch_heads"}])


# Each route: method, path ({run}, {task}, {project} and {assignment} are filled in), the
# query parameters it takes with a right value, and the kind of body it takes (None: none).
ROUTES = {
    "tests-celery": ("POST", "/api/tests-celery", {}, "grading"),
    "tests": ("POST", "/api/tests", {}, "grading"),
    "regrade": ("POST", "/api/regrade", {}, "regrade"),
    "runs": ("GET", "/api/runs", {"project": "students/alice", "status": "passed",
                                  "commit": SHA_A[:7], "course": "prog1", "page": "1",
                                  "per_page": "5", "assignment": ASSIGNMENT}, None),
    "run": ("GET", "/api/runs/{run}", {}, None),
    "task": ("GET", "/api/tasks/{task}", {}, None),
    "events": ("GET", "/api/tasks/{task}/events", {}, None),
    "workers": ("GET", "/api/tasks/workers/status", {}, None),
    "health": ("GET", HEALTH, {}, None),
    "openapi": ("GET", "/api/openapi.json", {}, None),
    "result-page": ("GET", "/results/{run}", {}, None),
    "badge": ("GET", "/badges/{project}/{assignment}.svg", {"ref": "main"}, None),
}
odd_values = st.sampled_from(ODD_TEXT) | st.text(max_size=12)
odd_segments = encoded(odd_values) | st.sampled_from(["%ff", "%2e%2e", "a%2Fb"])


@st.composite
def requests(draw, world: World, route: str, run_id: str, task_id: str):
    """(method, URL, headers, body) of a request to a route, mostly right, often not."""
    method, path, right_query, body_kind = ROUTES[route]
    path = path.format(
        run=usually(draw, st.just(run_id), odd_segments),
        task=usually(draw, st.just(task_id), odd_segments),
        project=usually(draw, st.just(world.alice_project["id"]),
                        st.integers(min_value=-1, max_value=2 ** 70) | st.just("%EF%BC%91")),
        assignment=usually(draw, st.just(ASSIGNMENT), encoded(odd_values, safe="/")))
    method = usually(draw, st.just(method),
                     st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE"]))
    pairs = [(name, usually(draw, st.just(value), odd_values))
             for name, value in sorted(right_query.items()) if draw(st.booleans())]
    extra_names = st.sampled_from(sorted(right_query) or ["page"]) | st.text(max_size=6)
    pairs += usually(draw, st.just([]), st.lists(st.tuples(extra_names, odd_values),
                                                 min_size=1, max_size=3))
    query = urllib.parse.urlencode(pairs, errors="surrogatepass") + usually(
        draw, st.just(""), st.sampled_from(["&%ff=%ff", "&page", "&&"]))
    valid_body = {"grading": grading_bodies(world), "regrade": regrade_bodies(world, run_id),
                  None: st.none()}[body_kind]
    body = b"" if body_kind is None else usually(
        draw, valid_body.map(lambda value: json.dumps(value).encode()),
        odd_bodies(draw(valid_body)))
    return method, f"{path}?{query}", draw(headers(world)), body


def nasty_requests(world: World, route: str, run_id: str, task_id: str):
    """Yield requests that put each kind of odd value, one at a time, where a check must stop
    it: each path segment, query parameter and body (too rare to leave to chance)."""
    method, path, right_query, body_kind = ROUTES[route]
    right = {"run": run_id, "task": task_id, "project": world.alice_project["id"],
             "assignment": ASSIGNMENT}
    query = urllib.parse.urlencode(right_query)
    for place in (name for name in right if "{%s}" % name in path):
        for value in (*ODD_VALUES, str(2 ** 63)):
            odd_path = path.format(**{**right, place: urllib.parse.quote(
                value, safe="", errors="surrogatepass")})
            yield method, f"{odd_path}?{query}", STAFF_JSON, b""
    for name in right_query:
        for value in ODD_VALUES:
            odd_query = urllib.parse.urlencode({**right_query, name: value},
                                               errors="surrogatepass")
            yield method, f"{path.format(**right)}?{odd_query}", STAFF_JSON, b""
    for body in RAW_BODIES if body_kind else ():
        yield method, path, STAFF_JSON, body


def headers(world: World):
    """Authorization, Content-Type and Accept, each mostly right or left out."""
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
    tokens = st.sampled_from([STAFF_TOKEN, world.alice.token])
    odd_authorization = st.sampled_from([
        f"bearer  {STAFF_TOKEN} ", f"Bearer {world.carol.token}", "Bearer", "Bearer ",
        "Basic YTpi", "Bearer é", f"Bearer {STAFF_TOKEN} extra", "Bearer " + "x" * 5000,
        "Bearer unknown-token"]) | header_text
    odd_content_type = st.sampled_from(["application/json; charset=latin-1", "text/plain",
                                        "application/x+json", ""]) | header_text
    accept = st.sampled_from(["text/event-stream", "application/json", "*/*", "text/html",
                              ";;q=x"]) | header_text

    @st.composite
    def build(draw) -> dict[str, str]:
        sent = {"Authorization": usually(draw, tokens.map("Bearer {}".format),
                                         odd_authorization),
                "Content-Type": usually(draw, st.just("application/json"), odd_content_type),
                "Accept": draw(accept)}
        return {name: value for name, value in sent.items() if draw(st.integers(0, 7))}
    return build()


def broker_task_ids(world: World) -> set[str]:
    """Return the task ids of every message waiting in the broker's queues."""
    return {message["headers"]["id"] for queue in QUEUES for message in world.queued(queue)}


def wedged_runs(world: World) -> list[str]:
    """Return queued runs that nothing will grade: no message waits for them, and the
    reconciler would not send them (it sends those whose sent_at is cleared)."""
    waiting = broker_task_ids(world)
    with world.resources.sessions() as session:
        queued = session.execute(select(TestRun.id, TestRun.celery_task_id, TestRun.sent_at)
                                 .where(TestRun.status == RunStatus.QUEUED)).all()
    return [run_id for run_id, task_id, sent_at in queued
            if sent_at is not None and task_id not in waiting]


def run_count(world: World) -> int:
    with world.resources.sessions() as session:
        return session.scalar(select(func.count()).select_from(TestRun))


@pytest.fixture
def api_world(service_settings, gitlab_standin, redis_db) -> World:  # noqa: F811
    """The API's world, with streams that end within a second."""
    return build_world(service_settings, gitlab_standin, redis_db,
                       extra={"api": {"event_stream_max_seconds": 1}})


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
def test_no_request_gets_a_5xx_or_loses_a_run(api_world, route):
    world = api_world
    finished = queue_run(world.resources, commit_sha=SHA_A, project_id=world.alice_project["id"])
    end_run(world.resources, finished.id, RunStatus.PASSED, score=1.0, report={"tests": []})

    @settings(max_examples=FEWER_EXAMPLES.get(route, EXAMPLES_PER_ROUTE), deadline=None,
              database=None, suppress_health_check=[
                  HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                  HealthCheck.data_too_large])
    @given(request=requests(world, route, finished.id, finished.celery_task_id))
    def answers_well(request):
        method, url, sent_headers, body = request
        before = run_count(world)
        response = world.client.open(url, method=method, data=body, headers=sent_headers)
        data = response.get_data()  # an event stream is read to its end: it must end
        response.close()
        path = url.partition("?")[0]
        assert response.status_code < 500 or (path == HEALTH and response.status_code == 503), \
            (response.status_code, data[:300])
        if response.status_code >= 400:
            assert run_count(world) == before, (response.status_code, data[:300])
        answered = method not in ("HEAD", "OPTIONS")
        if answered and path.startswith("/api/") and not path.endswith("/events"):
            assert response.is_json, (response.status_code, response.mimetype)
        assert wedged_runs(world) == []

    for request in nasty_requests(world, route, finished.id, finished.celery_task_id):
        answers_well = example(request=request)(answers_well)
    answers_well()
