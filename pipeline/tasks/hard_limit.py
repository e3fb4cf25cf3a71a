"""A task base whose item ends as error when Celery's hard time limit kills its process."""

from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import TimeLimitExceeded

log = logging.getLogger(__name__)

HARD_LIMIT_REASON = ("stopped by the hard time limit of {limit:g} s, as gradehook could not stop "
                     "it at its time limit of {soft:g} s; it has been logged")


class EndsAtHardLimit(Task):
    """A task driven by pipeline.tasks.retry.drive, taking `ending`: the error to end its item
    with. At the hard time limit the worker kills the task's process and acknowledges its
    message; its main process then sends the task again, to end the item with that reason."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """Send the task again to record its end, when the hard time limit stopped it."""
        if not isinstance(exc, TimeLimitExceeded):
            return
        if kwargs.get("ending") is not None:
            log.error("%s[%s]: the hard time limit struck again as it recorded its end "
                      "(%s); left to the reconciler", self.name, task_id, kwargs["ending"])
            return
        limit, = exc.args or (self.time_limit,)
        reason = HARD_LIMIT_REASON.format(limit=limit, soft=self.soft_time_limit or limit)
        log.error("%s[%s]: %s", self.name, task_id, reason)
        try:
            self.apply_async(args=args, kwargs={**kwargs, "ending": reason}, task_id=task_id)
        except Exception:  # the broker away: the reconciler's stall sweep ends the item
            log.exception("%s[%s]: could not send the task to record its end", self.name,
                          task_id)
