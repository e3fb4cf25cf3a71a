"""No secret appears in any log line of a full run: web, worker and scheduler, at DEBUG.

The run uses a password-protected Redis and a PostgreSQL role with a password of its own, a
GitLab token, a webhook secret and a signing token, each random, and goes through a token-
authenticated and a signed delivery, grading, commit statuses, a merge request comment and
the health endpoint.
"""

from __future__ import annotations

import base64
import secrets
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e.scenario import SECRET, STUDENT, solution
from tests.infra.processes import service_health, wait_for
from tests.infra.servers import PrivatePostgres
from tests.faults.service import fault_service
from tests.security.signing import new_signing_key, signature_headers

pytestmark = pytest.mark.slow


@pytest.fixture
def private_postgres():
    """A PostgreSQL cluster of this test's own, its superuser's password random."""
    cluster = PrivatePostgres(password="pg-" + secrets.token_hex(12))
    cluster.create()
    yield cluster
    cluster.remove()


def forms(secret: str) -> set[str]:
    """Return the ways a secret could be written into a log: as is, URL-quoted, in base64."""
    return {secret, urllib.parse.quote(secret, safe=""),
            base64.b64encode(secret.encode()).decode()}


def test_no_secret_in_any_log_line_of_a_full_run(
        tmp_path, service_settings, git_server, monkeypatch, private_postgres):
    key, signing_token = new_signing_key()
    redis_password = "redis-" + secrets.token_hex(12)
    with fault_service(tmp_path, service_settings, git_server, monkeypatch,
                       extra={"log_level": "DEBUG", "gitlab": {"signing_token": signing_token}},
                       postgres=private_postgres, redis_password=redis_password) as service:
        gitlab, pid = service.gitlab, service.scenario.project_id
        gitlab.set_branch(pid, "work", git_server.commit(STUDENT, {"notes.txt": "draft\n"},
                                                         branch="work"))
        mr = gitlab.add_merge_request(pid, "work", "main")
        token = gitlab.bot.token

        def sign(body: bytes) -> dict[str, str]:
            return signature_headers(body, "msg_signed", int(time.time()), key)

        with service.worker("worker"), service.beat():
            _, first = service.deliver("work", solution("hi"), key="by-token")
            _, second = service.deliver("work", solution("hello"), key="signed", sign=sign)
            service.wait_ended(first["runs"] + second["runs"], timeout=90)
            assert gitlab.wait_for(
                lambda: any("2/2" in n["body"] for n in gitlab.notes(pid, mr["iid"])), timeout=30)
            # Healthy once the worker answers the health check's ping within its second.
            wait_for(lambda: (service_health(service.scenario.port) or {}).get("status")
                     == "healthy", timeout=30, what="the health endpoint to answer healthy")

    logs = {name: (service.logs / f"{name}.log").read_text(errors="replace")
            for name in ("web", "worker", "beat")}
    assert all("DEBUG" in text for text in logs.values()), "the logs must be the verbose ones"
    assert "commit status success posted" in logs["worker"]
    secret_values = {"GitLab token": forms(token) | forms(f"oauth2:{token}"),
                     "webhook secret": forms(SECRET),
                     "signing token": forms(signing_token)
                     | {signing_token.removeprefix("whsec_")},
                     "PostgreSQL password": forms(private_postgres.password),
                     "Redis password": forms(redis_password)}
    for log_name, text in logs.items():
        for number, line in enumerate(text.splitlines(), 1):
            for what, values in secret_values.items():
                assert not any(value in line for value in values), \
                    f"the {what} is in {log_name}.log line {number}: {line[:200]}"
