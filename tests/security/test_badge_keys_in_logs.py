"""No badge key or badge secret in the web process's log, its access log included."""

from __future__ import annotations

import urllib.error
import urllib.request

from pipeline.badge_keys import badge_key
from pipeline.ledger.models import RunStatus
from tests.cli.test_maintenance_cli import finish
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.ports import free_port
from tests.infra.processes import web_process

SECRET = "web-badge-secret-" + "s" * 24


def fetch(url: str) -> int:
    """Return the status of a GET that follows no redirect."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_badge_requests_leave_no_key_in_the_web_log(tmp_path, service_settings):
    config, settings = service_settings({"log_level": "DEBUG",
                                         "server": {"badge_key": SECRET}})
    resources = migrated_resources(settings)
    run = queue_run(resources, commit_sha="a" * 40, project_id=77)
    finish(resources, run.id, RunStatus.PASSED, score=1.0, report={"tests": []})
    key, port, log = badge_key(SECRET, 77), free_port(), tmp_path / "web.log"

    with web_process(config, port, log_path=log):
        base = f"http://127.0.0.1:{port}"
        statuses = [fetch(f"{base}/badges/77/week1/hello.svg?ref=main&key={key}"),
                    fetch(f"{base}/results/latest/77/week1/hello?ref=main&key={key}"),
                    fetch(f"{base}/badges/77/week1/hello.svg?ref=main&key={key[:-1]}x")]

    assert statuses == [200, 302, 404]
    text = log.read_text(errors="replace")
    assert '"GET /badges/77/week1/hello.svg' in text, "the access log is on"
    assert key not in text and key[:-1] not in text and SECRET not in text
