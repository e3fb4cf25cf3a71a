"""Marshmallow schemas of the REST API: request bodies, query strings and answers."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from pipeline.ledger.models import RunStatus
from pipeline.directory_names import DIRECTORY_PATTERN, DIRECTORY_RULE, MAX_DIRECTORY_LENGTH
from pipeline.branch_names import MAX_BRANCH_NAME_LENGTH
from pipeline.repos import InvalidInputError, check_directory, check_project_path, check_ref, \
    check_sha
from pipeline.submissions.verdict import ACCEPTED, OUTCOMES as SUBMISSION_OUTCOMES

MAX_PROJECT_ID = 2 ** 63 - 1
MAX_PAGE = 1_000_000
# pipeline.project_paths.PROJECT_PATH_PATTERN with at least one namespace: `group/project`.
NAMESPACED_PROJECT_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)+$"
SHA_SCHEMA_PATTERN = r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$"
COMMIT_PREFIX_PATTERN = r"^[0-9a-fA-F]{7,64}$"
_STATUS_NAMES = "|".join(status.value for status in RunStatus)
STATUSES_PATTERN = rf"^({_STATUS_NAMES})(,({_STATUS_NAMES}))*$"
STATUSES_REFUSED = ("must be one or more of {choices}, separated by commas; "
                    "got {{input!r:.80}}".format(choices=", ".join(s.value for s in RunStatus)))
COMMIT_PREFIX_REFUSED = "must be a commit SHA or its first 7 or more characters, got {input!r:.80}"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PRINTABLE_PATTERN = r"^[^\x00-\x1F\x7F-\x9F]*$"  # no control character (C0, DEL, C1)
BRANCH_DOC = ("staff only: the branch to record the run on, so that the branch's score badge "
              "shows its result; a run of another branch does not answer. The caller vouches "
              "that the commit is on that branch: gradehook does not check")
DIRECTORY_DOC = DIRECTORY_RULE + " (letters and digits of any script, combining marks after them)"
PROJECT_INVALID = "must be a project id (a positive whole number) or a path like group/project"
NOT_A_BOOLEAN = "must be true or false"
CONTROL_CHARACTERS = "must not hold control characters"
REQUIRED_FOR_SCOPE = "required when scope is {scope}"
FINAL_IS_ACCEPTED = "final submissions are accepted ones: leave outcome out, or ask for accepted"
REGRADE_SCOPES = ("run", "student", "assignment", "branch_heads")
SCOPE_FIELDS = {"run": ("run_id",), "student": ("project", "assignment"),
                "assignment": ("assignment",), "branch_heads": ()}


def _checked(check: Callable[[str], str]) -> Callable[[str], None]:
    """Turn one of pipeline.repos's checks into a marshmallow validator."""
    def validator(value: str) -> None:
        try:
            check(value)
        except InvalidInputError as exc:
            raise ValidationError(str(exc)) from None
    return validator


class StrictBoolean(fields.Boolean):
    """A JSON true or false; strings and numbers that look like one are refused."""

    default_error_messages = {"invalid": NOT_A_BOOLEAN}

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ProjectRef(fields.Field):
    """A GitLab project as a numeric id, or as `namespace/project` (a digit string is an id)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"description": "GitLab project id or path with namespace", "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_PROJECT_ID},
            {"type": "string", "pattern": NAMESPACED_PROJECT_PATTERN, "maxLength": 255}]}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int | str:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if 1 <= value <= MAX_PROJECT_ID:
                return value
        elif isinstance(value, str) and "/" in value:
            try:
                return check_project_path(value)
            except InvalidInputError:
                pass
        raise ValidationError(PROJECT_INVALID)


class Sha(fields.String):
    """A full commit SHA (40 or 64 hexadecimal characters), returned lower-case."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=_checked(check_sha),
                         metadata={"pattern": SHA_SCHEMA_PATTERN, **kwargs.pop("metadata", {})},
                         **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> str:
        return super()._deserialize(value, attr, data, **kwargs).lower()


def _no_control_characters(value: str) -> None:
    """Refuse controls and lone surrogates: no course is named so, and PostgreSQL takes no NUL."""
    if any(unicodedata.category(character) in ("Cc", "Cs") for character in value):
        raise ValidationError(CONTROL_CHARACTERS)


def _course(**kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=128), _no_control_characters],
                         metadata={"description": "a course's name, as configured",
                                   "pattern": PRINTABLE_PATTERN}, **kwargs)


def _directory(**kwargs: Any) -> fields.String:
    metadata = kwargs.pop("metadata", {})
    # The pattern lets any character beyond ASCII through; the description says which are
    # taken (JSON Schema's `\w` would be ASCII only, Python's is not: the pattern uses none).
    description = f"{metadata.pop('description', 'an assignment directory')}: {DIRECTORY_DOC}"
    return fields.String(validate=_checked(check_directory),
                         metadata={"pattern": DIRECTORY_PATTERN.pattern,
                                   "maxLength": MAX_DIRECTORY_LENGTH, "description": description,
                                   **metadata}, **kwargs)


class TestCreateSchema(Schema):
    """Body of POST /api/tests and /api/tests-celery: what to grade."""

    __test__ = False  # not a pytest class

    directory = _directory(required=True, metadata={
        "description": "assignment directory, as in the reference repository"})
    version_identifier = Sha(required=True, metadata={"description": "commit SHA to grade"})
    submit = StrictBoolean(load_default=False, metadata={
        "description": "also hand the commit in as a submission of the assignment"})
    project = ProjectRef(load_default=None, allow_none=True)
    retry = StrictBoolean(load_default=False, metadata={
        "description": "grade again a commit whose latest result is failed or error"})
    branch = fields.String(load_default=None, allow_none=True, validate=_checked(check_ref),
                           metadata={"description": BRANCH_DOC,
                                     "maxLength": MAX_BRANCH_NAME_LENGTH})


class TestRunResponseSchema(Schema):
    """Answer of POST /api/tests and /api/tests-celery: the run that grades the commit."""

    __test__ = False

    id = fields.String(required=True, metadata={"description": "run id"})
    test_system_id = fields.String(required=True, metadata={
        "description": "task id: follow it with GET /api/tasks/{task_id}"})
    status = fields.Enum(RunStatus, by_value=True, required=True)
    stage = fields.String(required=True)
    percentage = fields.Integer(required=True)
    created = fields.Boolean(required=True, metadata={
        "description": "false when a run already grading the commit is returned"})
    backend = fields.String(required=True, validate=validate.OneOf(("celery", "local")))
    project = fields.String(required=True)
    project_id = fields.Integer(required=True, allow_none=True)
    directory = fields.String(required=True)
    version_identifier = fields.String(required=True)
    submission_task_id = fields.String(required=True, allow_none=True, metadata={
        "description": "task id of the submission's processing (submit: true), else null"})
    result_url = fields.String(required=True)


class TaskStateSchema(Schema):
    """Answer of GET /api/tasks/{task_id}: a task's state and its run's progress.

    A submission's task names the run graded for it and shows the submission as its result.
    """

    task_id = fields.String(required=True)
    state = fields.String(required=True, metadata={
        "description": "Celery state: PENDING, STARTED, PROGRESS, RETRY, SUCCESS, FAILURE"})
    ready = fields.Boolean(required=True, metadata={"description": "the task has ended"})
    run_id = fields.String(required=True, allow_none=True)
    status = fields.Enum(RunStatus, by_value=True, required=True, allow_none=True)
    stage = fields.String(required=True, allow_none=True)
    percentage = fields.Integer(required=True, allow_none=True)
    reason = fields.String(required=True, allow_none=True)
    result = fields.Dict(required=True, allow_none=True, metadata={
        "description": "what the task returned, for tasks that are not runs; for a "
                       "submission's task: submission_id, outcome (pending, accepted, "
                       "refused, error) and late"})


class RunSchema(Schema):
    """One test run as the API shows it."""

    id = fields.String(required=True)
    course = fields.String(required=True)
    assignment = fields.String(required=True)
    project_id = fields.Integer(required=True, allow_none=True)
    project_path = fields.String(required=True)
    ref = fields.String(required=True, allow_none=True)
    commit_sha = fields.String(required=True)
    merge_request_iid = fields.Integer(required=True, allow_none=True)
    kind = fields.String(required=True)
    status = fields.Enum(RunStatus, by_value=True, required=True)
    status_reason = fields.String(required=True, allow_none=True)
    stage = fields.String(required=True)
    percentage = fields.Integer(required=True, attribute="progress")
    score = fields.Float(required=True, allow_none=True)
    tests_passed = fields.Integer(required=True, allow_none=True)
    tests_total = fields.Integer(required=True, allow_none=True)
    test_system_id = fields.String(required=True, allow_none=True, attribute="celery_task_id")
    attempts = fields.Integer(required=True)
    reference_sha = fields.String(required=True, allow_none=True)
    received_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    report_refused = fields.String(required=True, allow_none=True, metadata={
        "description": "staff tokens only: why GitLab refused the run's update for good (its "
                       "commit status or merge request comments, or a decided submission's "
                       "comment showing its grade); asked for again once GitLab takes an update "
                       "of its project"})
    result_url = fields.String(required=True)


class RunDetailSchema(RunSchema):
    """One test run with its full report (the report is shown to staff tokens only)."""

    report = fields.Dict(allow_none=True, metadata={"description": "staff tokens only"})


class PageSchema(Schema):
    """Where a page of a listing is in it: a subclass says what its items are."""

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class RunPageSchema(PageSchema):
    """A page of runs, newest first."""

    items = fields.List(fields.Nested(RunSchema), required=True)


class RunStatuses(fields.Field):
    """One run status or several separated by commas (`passed,failed`): a tuple of them."""

    default_error_messages = {"invalid": STATUSES_REFUSED}
    # Several statuses as the parameter takes them, shown to a caller who gives it again for each.
    several_values_example = "passed,failed"

    def _deserialize(self, value: Any, attr, data, **kwargs) -> tuple[RunStatus, ...]:
        if not isinstance(value, str) or not re.fullmatch(STATUSES_PATTERN, value):
            raise self.make_error("invalid", input=value)
        return tuple(RunStatus(name) for name in dict.fromkeys(value.split(",")))


class ListingQuerySchema(Schema):
    """What every listing's query string may say: a project, course and assignment, a page."""

    project = ProjectRef()
    course = _course()
    assignment = _directory()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(validate=validate.Range(min=1))


class RunQuerySchema(ListingQuerySchema):
    """Query string of GET /api/runs."""

    commit = fields.String(validate=validate.Regexp(COMMIT_PREFIX_PATTERN,
                                                    error=COMMIT_PREFIX_REFUSED), metadata={
        "description": "a commit SHA or its first 7 or more characters"})
    status = RunStatuses(metadata={
        "type": "string", "pattern": STATUSES_PATTERN,
        "example": RunStatuses.several_values_example,
        "description": "a run status, or several separated by commas: runs with any of them. "
                       "Left out, runs of every status are listed, those that graded nothing "
                       "too (superseded, or cancelled: the push did not change the "
                       "assignment, its merge request was closed)"})


class SubmissionSchema(Schema):
    """One submission as the API shows it, with its test run's score."""

    id = fields.String(required=True)
    course = fields.String(required=True)
    assignment = fields.String(required=True)
    project_id = fields.Integer(required=True, allow_none=True)
    project_path = fields.String(required=True)
    commit_sha = fields.String(required=True)
    branch = fields.String(required=True, allow_none=True)
    merge_request_iid = fields.Integer(required=True, allow_none=True)
    source = fields.String(required=True, validate=validate.OneOf(("api", "merge_request")))
    outcome = fields.String(required=True, validate=validate.OneOf(SUBMISSION_OUTCOMES))
    reason = fields.String(required=True, allow_none=True)
    late = fields.Boolean(required=True)
    counted_at = fields.DateTime(required=True, allow_none=True, metadata={
        "description": "when gradehook first received the commit: what the deadline is "
                       "judged by"})
    deadline = fields.DateTime(required=True, allow_none=True)
    decided_at = fields.DateTime(required=True, allow_none=True)
    submissions_used = fields.Integer(required=True, allow_none=True, metadata={
        "description": "accepted submissions of the assignment with this one, when judged"})
    submission_limit = fields.Integer(required=True, allow_none=True)
    run_id = fields.String(required=True, allow_none=True)
    score = fields.Float(required=True, allow_none=True, metadata={
        "description": "the test run's score, 0 to 1"})
    tests_passed = fields.Integer(required=True, allow_none=True)
    tests_total = fields.Integer(required=True, allow_none=True)
    result_url = fields.String(required=True, allow_none=True)


class MissingGradeSchema(Schema):
    """A student's assignment that a gradebook has no grade of, and why."""

    course = fields.String(required=True)
    project_path = fields.String(required=True)
    assignment = fields.String(required=True)
    why = fields.String(required=True, metadata={
        "description": "'no submission', else what became of the student's latest "
                       "submission of the assignment: 'refused: late', 'refused: over the "
                       "limit', 'refused' (for another reason), 'waiting to be decided' or "
                       "'not processed' (an error); 'no push received' for a student project "
                       "GitLab lists that gradehook has no run or submission of"})


class SubmissionPageSchema(PageSchema):
    """A page of submissions."""

    items = fields.List(fields.Nested(SubmissionSchema), required=True)
    missing = fields.List(fields.Nested(MissingGradeSchema), required=True, allow_none=True,
                          metadata={"description": "a gradebook's (final=true, without outcome "
                                                   "or late): each grade it lacks, by project "
                                                   "and assignment, the same on every page: "
                                                   "each student the ledger knows of the "
                                                   "course (a project with any run or "
                                                   "submission), or the course's "
                                                   "student_projects name and GitLab last "
                                                   "listed, "
                                                   "with no accepted submission of an "
                                                   "assignment any student handed in; null "
                                                   "otherwise"})
    roster_problems = fields.List(fields.String(), required=True, allow_none=True, metadata={
        "description": "a gradebook's: why the student projects of a course, or of a group of "
                       "it, are not in GitLab's last listing, which the ledger keeps "
                       "(gradehook lists them on an interval): never listed yet, or that "
                       "listing, at the time it names, failed (GitLab unreachable or refusing, "
                       "no token), so that missing shows their students who never pushed as "
                       "the listing before read them, at the time it names, or none; empty "
                       "when the last listing read them all; null outside a gradebook"})


class SubmissionQuerySchema(ListingQuerySchema):
    """Query string of GET /api/submissions."""

    outcome = fields.String(validate=validate.OneOf(SUBMISSION_OUTCOMES))
    late = fields.Boolean(truthy={"true"}, falsy={"false"}, metadata={"type": "boolean"},
                          error_messages={"invalid": NOT_A_BOOLEAN})
    final = fields.Boolean(load_default=False, truthy={"true"}, falsy={"false"},
                           error_messages={"invalid": NOT_A_BOOLEAN}, metadata={
        "type": "boolean",
        "description": "true: each student's last accepted submission of each assignment "
                       "(by when gradehook first received its commit), the one a gradebook "
                       "takes, listed by project and assignment"})

    @validates_schema
    def _final_is_accepted(self, data: dict, **kwargs: Any) -> None:
        if data.get("final") and data.get("outcome") not in (None, ACCEPTED):
            raise ValidationError(FINAL_IS_ACCEPTED, "outcome")


class RegradeRequestSchema(Schema):
    """Body of POST /api/regrade: what to grade again."""

    scope = fields.String(required=True, validate=validate.OneOf(REGRADE_SCOPES), metadata={
        "description": "run: one run (run_id); student: the latest graded commit of one "
                       "project's assignment and that of its final submission (project, "
                       "assignment); assignment: those, in every "
                       "project (assignment, optional course); branch_heads: every student "
                       "branch head without a result (optional course), found through GitLab"})
    run_id = fields.String(validate=validate.Regexp(ID_PATTERN))
    project = ProjectRef()
    assignment = _directory()
    course = _course()

    @validates_schema
    def _scope_fields(self, data: dict, **kwargs: Any) -> None:
        scope = data.get("scope")
        missing = [name for name in SCOPE_FIELDS.get(scope, ()) if data.get(name) is None]
        if missing:
            raise ValidationError({name: [REQUIRED_FOR_SCOPE.format(scope=scope)]
                                   for name in missing})


class RegradeResponseSchema(Schema):
    """Answer of POST /api/regrade."""

    scope = fields.String(required=True)
    runs = fields.List(fields.String(), required=True, metadata={
        "description": "runs created and sent to the low_priority queue"})
    existing_runs = fields.List(fields.String(), required=True, metadata={
        "description": "runs already queued or running for those commits"})
    task_id = fields.String(required=True, allow_none=True, metadata={
        "description": "for branch_heads: the regrade task that finds the heads"})


class TaskBriefSchema(Schema):
    """A task a worker holds."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    run_id = fields.String(required=True, allow_none=True)
    started_at = fields.DateTime(required=True, allow_none=True)


class WorkerSchema(Schema):
    """One Celery worker: its queues and the tasks it runs and holds."""

    name = fields.String(required=True)
    queues = fields.List(fields.String(), required=True)
    active = fields.List(fields.Nested(TaskBriefSchema), required=True)
    reserved = fields.List(fields.Nested(TaskBriefSchema), required=True)


class RunBacklogSchema(Schema):
    """The runs waiting for a worker and those being graded, as health measures them."""

    queued = fields.Integer(required=True)
    running = fields.Integer(required=True, metadata={
        "description": "being graded, or waiting to be tried again"})
    oldest_queued_seconds = fields.Integer(required=True, allow_none=True, metadata={
        "description": "how long the oldest queued run has waited since it was queued; null "
                       "when none is queued"})


class WorkersStatusSchema(Schema):
    """Answer of GET /api/tasks/workers/status."""

    workers = fields.List(fields.Nested(WorkerSchema), required=True)
    timeout_seconds = fields.Float(required=True)
    runs = fields.Nested(RunBacklogSchema, required=True, allow_none=True, metadata={
        "description": "the backlog, as health gives it: null when the database cannot be "
                       "read"})


class ErrorSchema(Schema):
    """An error answer."""

    error = fields.String(required=True)
    reason = fields.String(required=True)
    field = fields.String(allow_none=True, metadata={"description": "the field at fault"})
    field_errors = fields.Dict(data_key="fields", allow_none=True,
                               metadata={"description": "every field's complaints"})


class HealthSchema(Schema):
    """Answer of GET /api/tests-celery/health."""

    status = fields.String(required=True, validate=validate.OneOf(("healthy", "unhealthy")))
    backend = fields.String(required=True)
    broker = fields.String(required=True)
    broker_status = fields.String(required=True, validate=validate.OneOf(("up", "down")))
    broker_error = fields.String(required=True, allow_none=True)
    database = fields.String(required=True, validate=validate.OneOf(("up", "down")))
    database_error = fields.String(required=True, allow_none=True)
    workers = fields.Integer(required=True)
    worker_names = fields.List(fields.String(), required=True)
    problems = fields.List(fields.String(), required=True, metadata={
        "description": "one line per course whose reference the workers could not fetch, "
                       "which has no assignment, or which lacks a listed assignment's "
                       "test.yaml; these leave the status as it is"})
    runs = fields.Nested(RunBacklogSchema, required=True, allow_none=True, metadata={
        "description": "the backlog: null when the database is down. It leaves the status as "
                       "it is: a backlog is load, not a fault (a whole assignment's regrade "
                       "queues a run per student at once); alert on oldest_queued_seconds at "
                       "the wait your courses accept"})
