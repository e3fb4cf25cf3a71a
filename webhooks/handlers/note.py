"""Note events: the retest command on a merge request regrades its head commit."""

from __future__ import annotations

from webhooks.events import Event
from webhooks.handlers.commands import gives_command
from webhooks.handlers.decisions import Context, Decision, Ignored
from webhooks.handlers.merge_request import REASON_NOT_OPEN, is_open, merge_request_jobs
from webhooks.handlers.routing import Router

REASON_BOT_NOTE = "the note was written by the bot itself"
REASON_NOT_ON_MERGE_REQUEST = "the note is not on a merge request"
REASON_NOT_A_COMMAND = "the note is not a command"
REASON_NOTE_EDITED = "edited notes do not trigger commands"

router = Router()


@router.register("note", "create")
@router.register("note", None)  # GitLab before 16.11 sends no action, only new notes
def created(event: Event, context: Context) -> Decision:
    """Regrade a merge request's head when a person writes the retest command on a line of its own.

    The worker checks that the requesting user may ask for it: that needs the API.
    """
    # Our own comments fire Note Hooks too (spec §3): ignore them to avoid loops.
    if context.bot_username and \
            event.user_username.casefold() == context.bot_username.casefold():
        return Ignored(REASON_BOT_NOTE)
    merge_request = event.note.merge_request
    if merge_request is None:
        return Ignored(REASON_NOT_ON_MERGE_REQUEST)
    if not gives_command(event.note.text, context.retest_command):
        return Ignored(REASON_NOT_A_COMMAND)
    if not is_open(merge_request):
        return Ignored(REASON_NOT_OPEN)
    return merge_request_jobs(merge_request, context, requested_by_user_id=event.user_id)


@router.register("note")
def edited(event: Event, context: Context) -> Decision:
    """Ignore note edits, so that editing an old comment does not rerun anything."""
    return Ignored(REASON_NOTE_EDITED)
