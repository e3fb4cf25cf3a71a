"""The OpenAPI document: complete, and every answer keeps to it (schemathesis, real services)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               negative_data_rejection,
                                               response_schema_conformance,
                                               status_code_conformance)

from pipeline.ledger.models import RunStatus, utcnow
from tests.api.world import ASSIGNMENT, SHA_A, SHA_B, STAFF_TOKEN, bearer
from tests.infra.ledger import add_submission, end_run, queue_run

EXAMPLES = 20


@schemathesis.check
def no_internal_error(ctx, response, case):
    """Fail on a 500; other 5xx (a 503 while no worker runs) are checked against the document."""
    if response.status_code == 500:
        raise AssertionError(f"500 Internal Server Error: {response.text[:300]}")


CHECKS = [no_internal_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]
OPERATIONS = {
    "/api/tests-celery": {"post"}, "/api/tests": {"post"}, "/api/tasks/{task_id}": {"get"},
    "/api/tasks/{task_id}/events": {"get"}, "/api/tasks/workers/status": {"get"},
    "/api/runs": {"get"}, "/api/runs/{run_id}": {"get"}, "/api/regrade": {"post"},
    "/api/submissions": {"get"}, "/api/tests-celery/health": {"get"},
    "/api/openapi.json": {"get"},
}


@pytest.fixture
def api_schema(world):
    """The document as the app serves it, bound to the app; the ledger holds a finished run."""
    run = queue_run(world.resources, commit_sha=SHA_A)
    end_run(world.resources, run.id, RunStatus.PASSED, score=1.0, report={"tests": []})
    return schemathesis.openapi.from_wsgi("/api/openapi.json", world.app)


# schemathesis.pytest's parametrize does not run under pytest 9 (it reads a removed node
# attribute), so the operations are driven here: valid and invalid requests for each one.
@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_keeps_to_the_document(api_schema, mode):
    tried = []
    for found in api_schema.get_all_operations():
        operation = found.ok()
        tried.append(operation.label)
        takes_input = operation.path_parameters or operation.query or operation.body
        if mode == GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to send wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_to_the_document(case):
            case.call_and_validate(headers=bearer(STAFF_TOKEN), checks=CHECKS)

        keeps_to_the_document()
    # schemathesis leaves out the operation that serves the document itself
    assert set(tried) == {f"{method.upper()} {path}" for path, methods in OPERATIONS.items()
                          for method in methods} - {"GET /api/openapi.json"}


def test_the_document_describes_every_operation(world):
    document = world.get("/api/openapi.json", token=None).get_json()

    assert document["openapi"] == "3.0.3"
    assert {path: set(item) for path, item in document["paths"].items()} == OPERATIONS
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    test_create = document["components"]["schemas"]["TestCreate"]
    assert test_create["required"] == ["directory", "version_identifier"]
    assert set(test_create["properties"]) == {"directory", "version_identifier", "submit",
                                              "project", "retry", "branch"}
    assert test_create["properties"]["branch"]["maxLength"] == 255
    assert test_create["additionalProperties"] is False
    answer = document["components"]["schemas"]["TestRunResponse"]["properties"]
    assert {"id", "test_system_id", "status", "submission_task_id"} <= set(answer)


def test_successful_answers_keep_to_the_document(world, api_schema):
    created = world.post("/api/tests-celery", {"directory": ASSIGNMENT,
                                               "version_identifier": SHA_B,
                                               "project": "students/alice"})
    run_id, task_id = created.get_json()["id"], created.get_json()["test_system_id"]
    [passed] = world.get("/api/runs?status=passed").get_json()["items"]
    add_submission(world.resources, commit_sha=SHA_A, counted_at=utcnow(), score=0.5)
    answers = [
        ("/api/tests-celery", "POST", created),
        ("/api/tests", "POST", world.post("/api/tests", {"directory": ASSIGNMENT,
                                                         "version_identifier": SHA_B,
                                                         "project": "students/alice"})),
        ("/api/runs", "GET", world.get("/api/runs")),
        ("/api/runs/{run_id}", "GET", world.get(f"/api/runs/{run_id}")),
        ("/api/submissions", "GET", world.get("/api/submissions?final=true")),
        ("/api/tasks/{task_id}", "GET", world.get(f"/api/tasks/{task_id}")),
        ("/api/tasks/workers/status", "GET", world.get("/api/tasks/workers/status")),
        ("/api/regrade", "POST",
         world.post("/api/regrade", {"scope": "run", "run_id": passed["id"]})),
        ("/api/regrade", "POST", world.post("/api/regrade", {"scope": "branch_heads"})),
        ("/api/tests-celery/health", "GET", world.get("/api/tests-celery/health")),
    ]
    assert [response.status_code for _, _, response in answers] == \
        [202, 200, 200, 200, 200, 200, 200, 202, 202, 503]
    assert world.get("/api/runs").get_json()["total"] == 4
    assert world.get("/api/submissions").get_json()["items"][0]["score"] == 0.5
    for path, method, response in answers:
        api_schema[path][method].validate_response(response)
