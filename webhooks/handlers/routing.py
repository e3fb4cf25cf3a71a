"""Route an event to the handler registered for its (kind, action), as gidgetlab does."""

from __future__ import annotations

from typing import Callable

from webhooks.events import Event
from webhooks.handlers.decisions import Context, Decision

Handler = Callable[[Event, Context], Decision]


class _AnyAction:
    """Marker for a handler that takes every action of its kind not registered exactly."""

    def __repr__(self) -> str:
        return "ANY_ACTION"


ANY_ACTION = _AnyAction()


class Router:
    """Handlers keyed by (event kind, action); routers of several features merge into one."""

    def __init__(self, *routers: Router) -> None:
        self._handlers: dict[tuple[str, object], Handler] = {}
        for other in routers:
            for (kind, action), handler in other._handlers.items():
                self._add(kind, action, handler)

    def register(self, kind: str, action: str | None | _AnyAction = ANY_ACTION
                 ) -> Callable[[Handler], Handler]:
        """Register the decorated handler for one action (None: no action sent) or for all."""
        def decorator(handler: Handler) -> Handler:
            self._add(kind, action, handler)
            return handler
        return decorator

    def handler_for(self, event: Event) -> Handler | None:
        """Return the handler of the event's exact (kind, action), else of its kind, else None."""
        return self._handlers.get((event.kind, event.action),
                                  self._handlers.get((event.kind, ANY_ACTION)))

    def _add(self, kind: str, action: object, handler: Handler) -> None:
        if (kind, action) in self._handlers:
            raise ValueError(f"a handler for ({kind!r}, {action!r}) is already registered")
        self._handlers[(kind, action)] = handler
