"""What happened to tasks in a transaction, told to the listeners inside it and, after the
commit, published by the caller (`services.announce`).

Every change of a task goes through `record`: each transition (action `assign`, `accept`, ...),
the creation (`create`) and an edit of its fields (`update`). The event is kept on the session
until `take` (after the commit) and handed at once to every listener, inside the same
transaction: a listener that raises undoes the change with it. Listeners register themselves at
import time with `listen`; the modules that hold them are named in LISTENER_MODULES and
imported on the first event, so the web server, the gateway and the scheduler all hear the same
ones whatever else they import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

# The modules that register listeners; imported once, on the first event of the process.
LISTENER_MODULES = (
    "fieldline.server.notices.services",
    "fieldline.server.service_levels.services",
    "fieldline.server.dispatch.services",  # auto-dispatch on creation
    "fieldline.server.verification.services",  # a check of the trace on completion
    "fieldline.server.incidents.services",  # an incident follows its tasks
)
_SESSION_KEY = "fieldline_task_events"


@dataclass(frozen=True)
class TaskEvent:
    task_id: str  # the task's public id
    # The crew the task is with after the step; for decline and cancel, the crew it was with.
    crew_id: str | None
    action: str  # a transition's action, `create` or `update`
    from_state: str
    to_state: str
    at: datetime
    actor_kind: str = "dispatcher"  # dispatcher | crew | system
    previous_crew_id: str | None = None  # transfer: the crew the task was taken from
    note: str | None = None
    eta_at: datetime | None = None  # assign/transfer: when the crew should be there


Listener = Callable[[Session, TaskEvent], None]
_listeners: list[Listener] = []
_loaded = False


def listen(listener: Listener) -> Listener:
    """Register `listener(session, event)`, called inside the transaction of every event.
    Returns it, so it can be used as a decorator."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def _load_listeners() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in LISTENER_MODULES:
            importlib.import_module(name)


def record(session: Session, event: TaskEvent) -> None:
    """Keep the event for publishing after the commit and tell the listeners now."""
    _load_listeners()
    session.info.setdefault(_SESSION_KEY, []).append(event)
    for listener in list(_listeners):
        listener(session, event)


def take(session: Session) -> list[TaskEvent]:
    """The events recorded since the last `take`, in order; call it after the commit (or
    after a rollback, to drop them)."""
    events: list[TaskEvent] = session.info.pop(_SESSION_KEY, [])
    return events
