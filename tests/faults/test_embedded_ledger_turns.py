"""Reporters on the embedded SQLite ledger take turns, as PostgreSQL's locks make them do."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

import pytest

from pipeline.feedback import sync_commit_status, update_merge_request_comments
from pipeline.ledger.db import transaction
from pipeline.ledger.models import RunStatus, TestRun
from tests.infra.ledger import embedded_settings, end_run, migrated_resources, queue_run
from tests.infra.processes import wait_for
from tests.support.gitlab_standin import FaultPlan, GitLabStandIn

SHA = "5" * 40
NEWER_SHA = "6" * 40


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    """Resources on the embedded SQLite ledger, reporting to a GitLab stand-in."""
    with GitLabStandIn() as gitlab:
        settings = embedded_settings(tmp_path, monkeypatch, {
            "gitlab": {"url": gitlab.url, "token": gitlab.bot.token}})
        resources = migrated_resources(settings)
        project = gitlab.add_project("students/alice", branches={"main": "4" * 40, "work": SHA})
        yield resources, gitlab, project
        resources.engine.dispose()


def waiting_for_a_turn(resources) -> bool:
    """Tell whether some process waits for one of the embedded ledger's turn files."""
    folder = Path(f"{resources.engine.url.database}.locks")
    inodes = {os.stat(path).st_ino for path in folder.glob("*.lock")}
    waiters = [line.split() for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line]
    return any(int(fields[6].rsplit(":", 1)[1]) in inodes for fields in waiters)


def in_thread(work) -> tuple[threading.Thread, dict]:
    """Start `work` in a thread; the dict gets its result or its error."""
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def finished(thread: threading.Thread, outcome: dict) -> None:
    thread.join(60)
    assert not thread.is_alive(), "a reporter never ended"
    if "error" in outcome:
        raise outcome["error"]


def race_while_held(resources, gitlab: GitLabStandIn, path_pattern: str, first: Callable,
                    second: Callable, between: Callable = lambda: None) -> None:
    """Run `first` until GitLab holds its post, then `between`, then `second`; GitLab answers
    once `second` waits for its turn (or has ended without one). Return when both ended."""
    release = threading.Event()
    held = gitlab.inject_faults(FaultPlan(status=None, every=1, limit=1, method="POST",
                                          path_pattern=path_pattern, hold=release))
    try:
        started = in_thread(first)
        assert held.arrived.wait(30), "the first reporter's post never reached GitLab"
        between()
        waiting = in_thread(second)
        wait_for(lambda: waiting_for_a_turn(resources) or not waiting[0].is_alive(),
                 what="the second reporter to wait for its turn or to end")
    finally:
        release.set()
    finished(*started)
    finished(*waiting)


def test_a_run_superseded_while_its_pending_status_is_in_flight_is_withdrawn(embedded):
    resources, gitlab, project = embedded
    run = queue_run(resources, project_id=project["id"], project_path="students/alice",
                    ref="work", commit_sha=SHA)
    # Without turns the second reporter reads a run GitLab never showed, and posts nothing.
    race_while_held(resources, gitlab, r"/statuses/",
                    lambda: sync_commit_status(resources, run.id),
                    lambda: sync_commit_status(resources, run.id),
                    between=lambda: end_run(resources, run.id, RunStatus.SUPERSEDED,
                                            superseded_by=NEWER_SHA,
                                            status_reason="superseded by a newer push"))
    assert [s["status"] for s in gitlab.commit_statuses(project["id"], SHA)] == ["canceled"]
    assert [r.json["state"] for r in gitlab.requests_to("POST", r"/statuses/")] == \
        ["pending", "canceled"]


def test_two_assignments_graded_at_once_share_one_merge_request_comment(embedded):
    resources, gitlab, project = embedded
    merge_request = gitlab.add_merge_request(project["id"], "work", "main")
    runs = [queue_run(resources, project_id=project["id"], project_path="students/alice",
                      ref="work", commit_sha=SHA, assignment=assignment)
            for assignment in ("week1/hello", "week2/loops")]
    for run in runs:
        end_run(resources, run.id, RunStatus.PASSED, score=1.0, tests_total=1,
                tests_passed=1)
    with transaction(resources.sessions) as session:
        ended = [session.get(TestRun, run.id) for run in runs]
    # Without turns the second reporter finds no comment yet and writes one of its own.
    race_while_held(resources, gitlab, r"/notes$",
                    lambda: update_merge_request_comments(resources, ended[0]),
                    lambda: update_merge_request_comments(resources, ended[1]))
    notes = gitlab.notes(project["id"], merge_request["iid"])
    assert len(notes) == 1
    assert all(f"/results/{run.id}" in notes[0]["body"] for run in runs)
