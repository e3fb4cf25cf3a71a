"""The handlers of every event kind composed into one router, and the decision it makes."""

from __future__ import annotations

from webhooks.events import Event
from webhooks.handlers import merge_request, note, push
from webhooks.handlers.decisions import Context, Decision, Ignored
from webhooks.handlers.routing import Router

REASON_UNHANDLED = "{header} events are not graded"
REASON_UNKNOWN_PROJECT = "no course claims project {path}"

router = Router(push.router, merge_request.router, note.router)


def decide(event: Event, context: Context) -> Decision:
    """Decide, without I/O, what grading work an event asks for, or why it asks for none."""
    handler = router.handler_for(event)
    if handler is None:
        return Ignored(REASON_UNHANDLED.format(header=event.event_header))
    if context.course is None:
        return Ignored(REASON_UNKNOWN_PROJECT.format(path=event.project_path))
    return handler(event, context)
