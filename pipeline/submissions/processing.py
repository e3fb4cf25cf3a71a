"""The submission_processing flow as plain functions: wait for the run, inspect, judge, publish.

A submission is decided once, in the ledger, before GitLab is changed; publishing then brings
GitLab in line with that decision and may be repeated until it succeeds. Refusals never create
or move a branch. Both steps hold a lock per student and assignment, so limits count exactly.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import NamedTuple

from celery import Celery
from sqlalchemy import delete, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gitlab_client import (GitLabError, MergeRequest, NotFoundGitLabError,
                           TransientGitLabError)
from pipeline.config import CourseSettings
from pipeline.context import Resources
from pipeline.feedback import result_url
from pipeline.grading.errors import SpecError
from pipeline.ledger.db import transaction
from pipeline.ledger.models import UNGRADED_STATUSES, RunStatus, Submission, TestRun, utcnow
from pipeline.reports.comment import comment_marker
from pipeline.reports.model import COURSE_ERROR_REASON, read_report, reason_for_students
from pipeline.reports.submission import (SubmissionAllowance, SubmissionSummary,
                                         decided_elsewhere_markdown,
                                         nothing_handed_in_markdown,
                                         submission_comment_markdown)
from pipeline.regrade import REGRADE_KIND
from pipeline.repos import MissingCommitError, RepositoryError
from pipeline.submissions import gitlab_side
from pipeline.submissions.dispatch import publisher, release_submissions
from pipeline.submissions.ledger import (API_SOURCE, accepted_count, counted_time,
                                         earlier_pending, graded_commit_number,
                                         lock_for_judging, lock_student_assignment,
                                         merge_request_history, others_through,
                                         pending_runs, regraded_by, shown_run)
from pipeline.submissions.notices import mark_told, notices_of
from pipeline.submissions.recovery import schedule_retry
from pipeline.submissions.regrading import ended_in_our_error, grade_again
from pipeline.submissions.rules import SubmissionRules, load_rules
from pipeline.submissions.succession import hand_over
from pipeline.submissions.verdict import (ACCEPTED, ERROR, MERGE_REQUEST_CLOSED,
                                          MERGE_REQUEST_MERGED, MERGE_REQUEST_RETARGETED,
                                          PENDING, SubmissionFacts, Verdict, judge,
                                          recorded_reasons, refused_as_late)

log = logging.getLogger(__name__)

DISCARDED, MISSING = "discarded", "missing"
NO_SUCH_SUBMISSION = "no submission {submission_id}"
NOT_IN_MERGE_REQUEST = "the merge request does not change {assignment}"
HANDED_IN_INSTEAD = ("commit {sha} is handed in through the merge request !{iid} instead, whose "
                     "comment shows its outcome")
RUN_ERROR = "the test run of this commit ended in error: {reason}"
RUN_ERROR_UNEXPLAINED = "the test run of this commit ended in error"
TARGET_MISSING = ("the project has no branch {branch}, which submissions target; course staff "
                  "must create it")
COURSE_GONE = "course {course!r} is no longer configured"
NO_GITLAB = "submissions need GitLab: gitlab.token (GITLAB_TOKEN) is not set"
PUBLISH_FAILED = "accepted, but GitLab could not be updated: {detail}"
# What publishing may change on a submission, written once GitLab has been brought in line.
PUBLISHED_COLUMNS = ("branch", "merge_request_iid", "outcome", "reason", "submission_limit",
                     "submissions_used", "finished_at")


@dataclass(frozen=True)
class SubmissionOutcome:
    """Where a submission_processing call left a submission (the task's result).

    `outcome` is `pending` while it waits for its test run, `discarded` when a merge request did
    not hand in that assignment after all, `missing` when there is no such submission.
    """

    submission_id: str
    outcome: str
    reason: str | None = None
    late: bool = False
    merge_request_iid: int | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Inspection:
    """What git and GitLab show about a submission: its changes, presence and blockers."""

    changed: tuple[str, ...] = ()
    present: bool = False
    blocked: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()  # the merge request is closed or points elsewhere
    problem: str | None = None  # the course's or gradehook's side is broken: an error

    def touches(self, assignment: str) -> bool:
        """Tell whether the changes reach into an assignment's directory."""
        return any(_inside(path, assignment) for path in self.changed)


def process_submission(resources: Resources, celery: Celery,
                       submission_id: str) -> SubmissionOutcome:
    """Decide a submission once its test run has ended, then publish the decision on GitLab;
    once it is finished, send the student's later submissions of the assignment that wait."""
    with resources.sessions() as session:
        submission = session.get(Submission, submission_id)
    if submission is None:
        return _missing(submission_id)
    outcome = _process(resources, celery, submission_id)
    _release_later_ones(resources, celery, submission, outcome)
    return outcome


def _release_later_ones(resources: Resources, celery: Celery, submission: Submission,
                        outcome: SubmissionOutcome) -> None:
    """Send the student's pending submissions of the assignment again once this one is no
    longer pending: those that waited for it to be decided first go on."""
    if outcome.outcome != PENDING:
        with resources.sessions() as session:
            runs = pending_runs(session, submission)
        release_submissions(celery, resources.sessions, runs)


def _process(resources: Resources, celery: Celery, submission_id: str) -> SubmissionOutcome:
    """Decide and publish a submission, or tell why it waits."""
    with resources.sessions() as session:
        submission = session.get(Submission, submission_id)
    if submission is None:
        return _missing(submission_id)
    if submission.finished_at is not None:
        return _outcome_of(submission)
    if submission.outcome == PENDING:
        return _decide_and_publish(resources, celery, submission)
    return _publish(resources, submission_id)


def tell_decided_elsewhere(resources: Resources, submission_id: str,
                           merge_request_iid: int) -> SubmissionOutcome:
    """Write the comment of a merge request that handed in a commit whose submission another
    merge request (or the API) holds: where and how it was decided; the submission is left as
    it is. A pending submission is left to its publishing, which tells every such merge request.

    It takes the publishing turn of the student's assignment (the submission's row unlocked),
    so a submission of a newer commit through that merge request writes its comment before or
    after, never alongside; a merge request whose head moved on since is left to that newer
    submission's comment, as one that took the submission over since is to its processing.
    """
    with transaction(resources.sessions) as session:
        submission = _in_publishing_turn(session, submission_id)
        if submission is None:
            return _missing(submission_id)
        if resources.gitlab is None or submission.outcome == PENDING:
            return _outcome_of(submission)
        if submission.merge_request_iid != merge_request_iid:
            _tell_at_its_commit(resources, session, submission, merge_request_iid)
        mark_told(session, submission_id, [merge_request_iid])
    return _outcome_of(submission)


class RefusedComment(NamedTuple):
    """A submission's comment GitLab refused to write: on which merge request, and its answer."""

    merge_request_iid: int
    error: GitLabError


def show_regrade(resources: Resources, run_id: str) -> list[RefusedComment]:
    """Write again the comment of each decided submission that a run graded again (its commit
    and assignment's, decided on another run): it shows the run's score, saying so.

    It takes each one's publishing turn, as every comment of a submission is written in; one
    whose merge request GitLab no longer shows is passed over: there is no one to tell. One
    GitLab refuses otherwise (403, say) is passed over too, and returned: it is not the run's
    report, whose own updates stand. A passing fault (TransientGitLabError) is raised for a
    retry.
    """
    if resources.gitlab is None:
        return []
    with resources.sessions() as session:
        regraded = regraded_by(session, run_id)
    refused = []
    for submission_id in regraded:
        with transaction(resources.sessions) as session:
            submission = _in_publishing_turn(session, submission_id)
            if submission is None or submission.finished_at is None:
                continue  # handed in again meanwhile: its publishing writes the comment
            try:
                _comment(resources, session, submission)
            except NotFoundGitLabError as exc:
                log.warning("submission %s: its comment not written again after run %s: %s",
                            submission_id, run_id, exc)
                continue
            except TransientGitLabError:
                raise
            except GitLabError as exc:
                log.error("submission %s: GitLab refused its comment after run %s: %s",
                          submission_id, run_id, exc)
                # The merge request written first: the one it is handed in through, if any.
                refused.append(RefusedComment(
                    submission.merge_request_iid or submission.previous_merge_request_iid, exc))
                continue
        log.info("submission %s: its comment shows run %s's grade", submission_id, run_id)
    return refused


def not_told(resources: Resources, submission_id: str, merge_request_iid: int,
             reason: str) -> SubmissionOutcome:
    """Log that a merge request could not be told where its commit was handed in; the
    submission is left as it is."""
    log.warning("submission %s: merge request !%d not told that its commit is handed in "
                "already: %s", submission_id, merge_request_iid, reason)
    with resources.sessions() as session:
        submission = session.get(Submission, submission_id)
    return _outcome_of(submission) if submission is not None else _missing(submission_id)


def end_with_error(resources: Resources, submission_id: str, reason: str,
                   task_id: str | None) -> SubmissionOutcome:
    """End a submission in an error of ours (time limit, retries exhausted, refused call, its
    run failing on us) and publish it, as the processing of task_id.

    One handed in again since that processing took it up (a reopen made it pending under a new
    task id) is left as it is to its new processing, which may have decided it already.

    Within `submission_retry_hours` of its first such error the reconciler processes it again
    later (pipeline.submissions.recovery), and its comment says so. GitLab failing here too
    leaves the error decided but not published, which the reconciler sends on to be published
    (a lost submission's resend) while it is to be tried again; after that, it ends unpublished,
    unless it was handed in again meanwhile. A publish of the submission under way (another
    worker's, for a duplicate message) ends first, and one that finished stands. The student's
    later submissions of the assignment that waited for it to be decided first are sent again.
    """
    outcome = _end_with_error(resources, submission_id, reason, task_id)
    with resources.sessions() as session:
        submission = session.get(Submission, submission_id)
    if submission is not None:
        _release_later_ones(resources, publisher(resources.settings), submission, outcome)
    return outcome


def _end_with_error(resources: Resources, submission_id: str, reason: str,
                    task_id: str | None) -> SubmissionOutcome:
    """End a submission in an error of ours and publish it (end_with_error)."""
    with transaction(resources.sessions) as session:
        submission = _in_publishing_turn(session, submission_id, for_update=True)
        if submission is None:
            return _missing(submission_id)
        if submission.finished_at is not None:
            return _outcome_of(submission)
        if submission.celery_task_id != task_id:
            log.info("submission %s: handed in again while it was processed; its error (%s) "
                     "is left out", submission_id, reason)
            return _outcome_of(submission)
        if submission.outcome == ACCEPTED:
            reason = PUBLISH_FAILED.format(detail=reason)
        now = utcnow()
        _as_error(submission, reason)
        submission.decided_at = submission.decided_at or now
        schedule_retry(submission, now, dt.timedelta(
            hours=resources.settings.worker.submission_retry_hours))
    log.warning("submission %s: error: %s; %s", submission_id, reason,
                f"to be processed again at {submission.retry_at:%Y-%m-%d %H:%M:%S}"
                if submission.retry_at else "not to be processed again")
    try:
        return _publish(resources, submission_id)
    except (GitLabError, RepositoryError, SQLAlchemyError) as exc:  # failing still
        if submission.retry_at is not None:
            log.warning("submission %s: its error is not on GitLab yet: %s", submission_id, exc)
            return _outcome_of(submission)
        log.warning("submission %s: its error could not be published: %s", submission_id, exc)
        return _finish(resources, submission)


def _decide_and_publish(resources: Resources, celery: Celery,
                        submission: Submission) -> SubmissionOutcome:
    """Judge a pending submission once its run has ended, then publish the decision."""
    with resources.sessions() as session:
        run = session.get(TestRun, submission.run_id)
    if not run.status.final:
        return _waiting(submission, run.id)
    course = resources.settings.course_named(submission.course)
    if course is None:
        return _publish_error(resources, submission, COURSE_GONE.format(course=submission.course))
    inspection = _inspect(resources, course, submission)
    if inspection.withdrawn and hand_over(resources, course, submission):
        return _process(resources, celery, submission.id)
    if submission.source != API_SOURCE and inspection.problem is None \
            and not inspection.touches(submission.assignment):
        return _discard(resources, submission)
    if run.status in UNGRADED_STATUSES:
        run = grade_again(resources, celery, course, submission)
        if not run.status.final:
            return _waiting(submission, run.id)
    if inspection.problem is None and ended_in_our_error(run):
        # The reconciler grades the commit again when it processes the submission again.
        return end_with_error(resources, submission.id, _run_problem(run),
                              submission.celery_task_id)
    problem = inspection.problem or _run_problem(run)
    if problem is not None:
        return _publish_error(resources, submission, problem)
    try:
        rules = _rules(resources, course, run)
    except SpecError as exc:
        # The student reads it, of a hiddenTests entry only where it is: staff read it whole in
        # meta.yaml at that place, and in the log.
        log.info("submission %s: the rules of %s cannot be read: %s", submission.id,
                 run.assignment, exc)
        return _publish_error(resources, submission, COURSE_ERROR_REASON.format(
            detail="\n".join(problem.shown for problem in exc.course_problems)))
    except MissingCommitError as exc:
        return _publish_error(resources, submission, COURSE_ERROR_REASON.format(detail=exc))
    if rules.max_submissions is not None:
        with resources.sessions() as session:
            earlier = earlier_pending(session, submission)
        if earlier is not None:
            # Its decision sends this one again (process_submission).
            return _waiting(submission, run.id, f"submission {earlier.id}, received before it, "
                                                "to be decided first")
    if not _judge_and_record(resources, submission, inspection, rules):
        log.info("submission %s: handed in again while it was inspected; inspecting again",
                 submission.id)
        return _process(resources, celery, submission.id)
    return _publish(resources, submission.id)


def _inspect(resources: Resources, course: CourseSettings, submission: Submission) -> Inspection:
    """Read from git and GitLab what the submission changes and what may block it."""
    gitlab, repos = resources.gitlab, resources.repositories
    if gitlab is None:
        return Inspection(problem=NO_GITLAB)
    project, path = gitlab_side.project_of(submission), submission.project_path
    blocked: list[str] = []
    withdrawn: list[str] = []
    merged_base = None  # where a merged merge request's changes started
    if submission.source == API_SOURCE:
        branch = gitlab_side.submission_branch(submission.assignment)
        target = course.submission_branch_for(submission.assignment)
        merged = gitlab_side.merged_merge_request(gitlab, project, branch, target)
        if merged is not None:
            blocked.append(MERGE_REQUEST_MERGED.format(iid=merged.iid,
                                                       assignment=submission.assignment))
        block = gitlab_side.forward_block(repos, path, branch,
                                          gitlab_side.branch_head(gitlab, project, branch),
                                          submission.commit_sha)
        if block is not None:
            blocked.append(block)
    else:
        merge_request = gitlab.get_merge_request(project, submission.merge_request_iid)
        target = course.submission_branch_for(submission.assignment)
        withdrawn += _withdrawals(merge_request, target)
        if merge_request.state in gitlab_side.MERGING_STATES:
            # The target holds the commit now (or is about to): its changes start where the
            # merge request's did.
            merged_base = merge_request.base_sha
    target_sha = gitlab_side.branch_head(gitlab, project, target)
    if target_sha is None:
        return Inspection(problem=TARGET_MISSING.format(branch=target))
    repos.ensure_commit(path, submission.commit_sha)
    base_from = merged_base or target_sha
    repos.ensure_commit(path, base_from)
    base = repos.merge_base(path, base_from, submission.commit_sha)
    changed = (repos.changed_paths(path, base, submission.commit_sha) if base
               else repos.list_files(path, submission.commit_sha))
    return Inspection(changed=tuple(changed),
                      present=repos.has_path(path, submission.commit_sha, submission.assignment),
                      blocked=tuple(blocked), withdrawn=tuple(withdrawn))


def _withdrawals(merge_request: MergeRequest, submission_branch: str) -> list[str]:
    """Return why a student's merge request no longer hands its commit in, if it does not.

    Merged (or being merged) into the submission branch, it handed it in: the merge is the
    student's hand-in.
    """
    if merge_request.target_branch != submission_branch:
        # Retargeted since it was opened (and maybe merged there): it hands nothing in.
        return [MERGE_REQUEST_RETARGETED.format(iid=merge_request.iid,
                                                target=merge_request.target_branch,
                                                branch=submission_branch)]
    if merge_request.state not in gitlab_side.HANDING_IN_STATES:
        return [MERGE_REQUEST_CLOSED.format(iid=merge_request.iid, branch=submission_branch)]
    return []


def _run_problem(run: TestRun) -> str | None:
    """Return why a final run gives no grade to hand in (an error), or None: of a course error,
    what students read of it (the run's reason, for staff, may quote hidden tests)."""
    if run.status != RunStatus.ERROR:
        return None
    reason = reason_for_students(run.status_reason, run.report)
    return RUN_ERROR.format(reason=reason) if reason else RUN_ERROR_UNEXPLAINED


def _rules(resources: Resources, course: CourseSettings, run: TestRun) -> SubmissionRules:
    """Load the assignment's rules from the configuration and the reference the run used."""
    repos = resources.repositories
    reference_sha = run.reference_sha or repos.resolve_branch(run.reference_project,
                                                              run.reference_ref)
    repos.ensure_commit(run.reference_project, reference_sha)
    reference = repos.tree(run.reference_project, reference_sha)
    return load_rules(course, run.assignment, reference / run.assignment)


def _judge_and_record(resources: Resources, submission: Submission, inspection: Inspection,
                      rules: SubmissionRules) -> bool:
    """Judge and record a pending submission, with its allowance when the rules limit it.

    Return False, recording nothing, when the verdict is a withdrawal but the commit was handed
    in again since `submission` was read (a reopen of its merge request, or a new one, came
    while GitLab was inspected, and its state then is not the state now), or was handed over
    to another merge request (a duplicate processing's succession): the withdrawal inspected
    is not that of the merge request holding it now.
    """
    with transaction(resources.sessions) as session:
        lock_for_judging(session, submission.project_path, submission.assignment)
        current = session.get(Submission, submission.id, with_for_update=True,
                              populate_existing=True)
        if current is None or current.outcome != PENDING:
            return True
        counted = counted_time(session, current)
        facts = SubmissionFacts(
            assignment=current.assignment, counted_at=counted, present=inspection.present,
            outside_paths=tuple(p for p in inspection.changed
                                if not _inside(p, current.assignment)),
            test_run_number=graded_commit_number(session, current),
            accepted_before=accepted_count(session, current), blocked=inspection.blocked,
            withdrawn=inspection.withdrawn)
        verdict = judge(facts, rules)
        if verdict.withdrawn and (current.hand_ins != submission.hand_ins
                                  or current.merge_request_iid != submission.merge_request_iid):
            return False
        _apply(current, verdict)
        current.counted_at, current.deadline = counted, rules.deadline
        if rules.max_submissions is not None:
            current.submission_limit = rules.max_submissions
            current.submissions_used = (facts.accepted_before
                                        + (1 if verdict.outcome == ACCEPTED else 0))
    log.info("submission %s (%s %s %s): %s%s", submission.id, submission.project_path,
             submission.assignment, submission.commit_sha[:12], verdict.outcome,
             " (late)" if verdict.late else "")
    return True


def _publish_error(resources: Resources, submission: Submission,
                   reason: str) -> SubmissionOutcome:
    """Record an error (no counting needed) on a still pending submission, then publish it."""
    verdict = Verdict(ERROR, (reason,), False)
    with transaction(resources.sessions) as session:
        current = session.get(Submission, submission.id, with_for_update=True,
                              populate_existing=True)
        if current is not None and current.outcome == PENDING:
            _apply(current, verdict)
    log.warning("submission %s: %s: %s", submission.id, verdict.outcome, verdict.reason)
    return _publish(resources, submission.id)


def _as_error(submission: Submission, reason: str) -> None:
    """Turn a submission into an error: it hands nothing in, so no limit counts it."""
    submission.outcome, submission.reason = ERROR, reason
    submission.submission_limit = submission.submissions_used = None


def _apply(submission: Submission, verdict: Verdict) -> None:
    submission.outcome, submission.reason, submission.late = (verdict.outcome, verdict.reason,
                                                              verdict.late)
    submission.withdrawn = verdict.withdrawn
    submission.decided_at = utcnow()


def _discard(resources: Resources, submission: Submission) -> SubmissionOutcome:
    """Drop a pending submission that its merge request turned out not to hand in.

    One that ended in an error of ours before may have its comment on the merge request,
    promising to process it again: that comment is written again without it first, in the
    publishing turn of the student's assignment, as every comment of a submission is.
    """
    reason = NOT_IN_MERGE_REQUEST.format(assignment=submission.assignment)
    with transaction(resources.sessions) as session:
        current = _in_publishing_turn(session, submission.id)
        if current is not None and current.outcome == PENDING:
            if current.failing_since is not None and resources.gitlab is not None:
                iid = current.merge_request_iid
                _write_comment(resources, current, iid,
                               [_summary(resources, session, each)
                                for each in others_through(session, current, iid)], reason)
            session.execute(delete(Submission).where(Submission.id == submission.id,
                                                     Submission.outcome == PENDING))
    log.info("submission %s discarded: %s", submission.id, reason)
    return SubmissionOutcome(submission.id, DISCARDED, reason,
                             merge_request_iid=submission.merge_request_iid,
                             run_id=submission.run_id)


def _finish(resources: Resources, errored: Submission) -> SubmissionOutcome:
    """Record a submission's error as finished without publishing it, if the submission still
    holds that error; one handed in again meanwhile (pending, or decided anew) is left to the
    processing that its new task id does."""
    with transaction(resources.sessions) as session:
        session.execute(update(Submission)
                        .where(*_holding(errored.id, errored.celery_task_id, ERROR))
                        .values(finished_at=utcnow())
                        .execution_options(synchronize_session=False))
        submission = session.get(Submission, errored.id, populate_existing=True)
    return _outcome_of(submission)


def _publish(resources: Resources, submission_id: str) -> SubmissionOutcome:
    """Bring GitLab in line with a decided submission: branch, merge request and comment.

    Publishers of a student's assignment take turns, but the submission's row is not locked
    while GitLab is called: a delivery handing the commit in again (a reopen of its merge
    request) updates that row, and a slow or rate-limited GitLab must not hold up webhook
    answers. What publishing changed is written at the end, if the submission still holds the
    decision published; one made pending again meanwhile (a reopen, the reconciler's retry) is
    left to the processing that its new task id does, which publishes in the next turn.
    """
    with transaction(resources.sessions) as session:
        submission = _in_publishing_turn(session, submission_id)
        if submission.finished_at is not None or submission.outcome == PENDING:
            return _outcome_of(submission)
        task_id, outcome = submission.celery_task_id, submission.outcome
        session.expunge(submission)  # no flush may lock its row: _record_published writes it
        if resources.gitlab is not None:
            _publish_on_gitlab(resources, session, submission)
            _tell_notified(resources, session, submission)
        submission.finished_at = utcnow()
        if not _record_published(session, submission, task_id, outcome):
            log.info("submission %s: handed in again while it was published; left to its "
                     "new processing", submission_id)
            return SubmissionOutcome(submission_id, PENDING)
    return _outcome_of(submission)


def _in_publishing_turn(session: Session, submission_id: str, *,
                        for_update: bool = False) -> Submission | None:
    """Take the publishing turn of a submission's student and assignment, then read the
    submission (its row locked if `for_update`); None when there is no such submission."""
    found = session.get(Submission, submission_id)
    if found is None:
        return None
    lock_student_assignment(session, found.project_path, found.assignment)
    return session.get(Submission, submission_id, with_for_update=for_update,
                       populate_existing=True)


def _record_published(session: Session, submission: Submission, task_id: str | None,
                      outcome: str) -> bool:
    """Write what publishing changed, and that it finished, if the submission still holds the
    outcome it was published with; tell whether it did."""
    written = session.execute(
        update(Submission)
        .where(*_holding(submission.id, task_id, outcome))
        .values({name: getattr(submission, name) for name in PUBLISHED_COLUMNS})
        .execution_options(synchronize_session=False))
    return written.rowcount == 1


def _holding(submission_id: str, task_id: str | None, outcome: str) -> tuple:
    """Return the conditions under which a submission still holds an unfinished outcome decided
    under a task: no reopen or retry made it pending again, to be decided anew, since."""
    return (Submission.id == submission_id,
            Submission.celery_task_id.is_not_distinct_from(task_id),
            Submission.outcome == outcome, Submission.finished_at.is_(None))


def _publish_on_gitlab(resources: Resources, session: Session, submission: Submission) -> None:
    gitlab, project = resources.gitlab, gitlab_side.project_of(submission)
    if submission.source == API_SOURCE:
        course = resources.settings.course_named(submission.course)
        target = course.submission_branch_for(submission.assignment) if course else None
        merge_request = None
        if submission.outcome == ACCEPTED and target is not None:
            merge_request = _hand_in(resources, submission, target)
        elif target is not None:
            merge_request = gitlab_side.open_merge_request_of(
                gitlab, project, gitlab_side.submission_branch(submission.assignment), target)
        submission.branch = gitlab_side.submission_branch(submission.assignment)
        submission.merge_request_iid = merge_request.iid if merge_request else None
    _comment(resources, session, submission)


def _hand_in(resources: Resources, submission: Submission, target: str) -> MergeRequest | None:
    """Put the submission branch at the commit and return its merge request (reused or new).

    A branch that moved elsewhere since the decision turns the submission into an error.
    """
    gitlab, project = resources.gitlab, gitlab_side.project_of(submission)
    branch = gitlab_side.submission_branch(submission.assignment)
    try:
        gitlab_side.put_branch_at(gitlab, resources.repositories, project,
                                  submission.project_path, branch, submission.commit_sha)
    except gitlab_side.BranchMoveError as exc:
        _as_error(submission, PUBLISH_FAILED.format(detail=exc))
        log.warning("submission %s: %s", submission.id, submission.reason)
        return gitlab_side.open_merge_request_of(gitlab, project, branch, target)
    return gitlab_side.open_or_reuse_merge_request(gitlab, project, submission.assignment,
                                                   target)


def _comment(resources: Resources, session: Session, submission: Submission) -> None:
    """Write the submission comment of the merge request, with every submission through it.

    The merge request the commit was handed in through before, if any, has its comment written
    again without it: its other submissions, else where the commit went. One handed in
    through the API without a merge request (refused, say) has that one's comment alone, saying
    how it was decided.
    """
    iid, previous = submission.merge_request_iid, submission.previous_merge_request_iid
    if iid is None:
        if previous is not None:
            _tell_where_decided(resources, session, submission, previous)
        return
    history = merge_request_history(session, submission, iid)
    _write_comment(resources, submission, iid,
                   [_summary(resources, session, each) for each in history])
    if previous is not None:
        _write_comment(resources, submission, previous,
                       [_summary(resources, session, each)
                        for each in others_through(session, submission, previous)],
                       HANDED_IN_INSTEAD.format(sha=submission.commit_sha[:12], iid=iid))


def _tell_notified(resources: Resources, session: Session, submission: Submission) -> None:
    """Tell the merge requests with a notice of the submission (they handed its commit in while
    another held it) where and how it was decided; the one it is handed in through now, and
    the one it was before (whose comment _comment writes), need no notice any more. One that
    GitLab no longer shows is passed over (_tell_at_its_commit): it fails no submission.
    """
    notified = [iid for iid, _ in notices_of(session, submission.id)]
    for iid in notified:
        if iid in (submission.merge_request_iid, submission.previous_merge_request_iid):
            continue
        _tell_at_its_commit(resources, session, submission, iid)
    if notified:
        mark_told(session, submission.id, notified)


def _tell_at_its_commit(resources: Resources, session: Session, submission: Submission,
                        iid: int) -> None:
    """Tell a merge request where and how its head commit was decided, unless its head has
    moved on since (a newer submission's comment is its own) or GitLab no longer shows it
    (deleted: there is no one to tell)."""
    try:
        merge_request = resources.gitlab.get_merge_request(gitlab_side.project_of(submission), iid)
    except NotFoundGitLabError as exc:
        log.warning("submission %s: merge request !%d not told: %s", submission.id, iid, exc)
        return
    if merge_request.sha != submission.commit_sha:
        log.info("submission %s: merge request !%d has moved on from its commit; not told",
                 submission.id, iid)
        return
    _tell_where_decided(resources, session, submission, iid)
    log.info("submission %s: merge request !%d told that its commit is handed in already",
             submission.id, iid)


def _tell_where_decided(resources: Resources, session: Session, submission: Submission,
                        iid: int) -> None:
    """Write the comment of a merge request that no longer hands the submission's commit in:
    where and how the commit was decided, and the submissions through that merge request."""
    marker = _comment_marker(submission, iid)
    body = decided_elsewhere_markdown(
        _summary(resources, session, submission), submission.merge_request_iid,
        [_summary(resources, session, each) for each in others_through(session, submission, iid)],
        marker)
    resources.gitlab.upsert_mr_note(gitlab_side.project_of(submission), iid, body, marker=marker)


def _write_comment(resources: Resources, submission: Submission, iid: int,
                   summaries: list[SubmissionSummary], reason: str | None = None) -> None:
    """Write the comment of the submission's assignment on a merge request: the submissions
    through it, or when there are none the reason why nothing is handed in."""
    marker = _comment_marker(submission, iid)
    body = submission_comment_markdown(summaries, marker) if summaries \
        else nothing_handed_in_markdown(submission.assignment, reason, marker)
    resources.gitlab.upsert_mr_note(gitlab_side.project_of(submission), iid, body, marker=marker)
    log.info("submission %s: comment on merge request !%d written", submission.id, iid)


def _comment_marker(submission: Submission, iid: int) -> str:
    """Return the marker of the comment of the submission's assignment on a merge request."""
    return comment_marker(f"submission:{submission.project_path}!{iid}:{submission.assignment}")


def _summary(resources: Resources, session: Session, submission: Submission
             ) -> SubmissionSummary:
    """Return what a comment shows of a submission, with the latest grading of its commit."""
    run = shown_run(session, submission)
    graded = run is not None and run.status in (RunStatus.PASSED, RunStatus.FAILED)
    # Graded again once decided: another run's grade than the decision's own, and later.
    graded_again = (graded and run.id != submission.run_id and submission.decided_at is not None
                    and run.finished_at > submission.decided_at)
    report = read_report(run.report) if graded else None
    return SubmissionSummary(
        assignment=submission.assignment, commit_sha=submission.commit_sha,
        outcome=submission.outcome,
        retrying=submission.outcome == ERROR and submission.retry_at is not None,
        received_at=submission.counted_at or submission.received_at,
        reasons=recorded_reasons(submission.outcome, submission.reason),
        late=submission.late,
        deadline=submission.deadline,
        score=run.score if graded else None,
        basis=report.basis if report is not None else None,
        result_url=result_url(resources, run.id) if run is not None else None,
        allowance=_allowance(submission),
        graded_again_at=run.finished_at if graded_again else None,
        regraded=graded_again and run.kind == REGRADE_KIND)


def _allowance(submission: Submission) -> SubmissionAllowance | None:
    """Return the allowance recorded when the submission was judged, if the rules set one:
    none is left once it was refused as late."""
    if submission.submission_limit is None or submission.submissions_used is None:
        return None
    return SubmissionAllowance(used=submission.submissions_used,
                               limit=submission.submission_limit,
                               closed=refused_as_late(submission.outcome, submission.reason))


def _waiting(submission: Submission, run_id: str,
             waits_for: str | None = None) -> SubmissionOutcome:
    log.info("submission %s waits for %s", submission.id, waits_for or f"run {run_id}")
    return SubmissionOutcome(submission.id, PENDING, run_id=run_id,
                             merge_request_iid=submission.merge_request_iid)


def _missing(submission_id: str) -> SubmissionOutcome:
    return SubmissionOutcome(submission_id, MISSING,
                             NO_SUCH_SUBMISSION.format(submission_id=submission_id))


def _outcome_of(submission: Submission) -> SubmissionOutcome:
    return SubmissionOutcome(submission.id, submission.outcome, submission.reason,
                             submission.late, submission.merge_request_iid, submission.run_id)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")
