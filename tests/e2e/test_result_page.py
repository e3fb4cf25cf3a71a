"""The result page and the score badge, the page rendered by a real headless Chromium."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import re
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser

import pytest
from werkzeug.serving import make_server

from pipeline.badge_keys import badge_key
from pipeline.grading.grader import grade
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun, utcnow
from tests.e2e.scenario import TEST_YAML
from tests.infra.badges import badge_texts
from tests.infra.ledger import migrated_resources, queue_run
from tests.infra.ports import free_port
from webhooks.app import create_app

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture
def graded_run(tmp_path, service_settings):
    """A run finished with a real report: `count` right, `greeting` wrong."""
    _, settings = service_settings()
    resources = migrated_resources(settings)
    student, reference = tmp_path / "student", tmp_path / "reference"
    student.mkdir()
    reference.mkdir()
    (student / "hello.py").write_text("greeting = 'hi <script>alert(1)</script>'\ncount = 3\n")
    (reference / "hello.py").write_text("greeting = 'hello'\ncount = 4\n")
    (reference / "test.yaml").write_text(TEST_YAML)
    report = grade(student, reference).to_dict()
    run = queue_run(resources, commit_sha="c" * 40, project_id=77, assignment="week1/hello")
    with transaction(resources.sessions) as session:
        row = session.get(TestRun, run.id)
        row.status, row.report, row.score = RunStatus.FAILED, report, 0.0
        row.finished_at = utcnow()
    return settings, resources, run.id


@contextlib.contextmanager
def serving(settings, wrap=lambda app: app):
    """Serve gradehook's web application (as `wrap` wraps it) on a free port; yield its base
    URL."""
    server = make_server("127.0.0.1", 0, wrap(create_app(settings)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def live_app(graded_run):
    settings, _, _ = graded_run
    with serving(settings) as url:
        yield url


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.chunks, self.scripts = [], 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"

    def handle_data(self, data):
        self.chunks.append(data)


def test_chromium_renders_score_and_failing_values(tmp_path, graded_run, live_app):
    _, _, run_id = graded_run
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by ./dev test and .ci/run"
    profile = tmp_path / "profile"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                          "--dump-dom", f"{live_app}/results/{run_id}"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--screenshot={tmp_path / 'page.png'}", "--window-size=1100,1400",
                    f"{live_app}/results/{run_id}"], capture_output=True, timeout=120,
                   check=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000
    parsed = _Text()
    parsed.feed(dom)
    text = " ".join(" ".join(parsed.chunks).split())
    assert parsed.scripts == 0, "student text must never become a script element"
    assert "Score 0% (0 of 1 collection passed, 0/2 tests passed)" in text
    assert "count" in text and "4" in text and "3" in text
    assert "hi <script>alert(1)</script>" not in dom
    assert "week1/hello" in text


@pytest.mark.parametrize("run_id", ["does-not-exist", "%00", "a%0Ab", "x" * 65])
def test_unknown_result_is_404(graded_run, live_app, run_id):
    settings, _, _ = graded_run
    client = create_app(settings).test_client()
    response = client.get(f"/results/{run_id}")
    assert response.status_code == 404 and b"Result not found" in response.data
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def _viewport(page: bytes) -> list[bytes]:
    return re.findall(rb'<meta name="viewport"[^>]*>', page)


def test_a_page_saying_there_is_no_result_fits_a_phones_screen_as_a_result_page_does(
        graded_run):
    """Before, the pages 'Result not found' and 'Results unavailable for a moment' declared no
    viewport: a phone laid them out 980 pixels wide and shrank them, their words a third of
    their size."""
    settings, _, run_id = graded_run
    client = create_app(settings).test_client()
    result = _viewport(client.get(f"/results/{run_id}").data)
    unavailable = create_app(database_down(settings)).test_client().get(f"/results/{run_id}")
    assert len(result) == 1
    assert _viewport(client.get("/results/nope").data) == result
    assert (unavailable.status_code, _viewport(unavailable.data)) == (503, result)


def test_badge_shows_latest_score_of_the_ref(graded_run):
    settings, _, _ = graded_run
    client = create_app(settings).test_client()
    response = client.get("/badges/77/week1/hello.svg?ref=main")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert badge_texts(response.data) == {"grade", "0%"}
    other = client.get("/badges/77/week1/hello.svg?ref=other-branch")
    assert badge_texts(other.data) == {"grade", "no result"}


@pytest.mark.parametrize("path", ["/badges/77/week1%00/hello.svg",
                                  "/badges/77/week1/hello.svg?ref=%00",
                                  "/badges/77/week1/hello.svg?ref=main%0A",
                                  "/badges/77/week1/..%2F..%2Fhello.svg"])
def test_a_badge_of_what_no_run_could_have_shows_no_result(graded_run, path):
    settings, _, _ = graded_run
    response = create_app(settings).test_client().get(path)
    assert response.status_code == 200
    assert badge_texts(response.data) == {"grade", "no result"}


@pytest.mark.parametrize("project_id", [2**63, 10**30])
def test_a_badge_of_a_project_id_beyond_any_projects_shows_no_result(graded_run, project_id):
    settings, _, _ = graded_run
    response = create_app(settings).test_client().get(f"/badges/{project_id}/week1/hello.svg")
    assert response.status_code == 200
    assert badge_texts(response.data) == {"grade", "no result"}


BADGE_SECRET = "badge-" + "k" * 40


def keyed(settings):
    """Return the settings with a badge key, so that badges need their project's key."""
    return dataclasses.replace(settings, server=dataclasses.replace(settings.server,
                                                                    badge_key=BADGE_SECRET))


def _answer(response) -> tuple:
    return response.status_code, response.data, sorted(response.headers.items())


def test_a_keyed_badge_shows_with_its_projects_key(graded_run):
    settings, _, _ = graded_run
    client = create_app(keyed(settings)).test_client()
    key = badge_key(BADGE_SECRET, 77)
    response = client.get(f"/badges/77/week1/hello.svg?ref=main&key={key}")
    assert response.status_code == 200
    assert badge_texts(response.data) == {"grade", "0%"}
    assert len(key) == 22 and "=" not in key


@pytest.mark.parametrize("query", ["ref=main", "ref=main&key=", "ref=main&key=nope",
                                   "ref=main&key=%C3%A9%F0%9F%98%80", f"ref=main&key={'A' * 22}",
                                   "ref=main&key={other}", "ref=main&key={upper}"])
def test_a_keyed_badge_without_its_key_answers_as_an_unknown_project(graded_run, query):
    settings, _, _ = graded_run
    client = create_app(keyed(settings)).test_client()
    query = query.format(other=badge_key(BADGE_SECRET, 78),
                         upper=badge_key(BADGE_SECRET, 77).upper())
    refused = client.get(f"/badges/77/week1/hello.svg?{query}")
    unknown = client.get(f"/badges/79/week1/hello.svg?{query}")
    beyond = client.get(f"/badges/{2**64}/week1/hello.svg?{query}")
    assert refused.status_code == 404
    assert _answer(refused) == _answer(unknown) == _answer(beyond)
    assert b"0%" not in refused.data


def test_without_a_badge_key_badges_stay_public_and_no_latest_result_is_shown(graded_run):
    settings, _, _ = graded_run
    client = create_app(settings).test_client()
    for query in ("ref=main", f"ref=main&key={badge_key(BADGE_SECRET, 77)}"):
        assert badge_texts(client.get(f"/badges/77/week1/hello.svg?{query}").data) == \
            {"grade", "0%"}
        latest = client.get(f"/results/latest/77/week1/hello?{query}")
        assert latest.status_code == 404 and b"Result not found" in latest.data


def test_the_latest_result_behind_a_keyed_badge_is_its_runs_page(graded_run):
    settings, _, run_id = graded_run
    client = create_app(keyed(settings)).test_client()
    key = badge_key(BADGE_SECRET, 77)
    latest = client.get(f"/results/latest/77/week1/hello?ref=main&key={key}")
    assert latest.status_code == 302 and latest.headers["Location"] == f"/results/{run_id}"
    assert latest.headers["Cache-Control"] == "no-store"
    assert client.get(latest.headers["Location"]).status_code == 200
    refused = client.get("/results/latest/77/week1/hello?ref=main&key=nope")
    nothing = client.get(f"/results/latest/77/week1/hello?ref=other-branch&key={key}")
    assert _answer(refused) == _answer(nothing) == _answer(client.get("/results/nope"))
    assert refused.status_code == 404


def database_down(settings):
    """Return keyed settings whose ledger refuses every connection (nothing listens on a free
    port)."""
    return keyed(dataclasses.replace(settings, postgres=dataclasses.replace(settings.postgres,
                                                                            port=free_port())))


def test_a_page_while_the_database_is_down_is_503_for_a_moment(graded_run):
    """Before, the page answered 500 with gradehook's JSON 'unexpected error; it has been
    logged', and the log held a traceback of an 'unhandled error'."""
    settings, _, run_id = graded_run
    client = create_app(database_down(settings)).test_client()
    key = badge_key(BADGE_SECRET, 77)
    for path in (f"/results/{run_id}", f"/results/latest/77/week1/hello?key={key}"):
        response = client.get(path)
        assert (path, response.status_code, response.mimetype) == (path, 503, "text/html")
        assert b"Results unavailable for a moment" in response.data
        assert response.headers["Retry-After"] == "60"
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_a_badge_while_the_database_is_down_is_a_503_badge_a_browser_shows(tmp_path,
                                                                           graded_run):
    """Before, the badge answered the 503 page 'Results unavailable for a moment' as HTML,
    which GitLab's project page (an <img>) showed as a broken image."""
    settings, _, _ = graded_run
    badge = f"/badges/77/week1/hello.svg?key={badge_key(BADGE_SECRET, 77)}"
    response = create_app(database_down(settings)).test_client().get(badge)
    assert (response.status_code, response.mimetype) == (503, "image/svg+xml")
    assert badge_texts(response.data) == {"grade", "unavailable"}
    assert response.headers["Retry-After"] == "60"
    assert response.headers["Cache-Control"] == "no-store"
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by ./dev test and .ci/run"
    page = tmp_path / "project.html"
    with serving(database_down(settings)) as url:
        # What the image says of itself once loaded, or that it could not be shown.
        page.write_text(f'<!DOCTYPE html><html><head><title>pending</title></head><body>'
                        f'<img src="{url}{badge}" onload="document.title = \'shown \' + '
                        f'this.naturalWidth + \'x\' + this.naturalHeight" '
                        f'onerror="document.title = \'broken\'"></body></html>')
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS,
                              f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                              page.as_uri()],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    width = ElementTree.fromstring(response.data).get("width")
    assert f"<title>shown {width}x20</title>" in dom


def _step_names(page: str) -> list[str]:
    """Return the first cell of each row of the page's table of grading steps."""
    steps = page[page.index("<th>Grading step</th>"):]
    steps = steps[:steps.index("</table>")]
    return [html.unescape(name) for name in re.findall(r"<tr><td>([^<]*)</td>", steps)]


def test_the_grading_steps_read_in_the_order_they_ran_with_the_whole_last(graded_run):
    """Before, the steps showed in the order PostgreSQL keeps the keys of a JSON object, shortest
    first: 'In all' read third, before 'Running the tests' and the sandboxes' times."""
    settings, _, run_id = graded_run
    page = create_app(settings).test_client().get(f"/results/{run_id}").get_data(as_text=True)

    assert _step_names(page) == ["Reading the tests", "Preparing the files", "Running the tests",
                                 "Your program's runs, added up",
                                 "The reference solution's runs, added up", "In all"]


def _set_status(resources, run_id: str, status: RunStatus) -> None:
    with transaction(resources.sessions) as session:
        session.get(TestRun, run_id).status = status


def test_a_page_of_a_run_being_graded_shows_the_result_once_graded(tmp_path, graded_run):
    """Before, the page of a run being graded read 'Grading in progress. Results appear here when
    grading is done.' and stayed so, though the run was graded meanwhile, until the student
    reloaded it."""
    settings, resources, run_id = graded_run
    _set_status(resources, run_id, RunStatus.RUNNING)

    def graded_once_shown(app):
        def answer(environ, start_response):
            body = app(environ, start_response)
            if environ["PATH_INFO"] == f"/results/{run_id}":
                _set_status(resources, run_id, RunStatus.FAILED)
            return body
        return answer

    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by ./dev test and .ci/run"
    with serving(settings, graded_once_shown) as url:
        # Virtual time runs the page's timers (a minute of them) at once, as a browser left open.
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS,
                              f"--user-data-dir={tmp_path / 'profile'}",
                              "--virtual-time-budget=60000", "--dump-dom",
                              f"{url}/results/{run_id}"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = _Text()
    parsed.feed(dom)
    text = " ".join(" ".join(parsed.chunks).split())
    assert "Score 0% (0 of 1 collection passed, 0/2 tests passed)" in text
    assert "Grading in progress" not in text


# Lays the page's main column out at each width from 240 to 720 pixels, and names in the page's
# title each fact of the line under the heading whose value starts below the end of its label.
_LABELS_APART = """<script>
const apart = new Set();
for (let width = 240; width <= 720; width += 4) {
  document.querySelector("main").style.width = width + "px";
  for (const fact of document.querySelectorAll(".meta span")) {
    const range = document.createRange();
    range.selectNodeContents(fact.firstChild);
    const labels = range.getClientRects(), label = labels[labels.length - 1];
    const value = fact.querySelector("code").getClientRects()[0];
    if (value.top >= label.bottom) apart.add(fact.firstChild.textContent.trim());
  }
}
document.title = "apart: " + [...apart].join(" ");
</script>"""


def test_on_a_narrow_screen_each_fact_under_the_heading_keeps_its_label_and_value_together(
        tmp_path, graded_run):
    """Before, a phone broke the line between a label and its value: 'Branch:' ended a line and
    'main' began the next, 'Run:' and its id likewise."""
    settings, _, run_id = graded_run
    page = create_app(settings).test_client().get(f"/results/{run_id}").get_data(as_text=True)
    # The page forbids scripts (its Content-Security-Policy); a file of it has none.
    measured = tmp_path / "page.html"
    measured.write_text(page.replace("</body>", _LABELS_APART + "</body>"))
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by ./dev test and .ci/run"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", measured.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r"<title>(.*?)</title>", dom)[1] == "apart: "
