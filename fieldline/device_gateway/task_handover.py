"""After a batch is committed: hand the crews' new task status reports to the tasks.

Only rows the batch really inserted (a redelivery inserts none) are handed over, ordered by the
report's time per task, each in a short transaction of its own (server/tasks/status_events.py)
so that one refused report does not hold back the others. A refused one becomes a dead letter
with its reason (`task_not_yours`, `illegal_transition`, `unknown_task`), announced like the
gateway's own. Nothing is lost when this fails: the reports are stored already, their outcome
stays null, and the scheduler replays them (`replay_pending_status_events`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from fieldline.device_gateway import metrics
from fieldline.device_gateway.pipeline import Outcome
from fieldline.device_gateway.storage import Written
from fieldline.gis.db import make_sessionmaker
from fieldline.server.tasks import events
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.status_events import StatusKey, hand_over

log = logging.getLogger(__name__)


@dataclass
class HandedOver:
    """What to announce: the task changes and the new dead letters."""

    events: list[TaskEvent] = field(default_factory=list)
    dead_letters: list[dict[str, str]] = field(default_factory=list)


def new_reports(outcomes: Sequence[Outcome], written: Written) -> list[StatusKey]:
    """The batch's newly stored reports, in the order to apply them."""
    keys = {
        StatusKey(t.task_id, t.ts, t.crew_id, t.status)
        for outcome in outcomes
        for t in outcome.task_events
        if written.is_new("task_status_events", (t.crew_id, t.task_id, t.status, t.ts))
    }
    return sorted(keys)


class TaskHandover:
    def __init__(self, engine: sa.Engine) -> None:
        self.sessions = make_sessionmaker(engine)

    def __call__(self, outcomes: Sequence[Outcome], written: Written) -> HandedOver:
        handed_over = HandedOver()
        keys = new_reports(outcomes, written)
        if not keys:
            return handed_over
        with self.sessions() as session:
            for i, key in enumerate(keys):
                try:
                    handed = hand_over(session, key)
                    session.commit()
                except sa.exc.OperationalError as exc:  # the database is away
                    log.warning("%d task status reports left for replay: %s", len(keys) - i, exc)
                    break
                except sa.exc.SQLAlchemyError:
                    log.exception("task status report %s left for replay", key)
                    session.rollback()
                    events.take(session)
                    continue
                if handed is None:
                    continue
                handed_over.events += handed.events
                if handed.dead_letter is not None:
                    metrics.REJECTED.labels(handed.outcome).inc()
                    handed_over.dead_letters.append(handed.dead_letter)
        return handed_over
