"""`POST /webhooks/gitlab`: verify, parse, decide, record, enqueue and answer; nothing more."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import DBAPIError

from pipeline.submissions.dispatch import release_submissions
from webhooks.app import services
from webhooks.auth import AuthError, verify_delivery
from webhooks.events import DeliveryError, parse_delivery
from webhooks.handlers.decisions import Context
from webhooks.handlers.router import decide
from webhooks.intake_plan import Delivered
from webhooks.ledger_faults import LEDGER_NOT_UPGRADED, ledger_fault
from webhooks.request_bodies import whole_body

log = logging.getLogger(__name__)

receiver = Blueprint("receiver", __name__)

DATABASE_DOWN = "the ledger database is unavailable; GitLab may retry or resend this delivery"
DUPLICATE_HEADER = "X-Gradehook-Duplicate"


@receiver.post("/webhooks/gitlab")
def gitlab_webhook():
    """Answer one GitLab webhook delivery."""
    svc = services()
    gitlab = svc.settings.gitlab
    body = whole_body(cache=False)
    headers = dict(request.headers)
    try:
        verify_delivery(headers, body, secret_token=gitlab.webhook_secret,
                        signing_token=gitlab.signing_token,
                        require_signature=gitlab.require_signature,
                        tolerance_seconds=gitlab.signature_tolerance_seconds, now=time.time())
    except AuthError as exc:
        log.warning("webhook refused from %s: %s", request.remote_addr, exc.reason)
        return jsonify(error="unauthorized", reason=exc.reason), 401
    try:
        event = parse_delivery(headers, body)
    except DeliveryError as exc:
        log.info("webhook rejected: %s (%s)", exc.reason, exc.field)
        return jsonify(error="bad delivery", reason=exc.reason, field=exc.field), exc.status
    course = svc.settings.course_for(event.project_path) if event.project_path else None
    try:
        context = Context(course=course,
                          assignments=svc.assignments.known(course) if course else (),
                          bot_username=gitlab.bot_username, retest_command=gitlab.retest_command)
        decision = decide(event, context)
        answer = svc.intake.submit(Delivered(event, decision, course))
    except DBAPIError as exc:
        fault = ledger_fault(exc)
        if fault is None:
            raise
        log.error("webhook %s: %s", event.delivery_key, fault.logged)
        return jsonify(error="service unavailable",
                       reason=DATABASE_DOWN if fault.passing else LEDGER_NOT_UPGRADED), 503
    if not answer.duplicate and answer.body.get("existing_runs"):
        # Submissions of runs that had ended already get no hand-off when a run ends: send now.
        release_submissions(svc.celery, svc.resources.sessions, answer.body["existing_runs"])
    log.info("webhook %s (%s %s): %s %s", event.delivery_key, event.kind, event.action or "",
             answer.status, answer.body.get("reason") or answer.body.get("runs"))
    response = jsonify(answer.body)
    if answer.duplicate:
        response.headers[DUPLICATE_HEADER] = "1"
    return response, answer.status
