"""Incidents: taking reports in, grouping them, isolating the broken pipe through the tasks
domain, following the incident's tasks to water back on, and telling customers.

Intake: every report (a SCADA pressure alarm, a call, a crew's leak or damage report) joins
the active incident that has a report within FIELDLINE_INCIDENT_GROUP_RADIUS_M and
FIELDLINE_INCIDENT_GROUP_WINDOW_MIN of it (the nearest), else opens one. Intake takes a
transaction-scoped advisory lock, so two reports of one burst arriving together (a call
and the scheduler's alarm run) cannot open two incidents; a source is unique by its kind
and reference, so an alarm or field report never joins twice.

Isolation creates the tasks with `create_task`, as any other system would: auto-dispatch,
service levels and customer notices of the tasks domain apply unchanged. The incident then
follows its tasks' events (`on_task_event`, inside their transactions): valves closed ->
repairing; repair verified -> valves opened again (restoring); those done -> closed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geography
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from fieldline.gis.errors import InvalidField, NotFound
from fieldline.gis.models import SRID, Meter, Pipe
from fieldline.gis.queries import geography
from fieldline.server.alarms.models import Alarm
from fieldline.server.alarms.services import station_places
from fieldline.server.alarms.states import OPEN_STATES as OPEN_ALARM_STATES
from fieldline.server.crews.services import check_point
from fieldline.server.fields import known_fields, moment, optional_text, text
from fieldline.server.incidents import outages
from fieldline.server.incidents.models import (
    Incident,
    IncidentSource,
    IncidentStep,
    IncidentTask,
)
from fieldline.server.incidents.states import (
    ACTIVE_STATES,
    WATER_OFF_STATES,
    next_state,
)
from fieldline.server.live.outbox import publish_unannounced
from fieldline.server.live.services import Live
from fieldline.server.network.params import IsolationQuery
from fieldline.server.network.payloads import isolation_body
from fieldline.server.network.services import isolation
from fieldline.server.notices.models import Notice
from fieldline.server.reports.models import FieldReportRow
from fieldline.server.tasks import events
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.models import Task
from fieldline.server.tasks.services import check_caller, create_task, transition
from fieldline.server.tasks.states import OPEN_STATES as OPEN_TASK_STATES
from fieldline.settings import Settings, get_settings

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "incident intake"
WORKFLOW_ACTOR = "incident workflow"
# One key for pg_advisory_xact_lock: intake is serialised, the rest of the database is not.
INTAKE_LOCK = 0x1_1C1D_E17
# Reports older than this are history: a scheduler started on an old database does not
# open incidents for them.
INTAKE_LOOKBACK = timedelta(days=1)
# A crew's report of these kinds is a sign of a break; the others are not incidents.
REPORT_KINDS = ("leak", "damage")
# A main break shows as low pressure (or pressure falling fast) at the stations near it.
PRESSURE_METRIC_PREFIX = "pressure"
# A main break is the most urgent work there is (practice: crews day and night).
PRIORITY = "P1"
VALVE_SKILLS = ["valve_operation"]
REPAIR_SKILLS = ["pipe_repair"]
# A task that reached one of these no longer holds its incident up.
SETTLED_TASK_STATES = ("completed", "verified", "cancelled")
MAX_DESCRIPTION = 5000
MAX_TITLE = 200
CALL_FIELDS = ("lon", "lat", "meter_id", "description", "caller")
SUGGESTIONS = 10


# -- reading -----------------------------------------------------------------------------


def get_incident(session: Session, public_id: str, *, lock: bool = False) -> Incident:
    query = sa.select(Incident).where(Incident.public_id == public_id)
    found = session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound(f"no incident with id {public_id!r}")
    return found


@dataclass
class IncidentQuery:
    states: tuple[str, ...] = ()
    limit: int = 100


def list_incidents(session: Session, query: IncidentQuery) -> list[Incident]:
    select = sa.select(Incident)
    if query.states:
        select = select.where(Incident.state.in_(query.states))
    return list(
        session.scalars(
            select.order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(query.limit)
        )
    )


def sources_of(session: Session, incident: Incident) -> list[IncidentSource]:
    return list(
        session.scalars(
            sa.select(IncidentSource)
            .where(IncidentSource.incident_id == incident.id)
            .order_by(IncidentSource.reported_at, IncidentSource.id)
        )
    )


def steps_of(session: Session, incident: Incident) -> list[IncidentStep]:
    return list(
        session.scalars(
            sa.select(IncidentStep)
            .where(IncidentStep.incident_id == incident.id)
            .order_by(IncidentStep.id)
        )
    )


def tasks_of(session: Session, incident: Incident) -> list[tuple[IncidentTask, Task]]:
    rows = session.execute(
        sa.select(IncidentTask, Task)
        .join(Task, Task.id == IncidentTask.task_id)
        .where(IncidentTask.incident_id == incident.id)
        .order_by(IncidentTask.role != "close_valve", IncidentTask.role, IncidentTask.ordinal)
    )
    return [(link, task) for link, task in rows]


def notices_of(session: Session, incident: Incident) -> list[tuple[Notice, str]]:
    rows = session.execute(
        sa.select(Notice, Task.public_id)
        .join(Task, Task.id == Notice.task_id)
        .where(
            Notice.kind.in_(outages.KINDS),
            Notice.occasion.like(f"{incident.public_id}:%"),
        )
        .order_by(Notice.id)
    )
    return [(notice, task_id) for notice, task_id in rows]


# -- steps -------------------------------------------------------------------------------


def _step(
    session: Session,
    incident: Incident,
    action: str,
    actor: str,
    actor_kind: str,
    at: datetime,
    note: str | None = None,
) -> IncidentStep:
    before = None if action == "open" else incident.state
    after = next_state(before, action)
    incident.state = after
    incident.updated_at = at
    step = IncidentStep(
        incident_id=incident.id,
        action=action,
        from_state=before,
        to_state=after,
        actor=actor,
        actor_kind=actor_kind,
        at=at,
        note=note,
    )
    session.add(step)
    session.flush()
    return step


# -- intake ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A report as intake sees it, whatever it came from."""

    kind: str  # alarm | call | field_report
    ref: str | None
    lon: float
    lat: float
    reported_at: datetime
    title: str
    description: str | None = None
    caller: Mapping[str, str] | None = None
    meter_id: str | None = None
    station_id: str | None = None
    asset_id: str | None = None


def _point(lon: float, lat: float) -> Any:
    return from_shape(Point(lon, lat), srid=SRID)


def _nearest_active(session: Session, report: Report, settings: Settings) -> Incident | None:
    """The active incident with a report near this one in space and time, the nearest."""
    here = sa.cast(
        sa.func.ST_SetSRID(sa.func.ST_MakePoint(report.lon, report.lat), SRID), Geography
    )
    window = timedelta(minutes=settings.incident_group_window_min)
    distance = sa.func.ST_Distance(geography(IncidentSource.position), here)
    incident_id = session.scalar(
        sa.select(IncidentSource.incident_id)
        .join(Incident, Incident.id == IncidentSource.incident_id)
        .where(
            Incident.state.in_(ACTIVE_STATES),
            sa.func.ST_DWithin(
                geography(IncidentSource.position), here, settings.incident_group_radius_m
            ),
            IncidentSource.reported_at >= report.reported_at - window,
            IncidentSource.reported_at <= report.reported_at + window,
        )
        .order_by(distance, IncidentSource.incident_id)
        .limit(1)
    )
    if incident_id is None:
        return None
    incident = session.scalar(
        sa.select(Incident).where(Incident.id == incident_id).with_for_update()
    )
    # Cancelled or closed meanwhile (those steps do not take the intake's lock).
    return incident if incident is not None and incident.state in ACTIVE_STATES else None


def _label(source: IncidentSource | Report) -> str:
    if source.kind == "call":
        return f"call about meter {source.meter_id}" if source.meter_id else "call"
    return f"{source.kind.replace('_', ' ')} {source.ref}"


@dataclass(frozen=True)
class Taken:
    incident: Incident
    source: IncidentSource
    opened: bool
    linked: bool  # False: this alarm or report was part of the incident already


def take_report(
    session: Session, report: Report, actor: str, actor_kind: str, now: datetime, settings: Settings
) -> Taken:
    """Link a report to the active incident near it, or open one."""
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(INTAKE_LOCK)))
    if report.ref is not None:
        known = session.scalar(
            sa.select(IncidentSource).where(
                IncidentSource.kind == report.kind, IncidentSource.ref == report.ref
            )
        )
        if known is not None:
            return Taken(session.get_one(Incident, known.incident_id), known, False, False)
    incident = _nearest_active(session, report, settings)
    opened = incident is None
    if incident is None:
        incident = Incident(
            title=report.title[:MAX_TITLE],
            site=_point(report.lon, report.lat),
            opened_at=now,
            updated_at=now,
        )
        session.add(incident)
        session.flush()
        session.refresh(incident)  # the public id comes from the database
        _step(session, incident, "open", actor, actor_kind, now, f"opened by {_label(report)}")
    source = IncidentSource(
        incident_id=incident.id,
        kind=report.kind,
        ref=report.ref,
        position=_point(report.lon, report.lat),
        reported_at=report.reported_at,
        description=report.description,
        caller=dict(report.caller) if report.caller else None,
        meter_id=report.meter_id,
        station_id=report.station_id,
        asset_id=report.asset_id,
        linked_by=actor,
        linked_at=now,
    )
    session.add(source)
    session.flush()
    if not opened:
        _step(session, incident, "link", actor, actor_kind, now, f"{_label(source)} joined")
        if incident.state in WATER_OFF_STATES and source.caller:
            # A caller whose water is off already is told what the others were told.
            outages.notify(session, incident, "water_off", now, settings)
    return Taken(incident, source, opened, True)


def report_call(
    session: Session, body: Any, actor: str, now: datetime, settings: Settings
) -> Taken:
    """A call-centre report: {lon, lat} or {meter_id}, with `description` and `caller`."""
    fields = known_fields(body, CALL_FIELDS)
    description = text(fields.get("description"), "description", MAX_DESCRIPTION)
    caller = check_caller(fields.get("caller"), required=True)
    meter_id = optional_text(fields.get("meter_id"), "meter_id", 100)
    has_point = "lon" in fields or "lat" in fields
    if meter_id is not None and has_point:
        raise InvalidField("meter_id", "give either meter_id, or lon and lat, not both")
    if meter_id is None:
        if not has_point:
            raise InvalidField("lon", "give where: lon and lat, or the customer's meter_id")
        for name in ("lon", "lat"):
            if fields.get(name) is None:
                raise InvalidField(name, "is required with " + ({"lon", "lat"} - {name}).pop())
        point = check_point({"lon": fields["lon"], "lat": fields["lat"]}, "lon")
        assert point is not None
        lon, lat = point
        title = f"No water: {description}"
    else:
        row = session.execute(
            sa.select(
                sa.func.ST_X(Meter.geom, type_=sa.Float),
                sa.func.ST_Y(Meter.geom, type_=sa.Float),
                Meter.service_address,
            ).where(Meter.public_id == meter_id)
        ).first()
        if row is None:
            raise InvalidField("meter_id", f"there is no meter {meter_id}")
        lon, lat, address = row
        title = f"No water at {address}" if address else f"No water at meter {meter_id}"
    report = Report(
        kind="call",
        ref=None,
        lon=lon,
        lat=lat,
        reported_at=now,
        title=title,
        description=description,
        caller=caller,
        meter_id=meter_id,
    )
    return take_report(session, report, actor, "user", now, settings)


def pressure_alarms(session: Session) -> list[Alarm]:
    """Open pressure alarms that say "low" or "falling" and are in no incident yet."""
    linked = (
        sa.select(IncidentSource.id)
        .where(IncidentSource.kind == "alarm", IncidentSource.ref == Alarm.public_id)
        .exists()
    )
    return list(
        session.scalars(
            sa.select(Alarm)
            .where(
                Alarm.state.in_(OPEN_ALARM_STATES),
                Alarm.metric.startswith(PRESSURE_METRIC_PREFIX),
                sa.or_(Alarm.kind == "low", sa.and_(Alarm.kind == "rate", Alarm.measured < 0)),
                ~linked,
            )
            .order_by(Alarm.raised_at, Alarm.id)
        )
    )


def break_reports(session: Session, now: datetime) -> list[FieldReportRow]:
    """Crews' leak and damage reports of the last day not rejected and in no incident yet."""
    linked = (
        sa.select(IncidentSource.id)
        .where(
            IncidentSource.kind == "field_report", IncidentSource.ref == FieldReportRow.public_id
        )
        .exists()
    )
    return list(
        session.scalars(
            sa.select(FieldReportRow)
            .where(
                FieldReportRow.kind.in_(REPORT_KINDS),
                FieldReportRow.review_status != "rejected",
                FieldReportRow.received_at >= now - INTAKE_LOOKBACK,
                ~linked,
            )
            .order_by(FieldReportRow.ts, FieldReportRow.public_id)
        )
    )


@dataclass
class Intake:
    """What one intake run did: the incidents opened and the sources linked (public ids)."""

    opened: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)


def intake(session: Session, now: datetime, settings: Settings) -> Intake:
    """Take in the pressure alarms and the crews' break reports not taken yet; the caller
    commits."""
    run = Intake()
    alarms = pressure_alarms(session)
    places = station_places(session, (alarm.station_id for alarm in alarms))
    reports: list[Report] = []
    for alarm in alarms:
        place = places.get(alarm.station_id)
        if place is None:
            log.warning("alarm %s: station %s has no position", alarm.public_id, alarm.station_id)
            continue
        reports.append(
            Report(
                kind="alarm",
                ref=alarm.public_id,
                lon=place.lon,
                lat=place.lat,
                reported_at=alarm.raised_at,
                title=f"Low pressure at {place.name}",
                description=alarm.condition,
                station_id=alarm.station_id,
            )
        )
    for row in break_reports(session, now):
        reports.append(
            Report(
                kind="field_report",
                ref=row.public_id,
                lon=row.lon,
                lat=row.lat,
                reported_at=row.ts,
                title=f"{row.kind.capitalize()} reported by {row.crew_id}",
                description=row.note,
                asset_id=row.asset_id,
            )
        )
    for report in reports:
        taken = take_report(session, report, SYSTEM_ACTOR, "system", now, settings)
        if taken.opened:
            run.opened.append(taken.incident.public_id)
        elif taken.linked:
            run.linked.append(f"{report.ref}->{taken.incident.public_id}")
    return run


# -- isolation and its tasks ---------------------------------------------------------------


def _repair_source(sources: Sequence[IncidentSource]) -> dict[str, Any]:
    """The repair task's `source` fields from the incident's first report: the caller of a
    call is kept informed by the tasks domain (crew assigned, job done); a crew's report
    carries where the crew stood."""
    first = sources[0]
    if first.kind == "call":
        return {"source": "call_centre", "caller": first.caller}
    if first.kind == "field_report":
        point = to_shape(first.position)
        return {"source": "crew_report", "position": [point.x, point.y]}
    return {"source": "scada_alarm"}


def _add_task(
    session: Session,
    incident: Incident,
    body: dict[str, Any],
    role: str,
    valve: str | None,
    ordinal: int,
    actor: str,
    now: datetime,
    settings: Settings,
) -> Task:
    task = create_task(session, body, actor, now, settings)
    session.add(
        IncidentTask(
            task_id=task.id, incident_id=incident.id, role=role, valve_id=valve, ordinal=ordinal
        )
    )
    session.flush()
    return task


def _valve_task(
    incident: Incident, valve: str, order: int, count: int, close: bool
) -> dict[str, Any]:
    verb = "Close" if close else "Open"
    why = (
        f"shut off the break on {incident.pipe_id}: close in the order given"
        if close
        else f"{incident.pipe_id} is repaired: open again slowly, in the order given"
    )
    return {
        "kind": "valve_operation",
        "priority": PRIORITY,
        "source": "plan",
        "title": f"{verb} valve {valve} ({incident.public_id}, {order}/{count})",
        "description": f"Incident {incident.public_id}: {why}, valve {order} of {count}.",
        "assets": [{"layer": "valves", "id": valve}],
        "required_skills": VALVE_SKILLS,
    }


def restoration_estimate(
    session: Session, pipe_id: str, start: datetime, repair: Task, settings: Settings
) -> datetime | None:
    """Start plus the hours of the pipe's diameter band; the repair task's promised
    completion when no band applies (or the setting is empty)."""
    diameter = session.scalar(sa.select(Pipe.diameter_mm).where(Pipe.public_id == pipe_id))
    for limit, hours in settings.incident_restoration_bands:
        if limit is None or (diameter is not None and diameter <= limit):
            return start + timedelta(hours=hours)
    return repair.promised_completion_at


def isolate(
    session: Session, public_id: str, body: Any, actor: str, now: datetime, settings: Settings
) -> Incident:
    """The dispatcher confirms the broken pipe: trace it, store the answer, send out a task
    per valve to close (the trace's order) and the repair, and tell the customers."""
    fields = known_fields(body, ("pipe_id",))
    pipe_id = text(fields.get("pipe_id"), "pipe_id", 64)
    incident = get_incident(session, public_id, lock=True)
    next_state(incident.state, "isolate")  # a Conflict before the trace's work
    answer = isolation(session, IsolationQuery(pipe_id=pipe_id))
    incident.pipe_id = pipe_id
    incident.isolation = isolation_body(answer)
    incident.isolated_at = now
    valves = [valve.public_id for valve in answer.trace.valves_to_close]
    _step(
        session,
        incident,
        "isolate",
        actor,
        "user",
        now,
        f"{pipe_id}: {len(valves)} valve(s) to close, {incident.isolation['customers']} "
        "customer(s) without water",
    )
    for order, valve in enumerate(valves, start=1):
        task_body = _valve_task(incident, valve, order, len(valves), close=True)
        _add_task(session, incident, task_body, "close_valve", valve, order, actor, now, settings)
    repair_body = {
        "kind": "repair",
        "priority": PRIORITY,
        "title": f"Repair burst main {pipe_id} ({incident.public_id})",
        "description": f"Incident {incident.public_id}: {incident.title}",
        "assets": [{"layer": "pipes", "id": pipe_id}],
        "required_skills": REPAIR_SKILLS,
        **_repair_source(sources_of(session, incident)),
    }
    repair = _add_task(session, incident, repair_body, "repair", None, 0, actor, now, settings)
    incident.estimated_restoration = restoration_estimate(session, pipe_id, now, repair, settings)
    if not valves:
        _step(
            session, incident, "valves_closed", WORKFLOW_ACTOR, "system", now, "no valve to close"
        )
    outages.notify(session, incident, "water_off", now, settings)
    return incident


def update(
    session: Session, public_id: str, body: Any, actor: str, now: datetime, settings: Settings
) -> Incident:
    """A new estimated restoration: customers without water get an update."""
    fields = known_fields(body, ("estimated_restoration",))
    if fields.get("estimated_restoration") is None:
        raise InvalidField("estimated_restoration", "is required: an ISO 8601 date-time")
    at = moment(fields["estimated_restoration"], "estimated_restoration")
    if at <= now:
        raise InvalidField("estimated_restoration", "must be in the future")
    incident = get_incident(session, public_id, lock=True)
    next_state(incident.state, "estimate")
    if at == incident.estimated_restoration:
        return incident  # nothing new to tell
    incident.estimated_restoration = at
    _step(session, incident, "estimate", actor, "user", now, f"water back by {at.isoformat()}")
    if incident.state in WATER_OFF_STATES:
        outages.notify(session, incident, "water_update", now, settings)
    return incident


def cancel(session: Session, public_id: str, body: Any, actor: str, now: datetime) -> Incident:
    """A false alarm or a duplicate: the incident ends, its open tasks are cancelled."""
    fields = known_fields(body, ("reason",))
    reason = text(fields.get("reason"), "reason", MAX_DESCRIPTION)
    incident = get_incident(session, public_id, lock=True)
    _step(session, incident, "cancel", actor, "user", now, reason)
    incident.closed_at = now
    for _, task in tasks_of(session, incident):
        if task.state in OPEN_TASK_STATES:
            transition(
                session,
                task,
                "cancel",
                actor=actor,
                actor_kind="dispatcher",
                at=now,
                note=f"incident {incident.public_id} cancelled: {reason}",
            )
    return incident


# -- following the tasks -------------------------------------------------------------------


def _settled(tasks: Sequence[tuple[IncidentTask, Task]], role: str) -> bool:
    return all(task.state in SETTLED_TASK_STATES for link, task in tasks if link.role == role)


def _reopen(session: Session, incident: Incident, at: datetime, settings: Settings) -> None:
    """The repair passed its check: the same valves opened again, in the same order."""
    closes = [link for link, _ in tasks_of(session, incident) if link.role == "close_valve"]
    _step(session, incident, "repaired", WORKFLOW_ACTOR, "system", at, "repair verified")
    for link in closes:
        assert link.valve_id is not None
        body = _valve_task(incident, link.valve_id, link.ordinal, len(closes), close=False)
        _add_task(
            session,
            incident,
            body,
            "open_valve",
            link.valve_id,
            link.ordinal,
            WORKFLOW_ACTOR,
            at,
            settings,
        )
    if not closes:
        _close(session, incident, at, settings)


def _close(session: Session, incident: Incident, at: datetime, settings: Settings) -> None:
    _step(session, incident, "restored", WORKFLOW_ACTOR, "system", at, "water back on")
    incident.closed_at = at
    outages.notify(session, incident, "water_restored", at, settings)


def follow_task(session: Session, event: TaskEvent, settings: Settings) -> None:
    """Move the incident a task belongs to on, as its tasks settle."""
    if event.to_state not in SETTLED_TASK_STATES or event.from_state == event.to_state:
        return
    link = session.scalar(
        sa.select(IncidentTask)
        .join(Task, Task.id == IncidentTask.task_id)
        .where(Task.public_id == event.task_id)
    )
    if link is None:
        return
    incident = session.scalar(
        sa.select(Incident).where(Incident.id == link.incident_id).with_for_update()
    )
    assert incident is not None
    tasks = tasks_of(session, incident)
    if link.role == "close_valve" and incident.state == "isolating":
        if _settled(tasks, "close_valve"):
            _step(
                session,
                incident,
                "valves_closed",
                WORKFLOW_ACTOR,
                "system",
                event.at,
                "every valve to close is closed",
            )
    elif link.role == "repair" and event.to_state == "verified":
        if incident.state in ("isolating", "repairing"):
            _reopen(session, incident, event.at, settings)
    elif link.role == "open_valve" and incident.state == "restoring" and _settled(tasks, link.role):
        _close(session, incident, event.at, settings)


@events.listen
def on_task_event(session: Session, event: TaskEvent) -> None:
    """Called inside the transaction of every task event (fieldline.server.tasks.events)."""
    follow_task(session, event, get_settings())


# -- live ----------------------------------------------------------------------------------


def announce(session: Session, live: Live, now: datetime) -> int:
    """Publish the steps not announced yet as `incident` events (live/outbox.py); the caller
    commits."""
    from fieldline.server.incidents.payloads import incident_event

    def events(steps: Sequence[IncidentStep]) -> Iterator[dict[str, Any]]:
        incidents = {
            incident.id: incident
            for incident in session.scalars(
                sa.select(Incident).where(Incident.id.in_({step.incident_id for step in steps}))
            )
        }
        for step in steps:
            yield incident_event(session, incidents[step.incident_id], step)

    return publish_unannounced(session, live, IncidentStep, now, events)
