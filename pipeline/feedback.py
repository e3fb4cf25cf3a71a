"""Bring GitLab in line with the ledger: a run's commit status, and its merge requests' comment."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Row, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gitlab_client import UnansweredGitLabError, id_or_path
from pipeline.context import Resources
from pipeline.ledger.db import transaction
from pipeline.ledger.locks import embedded_turn, lock_name
from pipeline.ledger.models import MergeRequestComment, RunStatus, TestRun, utcnow
from pipeline.reports.comment import comment_marker, mr_comment_markdown
from pipeline.reports.commit_status import commit_status_payload, push_graded_since_payload
from pipeline.reports.model import RunSummary

log = logging.getLogger(__name__)

# Commit states in the order GitLab's pipeline moves through them; never post backwards.
STATE_RANK = {None: -1, "pending": 0, "running": 1, "success": 2, "failed": 2, "canceled": 2}
COMMENTED_STATUSES = (RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR)
# A run that diffs its commit is its assignment's result only once the diff showed the
# assignment changed (RunSummary.stands_for_assignment); one that ended before graded nothing.
STANDS_FOR_ASSIGNMENT = or_(TestRun.needs_diff.is_(False), TestRun.cloned_at.is_not(None))
RUNS = TestRun.__table__
SELECT_RUN = select(RUNS).where(RUNS.c.id == bindparam("run_id"))
# The final state GitLab shows for a commit's push on a ref, as another run of it that ended
# before its diff recorded it (`failed`, or `success` once the commit was graded since).
SELECT_PUSH_SHOWN = select(RUNS.c.reported_status).where(
    RUNS.c.project_path == bindparam("project_path"), RUNS.c.commit_sha == bindparam("commit_sha"),
    RUNS.c.ref == bindparam("ref"), RUNS.c.id != bindparam("run_id"),
    ~STANDS_FOR_ASSIGNMENT, RUNS.c.reported_status.in_(("failed", "success"))).limit(1)
# The runs of a commit on a ref whose push-level `failed` status GitLab shows, marked as shown
# `success`: they are claimed once, by the first run of the commit that graded its assignment.
CLAIM_PUSH_FAILED = update(RUNS).where(
    RUNS.c.project_path == bindparam("of_project"), RUNS.c.commit_sha == bindparam("of_commit"),
    RUNS.c.ref == bindparam("of_ref"), ~STANDS_FOR_ASSIGNMENT, RUNS.c.reported_status == "failed",
).values(reported_status="success", reported_at=bindparam("now")).returning(RUNS.c.id)


def result_url(resources: Resources, run_id: str) -> str:
    """Return the public URL of a run's result page."""
    return f"{resources.settings.server.base_url}/results/{run_id}"


def sync_commit_status(resources: Resources, run_id: str) -> Row | None:
    """Post the commit status the run's ledger state calls for, if GitLab lacks it.

    Reporters of one run take turns under a lock of its own, so two processes never race a
    status backwards; a status GitLab already has, or one behind what was posted, is not sent.
    The run's row is not locked while GitLab is called: the intake locks the queued runs a
    push supersedes, and a slow or rate-limited GitLab must not hold up webhook answers. Each
    reporter reads the row after taking the lock, so it sees what the one before it posted.
    Return the run as read, or None when there is no GitLab to post to or no such run. The
    row is read and written with plain statements, not through the ORM: this runs three
    times for every run.
    """
    if resources.gitlab is None:
        return None
    with embedded_turn(resources.engine, "report", run_id), \
            resources.engine.begin() as connection:
        lock_name(connection, "report", run_id)
        run = connection.execute(SELECT_RUN, {"run_id": run_id}).first()
        if run is None:
            log.warning("run %s: not in the ledger; nothing to report", run_id)
            return None
        summary = RunSummary.from_record(run, result_url(resources, run.id))
        payload = commit_status_payload(summary, run.report,
                                        prefix=resources.settings.gitlab.status_name)
        state = payload["state"]
        if STATE_RANK[state] <= STATE_RANK[run.reported_status]:
            return run
        if state == "canceled" and run.reported_status is None:
            return run  # GitLab never showed this run: nothing to withdraw
        if state in ("pending", "running") and not summary.stands_for_assignment:
            # A run made for each assignment, as a merge request's are, grades its assignment
            # only if the diff shows it changed: until its worker knows, GitLab is shown nothing.
            return run
        push_shown = None if summary.stands_for_assignment else connection.execute(
            SELECT_PUSH_SHOWN, {"run_id": run_id, "project_path": run.project_path,
                                "commit_sha": run.commit_sha, "ref": run.ref}).scalar()
        if push_shown is not None:
            # Another run of the push showed GitLab its end already, under the same name.
            connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(
                reported_status=push_shown, reported_at=utcnow()))
            return run
        if state == "running" and run.reported_status is None:
            # The worker started before the pending status went out: show the pipeline's
            # whole course, as GitLab expects (spec/gitlab.md §4: pending, running, final).
            resources.gitlab.set_commit_status(_project(run), run.commit_sha,
                                               **{**payload, "state": "pending"})
        unanswered = None
        try:
            resources.gitlab.set_commit_status(_project(run), run.commit_sha, **payload)
        except UnansweredGitLabError as exc:
            if state != "pending":
                raise  # posted again later: GitLab takes a repeated state as done
            # GitLab may show it: a later `canceled` must not be skipped as withdrawing nothing.
            unanswered = exc
        final = STATE_RANK[state] == 2
        connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(
            reported_status=state, **({"reported_at": utcnow()} if final else {})))
        if final and summary.stands_for_assignment:
            _replace_push_failed(resources, connection, run)
        if final:
            # GitLab takes the project's updates: its runs it refused (while gradehook's user
            # lacked its role there, since given back) are asked for again.
            connection.execute(update(RUNS).where(
                RUNS.c.project_path == run.project_path, RUNS.c.report_refused.is_not(None))
                .values(report_refused=None))
    if unanswered is not None:
        raise unanswered
    log.info("run %s: commit status %s posted", run_id, state)
    return run


def _replace_push_failed(resources: Resources, connection: Connection, run: Row) -> None:
    """Turn the commit's push-level `failed` status, left by runs that ended before their diff,
    to `success` once a run graded its assignment: GitLab would show the pipeline failed for
    good. The runs are claimed in the reporting transaction, so it is posted once."""
    claimed = connection.execute(CLAIM_PUSH_FAILED, {
        "of_project": run.project_path, "of_commit": run.commit_sha, "of_ref": run.ref,
        "now": utcnow()}).all()
    if claimed:
        resources.gitlab.set_commit_status(_project(run), run.commit_sha,
                                           **push_graded_since_payload(
                                               run.ref,
                                               prefix=resources.settings.gitlab.status_name))


def update_merge_request_comments(resources: Resources, run: Row) -> list[int]:
    """Write the latest results of a run's branch into each open merge request it belongs to;
    return their iids. The run is marked as commented apart (mark_commented), once every
    comment it calls for is written. A run that is no assignment's result (it ended before its
    diff) changes no comment."""
    client = resources.gitlab
    if client is None or run.status not in COMMENTED_STATUSES or \
            not RunSummary.from_record(run).stands_for_assignment:
        return []
    iids = set()
    if run.ref:
        iids = {mr.iid for mr in client.find_open_merge_requests(_project(run), run.ref)}
        if run.merge_request_iid:
            iids.add(run.merge_request_iid)
        for iid in sorted(iids):
            _upsert_comment(resources, run, iid)
    return sorted(iids)


def mark_commented(resources: Resources, run_id: str) -> None:
    """Record that every comment a run calls for is written (or that it has none); a graded
    run left unmarked is reported again by the reconciler."""
    with resources.engine.begin() as connection:
        connection.execute(update(RUNS).where(RUNS.c.id == run_id).values(
            commented_at=utcnow()))


def _upsert_comment(resources: Resources, run: Row, iid: int) -> None:
    _ensure_comment_row(resources, run.project_path, iid)
    with embedded_turn(resources.engine, "comment", run.project_path, str(iid)), \
            transaction(resources.sessions) as session:
        row = session.get(MergeRequestComment, (run.project_path, iid), with_for_update=True,
                          populate_existing=True)
        latest = _latest_results(session, run)
        body = mr_comment_markdown(
            [(RunSummary.from_record(r, result_url(resources, r.id)), r.report) for r in latest],
            comment_marker(f"{run.project_path}!{iid}"))
        row.note_id = resources.gitlab.upsert_mr_note(_project(run), iid, body,
                                                      marker=comment_marker(
                                                          f"{run.project_path}!{iid}"))
        row.updated_at = utcnow()
    log.info("run %s: comment on merge request !%d updated", run.id, iid)


def _ensure_comment_row(resources: Resources, project_path: str, iid: int) -> None:
    try:
        with transaction(resources.sessions) as session:
            if session.get(MergeRequestComment, (project_path, iid)) is None:
                session.execute(insert(MergeRequestComment).values(
                    project_path=project_path, merge_request_iid=iid, updated_at=utcnow()))
    except IntegrityError:
        pass  # another process made the row first; its lock orders the updates


def _latest_results(session, run: Row) -> list[TestRun]:
    """Return the newest finished run of each assignment on the run's branch."""
    candidates = session.scalars(
        select(TestRun)
        .where(TestRun.project_path == run.project_path, TestRun.ref == run.ref,
               TestRun.status.in_(COMMENTED_STATUSES), STANDS_FOR_ASSIGNMENT)
        .order_by(TestRun.assignment, TestRun.finished_at.desc()))
    latest: dict[str, TestRun] = {}
    for candidate in candidates:
        latest.setdefault(candidate.assignment, candidate)
    return list(latest.values())


def _project(run: Row) -> int | str:
    """Return how to name a run's project to GitLab."""
    return id_or_path(run.project_id, run.project_path)
