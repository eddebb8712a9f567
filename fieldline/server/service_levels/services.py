"""Service-level timers: warnings before and after a promised time, and escalation.

Each task runs two timers against the times promised to the customer:

- `arrival` until the crew is on site (`arrived_at`), against `promised_arrival_at`;
- `completion` until the work is done (`completed_at`), against `promised_completion_at`.

A timer stops when its end is reached or the task is cancelled; it was met when the end came
at or before the promise, missed otherwise. While it runs it raises a `due_soon` warning
FIELDLINE_SLA_DUE_SOON_MINUTES before the promise and an `overdue` warning once the promise has
passed; an overdue warning is escalated to the supervisor. `evaluate` writes each warning once
(INSERT ... ON CONFLICT DO NOTHING on the unique task, timer and level), so it may run as often
as it likes; `announce` then pushes what is new to the live stream and the crews' inboxes,
after the warnings are committed, and marks them announced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from fieldline.gis.errors import NotFound
from fieldline.server.crews.models import Crew
from fieldline.server.fields import iso
from fieldline.server.live.services import Live
from fieldline.server.notices import texts
from fieldline.server.notices.services import Draft, write_notices
from fieldline.server.service_levels.models import SlaEscalation, SlaWarning
from fieldline.server.tasks.models import Task
from fieldline.settings import Settings

# Sends a message to a crew's inbox (crew public id, message); True once the broker has it.
CrewInbox = Callable[[str, dict[str, Any]], bool]


@dataclass(frozen=True)
class Timer:
    name: str
    promise: InstrumentedAttribute[datetime | None]
    end: InstrumentedAttribute[datetime | None]
    # States past the timer's end, for rows whose end time is not filled in.
    stopped_states: tuple[str, ...]


TIMERS = (
    Timer(
        "arrival",
        Task.promised_arrival_at,
        Task.arrived_at,
        ("on_site", "completed", "verified", "cancelled"),
    ),
    Timer(
        "completion",
        Task.promised_completion_at,
        Task.completed_at,
        ("completed", "verified", "cancelled"),
    ),
)
TIMER_BY_NAME = {timer.name: timer for timer in TIMERS}


def running(timer: Timer) -> sa.ColumnElement[bool]:
    """The task has a promise for this timer and has not reached its end nor been cancelled."""
    return sa.and_(
        timer.promise.is_not(None), timer.end.is_(None), Task.state.not_in(timer.stopped_states)
    )


def timer_status(task: Task, now: datetime) -> dict[str, dict[str, Any]]:
    """Each timer of a task: `running`, `met`, `missed`, `stopped` (cancelled before its end)
    or `none` (nothing promised), with the promise and how the end compared with it."""
    found = {}
    for timer in TIMERS:
        promise: datetime | None = getattr(task, timer.promise.key)
        end: datetime | None = getattr(task, timer.end.key)
        if promise is None:
            status = "none"
        elif end is not None:
            status = "met" if end <= promise else "missed"
        elif task.state in timer.stopped_states:
            status = "stopped"
        else:
            status = "running"
        found[timer.name] = {
            "status": status,
            "due_at": promise.isoformat() if promise else None,
            "overdue": status == "running" and promise is not None and now > promise,
        }
    return found


# -- raising --------------------------------------------------------------------------------


def _raised(timer: str, level: str) -> sa.Exists:
    """The warning exists already: skipping those up front is an anti-join on the unique
    index, far cheaper than letting every repeat reach ON CONFLICT (which still guards
    against two evaluations at once)."""
    return (
        sa.select(SlaWarning.id)
        .where(SlaWarning.task_id == Task.id, SlaWarning.timer == timer, SlaWarning.level == level)
        .exists()
    )


def evaluate(session: Session, now: datetime, settings: Settings) -> list[SlaWarning]:
    """Raise the warnings that are due at `now` and not raised yet; escalate the new overdue
    ones (a record and a notice to FIELDLINE_SUPERVISOR_CONTACT). Returns the new warnings."""
    due_soon = timedelta(minutes=settings.sla_due_soon_minutes)
    raised: list[SlaWarning] = []
    for timer in TIMERS:
        for level, reached in (
            ("due_soon", timer.promise - due_soon <= now),
            ("overdue", timer.promise < now),
        ):
            candidates = sa.select(
                Task.id,
                sa.literal(timer.name),
                sa.literal(level),
                timer.promise,
                sa.literal(now, sa.DateTime(timezone=True)),
            ).where(running(timer), reached, ~_raised(timer.name, level))
            statement = (
                insert(SlaWarning)
                .from_select(["task_id", "timer", "level", "due_at", "raised_at"], candidates)
                .on_conflict_do_nothing(constraint="uq_sla_warnings_task_timer_level")
                .returning(SlaWarning)
            )
            raised += session.scalars(statement).all()
    escalate(session, [w for w in raised if w.level == "overdue"], now, settings)
    session.flush()
    return sorted(raised, key=lambda w: w.id)


def escalate(
    session: Session, overdue: Sequence[SlaWarning], now: datetime, settings: Settings
) -> None:
    """Record the escalation of each overdue warning and tell the supervisor, in bulk: after
    a stop of the scheduler many warnings may be raised at once."""
    if not overdue:
        return
    contact = settings.supervisor_contact or None
    # One array parameter however many: an IN list would take a parameter each.
    ids = sa.any_(sa.literal([w.id for w in overdue], ARRAY(sa.BigInteger)))
    session.execute(
        insert(SlaEscalation).from_select(
            ["warning_id", "task_id", "contact", "escalated_at"],
            sa.select(
                SlaWarning.id,
                SlaWarning.task_id,
                sa.literal(contact, sa.Text),
                sa.literal(now, sa.DateTime(timezone=True)),
            ).where(SlaWarning.id == ids),
        )
    )
    if contact is None:
        return
    rows = session.execute(
        sa.select(SlaWarning.id, Task.public_id, Task.priority, Task.title, Crew.public_id)
        .join(Task, Task.id == SlaWarning.task_id)
        .outerjoin(Crew, Crew.id == Task.crew_id)
        .where(SlaWarning.id == ids)
    )
    about = {warning_id: rest for warning_id, *rest in rows}
    drafts = []
    for warning in overdue:
        task, priority, title, crew = about[warning.id]
        text = texts.escalation(
            task, warning.timer, priority, warning.due_at, crew, title, settings.timezone
        )
        drafts.append(
            Draft(warning.task_id, "escalation", f"{warning.timer}:overdue", contact, text)
        )
    write_notices(session, drafts, settings)


# -- announcing -----------------------------------------------------------------------------


def _warning_rows(*conditions: sa.ColumnElement[bool]) -> Any:
    return (
        sa.select(SlaWarning, Task, Crew.public_id, SlaEscalation)
        .join(Task, Task.id == SlaWarning.task_id)
        .outerjoin(Crew, Crew.id == Task.crew_id)
        .outerjoin(SlaEscalation, SlaEscalation.warning_id == SlaWarning.id)
        .where(*conditions)
    )


def warning_json(
    warning: SlaWarning, task: Task, crew: str | None, escalation: SlaEscalation | None
) -> dict[str, Any]:
    return {
        "id": warning.id,
        "task_id": task.public_id,
        "crew_id": crew,
        "timer": warning.timer,
        "level": warning.level,
        "due_at": warning.due_at.isoformat(),
        "raised_at": warning.raised_at.isoformat(),
        "acknowledged_at": iso(warning.acknowledged_at),
        "acknowledged_by": warning.acknowledged_by,
        "escalated_at": iso(escalation.escalated_at) if escalation else None,
        "task": {
            "title": task.title,
            "kind": task.kind,
            "priority": task.priority,
            "state": task.state,
            "district": task.district,
        },
    }


def announce(
    session: Session, live: Live, inbox: CrewInbox | None, now: datetime, limit: int = 500
) -> int:
    """Push unannounced warnings to the live stream (type `sla`) and to the crew's inbox
    (kind `sla.warning`), then mark them announced. Call after `evaluate`'s commit: a warning
    is announced only once it is stored, and one whose push failed stays unannounced and goes
    out again on the next run (at least once; the warning's id tells a repeat)."""
    rows: Sequence[Any] = session.execute(
        _warning_rows(SlaWarning.announced_at.is_(None))
        .order_by(SlaWarning.id)
        .limit(limit)
        .with_for_update(of=SlaWarning, skip_locked=True)
    ).all()
    announced = 0
    for warning, task, crew, escalation in rows:
        body = warning_json(warning, task, crew, escalation)
        live.publish({"type": "sla", **body})
        if (
            crew is not None
            and inbox is not None
            and not inbox(crew, {"kind": "sla.warning", **body})
        ):
            continue
        warning.announced_at = now
        announced += 1
    session.flush()
    return announced


# -- reading and acknowledging ------------------------------------------------------------------


def list_warnings(session: Session, active: bool | None, limit: int) -> list[dict[str, Any]]:
    """Warnings, overdue first, then by due time. Active ones are those a dispatcher still has
    to act on: not acknowledged, their timer still running, and not superseded by the same
    timer's overdue warning."""
    conditions: list[sa.ColumnElement[bool]] = []
    if active is not None:
        overdue = aliased(SlaWarning)
        superseded = sa.and_(
            SlaWarning.level == "due_soon",
            sa.select(overdue.id)
            .where(
                overdue.task_id == SlaWarning.task_id,
                overdue.timer == SlaWarning.timer,
                overdue.level == "overdue",
            )
            .exists(),
        )
        still_running = sa.or_(*(sa.and_(SlaWarning.timer == t.name, running(t)) for t in TIMERS))
        is_active = sa.and_(SlaWarning.acknowledged_at.is_(None), still_running, ~superseded)
        conditions.append(is_active if active else ~is_active)
    rows: Sequence[Any] = session.execute(
        _warning_rows(*conditions)
        .order_by((SlaWarning.level == "overdue").desc(), SlaWarning.due_at, SlaWarning.id)
        .limit(limit)
    ).all()
    return [warning_json(*row) for row in rows]


def acknowledge(session: Session, warning_id: int, by: str, now: datetime) -> dict[str, Any]:
    """Mark a warning seen; acknowledging it again keeps the first acknowledgement."""
    row: Any = session.execute(_warning_rows(SlaWarning.id == warning_id)).first()
    if row is None:
        raise NotFound(f"no warning with id {warning_id}")
    warning = row[0]
    if warning.acknowledged_at is None:
        warning.acknowledged_at, warning.acknowledged_by = now, by
        session.flush()
    return warning_json(*row)
