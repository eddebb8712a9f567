"""Crews' status reports as the gateway stored them (`task_status_events`), handed over to the
tasks exactly once.

Handing one over locks its row (SKIP LOCKED: whoever holds it is handing it over) and, in the
same transaction, applies it (`services.apply_crew_status`) and sets its `outcome`: `applied`,
`no_change` (late or repeated), or the reason it was refused, which also writes a dead letter.
The gateway hands over what each batch inserted right after the commit. A report it could not
hand over then (the database went away in between, the worker stopped) keeps a null outcome;
`replay_pending_status_events`, run by the scheduler, hands those over later, oldest first per
task, so nothing a crew reported is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.server.live.services import Live, dead_letter_event
from fieldline.server.tasks import events
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.services import StatusRefused, apply_crew_status, publish_live
from fieldline.server.telemetry.models import DeadLetter, TaskStatusEvent
from fieldline.settings import get_settings

log = logging.getLogger(__name__)

# Reports younger than this are left to the gateway that stored them and is handing them over.
REPLAY_AFTER = timedelta(seconds=60)
REPLAY_BATCH = 1000


@dataclass(frozen=True, order=True)
class StatusKey:
    """A stored report's key; ordered by task, then time: the order to apply them in."""

    task_id: str
    ts: datetime
    crew_id: str
    status: str


@dataclass
class Handed:
    outcome: str  # applied | no_change | the refusal's reason
    events: list[TaskEvent]  # what changed, to publish
    dead_letter: dict[str, Any] | None = None  # a new dead letter, as the gateway announces


def status_topic(crew_id: str, task_id: str) -> str:
    return f"fieldline/crews/{crew_id}/tasks/{task_id}/status"


def _payload(row: TaskStatusEvent) -> bytes:
    """The report as the handheld sends it (the stored fields; the raw bytes are not kept)."""
    body: dict[str, Any] = {"status": row.status, "ts": row.ts.isoformat()}
    for name in ("note", "lat", "lon"):
        if getattr(row, name) is not None:
            body[name] = getattr(row, name)
    return json.dumps(body, separators=(",", ":")).encode()


def _dead_letter(
    session: Session, row: TaskStatusEvent, refused: StatusRefused
) -> dict[str, Any] | None:
    topic = status_topic(row.crew_id, row.task_id)
    payload = _payload(row)
    # The gateway's recipe (device_gateway/pipeline.py): a report refused twice is one row.
    digest = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()
    received_at = datetime.now(UTC)
    inserted = session.scalar(
        insert(DeadLetter)
        .values(
            received_at=received_at,
            topic=topic,
            reason=refused.reason,
            detail=refused.detail[:500],
            payload=payload,
            payload_bytes=len(payload),
            digest=digest,
        )
        .on_conflict_do_nothing(index_elements=["digest"])
        .returning(DeadLetter.id)
    )
    if inserted is None:
        return None
    return dead_letter_event(
        received_at, topic, refused.reason, refused.detail[:500], payload, len(payload)
    )


def hand_over(session: Session, key: StatusKey) -> Handed | None:
    """Apply one stored report and mark it; None when it is handed over already (or being,
    elsewhere). The caller commits; the session holds no other task events."""
    row = session.scalar(
        sa.select(TaskStatusEvent)
        .where(
            TaskStatusEvent.crew_id == key.crew_id,
            TaskStatusEvent.task_id == key.task_id,
            TaskStatusEvent.status == key.status,
            TaskStatusEvent.ts == key.ts,
            TaskStatusEvent.outcome.is_(None),
        )
        .with_for_update(skip_locked=True)
    )
    if row is None:
        return None
    position = None if row.lon is None or row.lat is None else (row.lon, row.lat)
    try:
        with session.begin_nested():
            steps = apply_crew_status(
                session, row.crew_id, row.task_id, row.status, row.ts, position, row.note
            )
    except StatusRefused as refused:
        events.take(session)  # undone with the savepoint
        row.outcome = refused.reason
        log.info(
            "status %s of %s for %s refused: %s", row.status, row.crew_id, row.task_id, refused
        )
        return Handed(refused.reason, [], _dead_letter(session, row, refused))
    row.outcome = "applied" if steps else "no_change"
    return Handed(row.outcome, events.take(session))


def pending_keys(session: Session, now: datetime, limit: int = REPLAY_BATCH) -> list[StatusKey]:
    rows = session.execute(
        sa.select(
            TaskStatusEvent.task_id,
            TaskStatusEvent.ts,
            TaskStatusEvent.crew_id,
            TaskStatusEvent.status,
        )
        .where(TaskStatusEvent.outcome.is_(None), TaskStatusEvent.received_at < now - REPLAY_AFTER)
        .order_by(TaskStatusEvent.task_id, TaskStatusEvent.ts)
        .limit(limit)
    )
    return [StatusKey(*row) for row in rows]


def replay_pending_status_events(
    session: Session, now: datetime | None = None, live: Live | None = None
) -> dict[str, int]:
    """Hand over the stored reports the gateway did not (older than REPLAY_AFTER), each in a
    transaction of its own, committed here; how many ended with each outcome. With `live`,
    the changes and new dead letters are published."""
    now = now or datetime.now(UTC)
    keys = pending_keys(session, now)
    session.commit()
    counts: dict[str, int] = {}
    for key in keys:
        handed = hand_over(session, key)
        session.commit()
        if handed is None:
            continue
        counts[handed.outcome] = counts.get(handed.outcome, 0) + 1
        if live is not None:
            publish_live(live, handed.events)
            if handed.dead_letter is not None:
                live.add_deadletter(handed.dead_letter, get_settings().deadletter_stream_maxlen)
                live.publish({"type": "deadletter", **handed.dead_letter})
    if counts:
        log.info("replayed crews' status reports: %s", counts)
    return counts
