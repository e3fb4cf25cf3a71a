"""GitLabClient honours the proxy settings of the environment it was started in."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from gitlab_client import GitLabClient
from tests.support.gitlab_standin import GitLabStandIn


class _RecordingProxy(http.server.ThreadingHTTPServer):
    """A forward HTTP proxy stand-in: records each request line and answers an empty list."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                proxy.seen.append(self.path)
                body = json.dumps([]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy():
    server = _RecordingProxy()
    yield server
    server.shutdown()
    server.server_close()


def _clear_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_requests_go_through_the_proxy_the_environment_named_at_start(proxy, monkeypatch):
    _clear_proxy_variables(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    client = GitLabClient("http://gitlab.invalid", "token", timeout=5)
    monkeypatch.delenv("HTTP_PROXY")  # read once, at start: a later change is not seen

    assert client.find_open_merge_requests(12, "main") == []
    assert len(proxy.seen) == 1
    assert proxy.seen[0].startswith("http://gitlab.invalid/api/v4/projects/12/merge_requests?")


def test_a_host_in_no_proxy_is_reached_directly(proxy, monkeypatch):
    _clear_proxy_variables(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with GitLabStandIn() as gitlab:
        project = gitlab.add_project("group/alice", branches={"main": "a" * 40})
        client = GitLabClient(gitlab.url, gitlab.bot.token, timeout=5)

        assert client.find_open_merge_requests(project["id"], "main") == []
    assert proxy.seen == []
