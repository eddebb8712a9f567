"""Writing notices into the outbox, and delivering them.

Notices are written in the transaction of what causes them (a task transition through
`on_task_event`, an overdue warning, the scheduler's arriving and follow-up checks), one row per
channel of FIELDLINE_NOTICE_BACKENDS that can reach the recipient. An insert that meets the
unique (task, kind, channel, occasion) does nothing, so a replayed event or a check run twice
writes nothing new. `deliver_pending` sends them: each row is locked (SKIP LOCKED) while it is
sent and committed right after, so a notice that was sent is never picked up again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pyproj import Geod
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldline.gis.errors import NotFound
from fieldline.gis.routing import travel_to
from fieldline.server.crews.models import Crew
from fieldline.server.fields import iso
from fieldline.server.notices import texts
from fieldline.server.notices.backends import DeliveryError, Notifier, Outgoing
from fieldline.server.notices.contacts import contact_of, recipient_for
from fieldline.server.notices.models import Notice
from fieldline.server.tasks import events
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.models import Task
from fieldline.settings import Settings, get_settings

log = logging.getLogger(__name__)

DONE_STATES = ("completed", "verified")
# Practice: every job is followed up the same day, 3 days at most; later is not worth a text
# (and a scheduler started on an old database must not text every customer it ever had).
FOLLOW_UP_WITHIN = timedelta(days=3)
MAX_BACKOFF = timedelta(hours=1)
_GEOD = Geod(ellps="WGS84")


# -- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A notice to write: for each configured channel that can reach `contact`, one row."""

    task_id: int
    kind: str
    occasion: str
    contact: str | None
    text: str


def write_notices(session: Session, drafts: Sequence[Draft], settings: Settings) -> int:
    """Write the drafts; how many rows were new."""
    rows = [
        {
            "task_id": draft.task_id,
            "kind": draft.kind,
            "occasion": draft.occasion,
            "recipient": recipient,
            "channel": channel,
            "text": draft.text,
        }
        for draft in drafts
        for channel in settings.notice_backend_names
        if (recipient := recipient_for(channel, draft.contact)) is not None
    ]
    if not rows:
        return 0
    # A list of parameter sets: SQLAlchemy sends them as multi-row INSERTs of one compiled
    # statement ("insertmanyvalues"); RETURNING gives the rows that were new.
    statement = (
        insert(Notice)
        .on_conflict_do_nothing(constraint="uq_notices_task_kind_channel_occasion")
        .returning(Notice.id)
    )
    return len(session.execute(statement, rows).all())


def write_notice(
    session: Session,
    task_id: int,
    kind: str,
    occasion: str,
    contact: str | None,
    text: str,
    settings: Settings,
) -> int:
    return write_notices(session, [Draft(task_id, kind, occasion, contact, text)], settings)


def notices_for_event(session: Session, event: TaskEvent, settings: Settings) -> int:
    """The customer notices a transition causes: the crew assigned (with its ETA when the
    event carries one), the job done. Only tasks with a caller to tell."""
    if event.action not in ("assign", "transfer", "complete"):
        return 0
    task = session.scalar(sa.select(Task).where(Task.public_id == event.task_id))
    contact = contact_of(task.caller) if task is not None else None
    if task is None or contact is None:
        return 0
    if event.action == "complete":
        text = texts.job_done(task.public_id)
        return write_notice(
            session, task.id, "job_done", event.at.isoformat(), contact, text, settings
        )
    # The ETA the crew was ranked by, when the assignment had one; nothing is estimated here.
    text = texts.crew_assigned(task.public_id, event.eta_at, settings.timezone)
    # Once per crew: the same crew offered the task again is not news to the customer.
    occasion = f"crew:{event.crew_id}"
    return write_notice(session, task.id, "crew_assigned", occasion, contact, text, settings)


@events.listen
def on_task_event(session: Session, event: TaskEvent) -> None:
    """Called inside the transaction of every task event (fieldline.server.tasks.events)."""
    notices_for_event(session, event, get_settings())


def _minutes_away(
    session: Session,
    fix: Mapping[str, Any],
    site: tuple[float, float],
    mode: str,
    now: datetime,
    settings: Settings,
) -> float:
    """Minutes until the crew is on site: travel from its latest fix by road, or the
    straight-line distance at the fallback speed when no road route is found."""
    origin = (float(fix["lon"]), float(fix["lat"]))
    leg = travel_to(session.connection(), [origin], site, mode, settings=settings)[0]
    if leg is not None:
        seconds = leg.seconds
    else:
        metres = _GEOD.inv(origin[0], origin[1], site[0], site[1])[2]
        mps = (
            settings.routing_fallback_vehicle_kph / 3.6
            if mode == "vehicle"
            else settings.routing_walk_speed_mps
        )
        seconds = metres / mps
    fix_time = datetime.fromisoformat(str(fix["fix_time"]))
    return (fix_time + timedelta(seconds=seconds) - now).total_seconds() / 60


def check_arriving(
    session: Session, latest: Mapping[str, Mapping[str, Any]], now: datetime, settings: Settings
) -> int:
    """Tell customers whose crew is on its way and within FIELDLINE_NOTICE_ARRIVING_MINUTES
    of the site, judged from the crew's latest fix; how many notices were written. A crew
    without a recent fix (no signal) gives no estimate and no notice until it reports."""
    sent_already = (
        sa.select(Notice.id)
        .where(
            Notice.task_id == Task.id,
            Notice.kind == "crew_arriving",
            Notice.occasion == sa.func.concat("crew:", Crew.public_id),
        )
        .exists()
    )
    rows: Sequence[Any] = session.execute(
        sa.select(
            Task.id,
            Task.public_id,
            Task.caller,
            Task.mode,
            Crew.public_id,
            Crew.mode,
            sa.func.ST_X(Task.site),
            sa.func.ST_Y(Task.site),
        )
        .join(Crew, Crew.id == Task.crew_id)
        .where(
            Task.state == "en_route",
            Task.caller.is_not(None),
            Task.site.is_not(None),
            ~sent_already,
        )
    ).all()
    written = 0
    stale_before = now - timedelta(seconds=settings.crew_stale_after_s)
    for task_id, public_id, caller, task_mode, crew, crew_mode, lon, lat in rows:
        contact, fix = contact_of(caller), latest.get(crew)
        if contact is None or fix is None:
            continue
        if datetime.fromisoformat(str(fix["fix_time"])) < stale_before:
            continue
        mode = task_mode or crew_mode
        minutes = _minutes_away(session, fix, (lon, lat), mode, now, settings)
        if minutes > settings.notice_arriving_minutes:
            continue
        text = texts.crew_arriving(public_id, max(1, math.ceil(minutes)))
        written += write_notice(
            session, task_id, "crew_arriving", f"crew:{crew}", contact, text, settings
        )
    return written


def write_follow_ups(session: Session, now: datetime, settings: Settings) -> int:
    """A follow-up for each job done FIELDLINE_NOTICE_FOLLOW_UP_HOURS ago (within 3 days)."""
    due = now - timedelta(hours=settings.notice_follow_up_hours)
    followed = (
        sa.select(Notice.id).where(Notice.task_id == Task.id, Notice.kind == "follow_up").exists()
    )
    rows: Sequence[Any] = session.execute(
        sa.select(Task.id, Task.public_id, Task.caller).where(
            Task.state.in_(DONE_STATES),
            Task.completed_at <= due,
            Task.completed_at > now - FOLLOW_UP_WITHIN,
            Task.caller.is_not(None),
            ~followed,
        )
    ).all()
    written = 0
    for task_id, public_id, caller in rows:
        text = texts.follow_up(public_id)
        written += write_notice(
            session, task_id, "follow_up", "once", contact_of(caller), text, settings
        )
    return written


# -- delivering -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def backoff(attempts: int, base_s: float) -> timedelta:
    """The wait after the `attempts`-th failure: base, 2 x base, 4 x base ..., at most an hour."""
    return min(timedelta(seconds=base_s * 2 ** (attempts - 1)), MAX_BACKOFF)


def deliver_pending(
    session: Session,
    channels: Mapping[str, Notifier],
    now: datetime,
    settings: Settings,
    limit: int = 1000,
) -> Delivery:
    """Send up to `limit` pending notices that are due, committing after each one."""
    sent = retrying = failed = 0
    for _ in range(limit):
        row = session.execute(
            sa.select(Notice, Task.public_id)
            .join(Task, Task.id == Notice.task_id)
            .where(
                Notice.status == "pending",
                sa.or_(Notice.next_attempt_at.is_(None), Notice.next_attempt_at <= now),
            )
            .order_by(Notice.id)
            .limit(1)
            .with_for_update(of=Notice, skip_locked=True)
        ).first()
        if row is None:
            break
        notice, task_public_id = row
        outcome = _attempt(notice, task_public_id, channels, now, settings)
        sent += outcome == "sent"
        retrying += outcome == "pending"
        failed += outcome == "failed"
        session.commit()
    return Delivery(sent, retrying, failed)


def _attempt(
    notice: Notice,
    task_public_id: str,
    channels: Mapping[str, Notifier],
    now: datetime,
    settings: Settings,
) -> str:
    notice.attempts += 1
    notifier = channels.get(notice.channel)
    try:
        if notifier is None:
            raise DeliveryError(
                f"backend {notice.channel!r} is not in FIELDLINE_NOTICE_BACKENDS", retryable=False
            )
        notifier.send(
            Outgoing(
                notice.id,
                notice.kind,
                task_public_id,
                notice.recipient,
                notice.text,
                notice.created_at,
            )
        )
    except DeliveryError as exc:
        notice.last_error = exc.detail
        if exc.retryable and notice.attempts < settings.notice_max_attempts:
            notice.next_attempt_at = now + backoff(notice.attempts, settings.notice_retry_base_s)
        else:
            notice.status = "failed"
        log.warning("notice %d attempt %d: %s", notice.id, notice.attempts, exc.detail)
        return notice.status
    notice.status, notice.sent_at, notice.last_error = "sent", now, None
    return "sent"


# -- reading --------------------------------------------------------------------------------


def notice_json(notice: Notice, task_public_id: str) -> dict[str, Any]:
    return {
        "id": notice.id,
        "task_id": task_public_id,
        "kind": notice.kind,
        "recipient": notice.recipient,
        "channel": notice.channel,
        "text": notice.text,
        "status": notice.status,
        "attempts": notice.attempts,
        "last_error": notice.last_error,
        "created_at": notice.created_at.isoformat(),
        "next_attempt_at": iso(notice.next_attempt_at),
        "sent_at": iso(notice.sent_at),
    }


def list_notices(session: Session, task_public_id: str | None, limit: int) -> list[dict[str, Any]]:
    """Notices newest first, of one task when given (404 when there is no such task)."""
    query = sa.select(Notice, Task.public_id).join(Task, Task.id == Notice.task_id)
    if task_public_id is not None:
        if session.scalar(sa.select(Task.id).where(Task.public_id == task_public_id)) is None:
            raise NotFound(f"no task with id {task_public_id!r}")
        query = query.where(Task.public_id == task_public_id)
    rows: Sequence[Any] = session.execute(query.order_by(Notice.id.desc()).limit(limit)).all()
    return [notice_json(notice, public_id) for notice, public_id in rows]
