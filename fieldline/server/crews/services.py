"""Crews: who they are, what they can do, when they work, which devices report for them, and
what each is doing now (the roster the dispatcher chooses from).

Every value from a request or the command line is checked here; a bad one is an InvalidField
naming it, raised before anything is written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.gis.models import SRID
from fieldline.server.crews.models import (
    CREW_MODES,
    CREW_SKILLS,
    DEVICE_KINDS,
    MEMBER_ROLES,
    Crew,
    CrewMember,
    CrewShift,
    Device,
)
from fieldline.server.fields import choice, moment, phone_number, text
from fieldline.server.telemetry.models import FieldReportRow, Position, TaskStatusEvent
from fieldline.settings import get_settings

CREW_FIELDS = ("name", "mode", "skills", "depot", "phone", "members")
MEMBER_FIELDS = ("name", "role", "phone")
CREW_STATUSES = ("off_shift", "no_signal", "busy", "available")
MAX_NAME_LENGTH = 200
MAX_IDENTIFIER_LENGTH = 200
# A longer duty (a weekend on call) is entered as several shifts; this catches a mistyped date.
MAX_SHIFT = timedelta(hours=24)
# The crew list shows the shifts within this much of now: today's, whatever the time zone.
SHIFTS_AROUND_NOW = timedelta(hours=12)
# MQTT wildcards and spaces cannot be part of a topic level or a device's login.
BAD_IDENTIFIER = re.compile(r"[\s+#\x00]")


# --- checks -------------------------------------------------------------------------------


def _phone(value: Any, field: str) -> str | None:
    if value is None:
        return None
    # The rule the notices reach people by: a crew's phone gets texts too.
    if not isinstance(value, str) or phone_number(value) is None:
        raise InvalidField(field, "must be a phone number such as +358 40 123 4567, or null")
    return value.strip()


def check_skills(value: Any, field: str = "skills") -> list[str]:
    """Known skills without repeats, in the vocabulary's order."""
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise InvalidField(field, "must be a list of skills")
    given = list(value)
    for i, skill in enumerate(given):
        if skill not in CREW_SKILLS:
            raise InvalidField(
                f"{field}[{i}]", f"{skill!r} is not a skill; known: {', '.join(CREW_SKILLS)}"
            )
    return [skill for skill in CREW_SKILLS if skill in given]


def check_point(value: Any, field: str) -> tuple[float, float] | None:
    """A point as [lon, lat], {"lon": .., "lat": ..} or a GeoJSON Point, in WGS 84."""
    if value is None:
        return None
    coordinates: Any = value
    if isinstance(value, Mapping):
        if value.get("type") == "Point":
            coordinates = value.get("coordinates")
        elif set(value) == {"lon", "lat"}:
            coordinates = [value["lon"], value["lat"]]
        else:
            raise InvalidField(field, 'must be {"lon": .., "lat": ..} or a GeoJSON Point')
    if (
        isinstance(coordinates, str)
        or not isinstance(coordinates, Sequence)
        or len(coordinates) != 2
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates)
        or not all(math.isfinite(c) for c in coordinates)
    ):
        raise InvalidField(field, "must be two finite numbers, longitude then latitude")
    lon, lat = float(coordinates[0]), float(coordinates[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidField(
            field, f"({lon}, {lat}) is outside longitude -180..180 / latitude -90..90"
        )
    return lon, lat


def _members(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidField("members", "must be a list of {name, role, phone}")
    members = []
    for i, raw in enumerate(value):
        field = f"members[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidField(field, "must be an object with name, role and phone")
        for key in raw:
            if key not in MEMBER_FIELDS:
                raise InvalidField(f"{field}.{key}", "unknown; a member has name, role, phone")
        members.append(
            {
                "name": text(raw.get("name"), f"{field}.name", MAX_NAME_LENGTH),
                "role": choice(raw.get("role", "member"), f"{field}.role", MEMBER_ROLES),
                "phone": _phone(raw.get("phone"), f"{field}.phone"),
            }
        )
    leads = [i for i, member in enumerate(members) if member["role"] == "lead"]
    if len(leads) > 1:
        # The customer and the dispatcher deal with one named contact per crew.
        raise InvalidField(f"members[{leads[1]}].role", "a crew has at most one lead")
    return members


def crew_fields(data: Any, *, partial: bool) -> dict[str, Any]:
    """A request body for a crew: a JSON object of known fields; `name` unless `partial`."""
    if not isinstance(data, Mapping):
        raise InvalidField("body", "must be a JSON object")
    for key in data:
        if key not in CREW_FIELDS:
            raise InvalidField(key, "unknown field; a crew has " + ", ".join(CREW_FIELDS))
    if not partial and "name" not in data:
        raise InvalidField("name", "is required")
    return dict(data)


# --- crews ----------------------------------------------------------------------------------


def create_crew(
    session: Session,
    name: str,
    mode: str = "vehicle",
    *,
    skills: Iterable[str] = (),
    depot: Any = None,
    phone: str | None = None,
    members: Sequence[Mapping[str, Any]] = (),
) -> Crew:
    """A new crew; `depot` is a point in any form `check_point` takes."""
    point = check_point(depot, "depot")
    crew = Crew(
        name=text(name, "name", MAX_NAME_LENGTH),
        mode=choice(mode, "mode", CREW_MODES),
        skills=check_skills(skills),
        depot=_geometry(point),
        phone=_phone(phone, "phone"),
    )
    people = _members(members)
    session.add(crew)
    session.flush()
    session.add_all(CrewMember(crew_id=crew.id, **person) for person in people)
    session.flush()
    session.refresh(crew)  # the public id comes from the database
    return crew


def get_crew(session: Session, public_id: str) -> Crew:
    crew = session.scalar(sa.select(Crew).where(Crew.public_id == public_id))
    if crew is None:
        raise NotFound(f"no crew {public_id}")
    return crew


def update_crew(session: Session, public_id: str, changes: Mapping[str, Any]) -> Crew:
    """Change the fields `changes` names; `members` replaces the whole list."""
    changes = crew_fields(changes, partial=True)
    checked: dict[str, Any] = {}
    if "name" in changes:
        checked["name"] = text(changes["name"], "name", MAX_NAME_LENGTH)
    if "mode" in changes:
        checked["mode"] = choice(changes["mode"], "mode", CREW_MODES)
    if "skills" in changes:
        checked["skills"] = check_skills(changes["skills"])
    if "depot" in changes:
        checked["depot"] = _geometry(check_point(changes["depot"], "depot"))
    if "phone" in changes:
        checked["phone"] = _phone(changes["phone"], "phone")
    people = _members(changes["members"]) if "members" in changes else None
    crew = get_crew(session, public_id)
    for name, value in checked.items():
        setattr(crew, name, value)
    if people is not None:
        session.execute(sa.delete(CrewMember).where(CrewMember.crew_id == crew.id))
        session.add_all(CrewMember(crew_id=crew.id, **person) for person in people)
    session.flush()
    session.refresh(crew)
    return crew


def delete_crew(session: Session, public_id: str) -> None:
    """Remove a crew with its members, shifts and device bindings, unless its history (fixes,
    reports, task events) or a task refers to it."""
    crew = get_crew(session, public_id)
    history = sa.union_all(
        sa.select(sa.literal(1)).where(Position.crew_id == public_id).limit(1),
        sa.select(sa.literal(1)).where(FieldReportRow.crew_id == public_id).limit(1),
        sa.select(sa.literal(1)).where(TaskStatusEvent.crew_id == public_id).limit(1),
    )
    if session.execute(history).first() is not None:
        raise Conflict(f"{public_id} has recorded fixes or reports; it is kept for that history")
    try:
        with session.begin_nested():
            session.delete(crew)
            session.flush()
    except IntegrityError:
        raise Conflict(f"{public_id} is referenced by tasks; it cannot be deleted") from None


def _geometry(point: tuple[float, float] | None) -> Any:
    return None if point is None else from_shape(Point(*point), srid=SRID)


# --- shifts ---------------------------------------------------------------------------------


def add_shift(session: Session, crew_public_id: str, starts_at: Any, ends_at: Any) -> CrewShift:
    """A shift from `starts_at` (included) to `ends_at` (excluded); a shift overlapping another
    of the crew is a Conflict."""
    starts, ends = moment(starts_at, "starts_at"), moment(ends_at, "ends_at")
    if ends <= starts:
        raise InvalidField("ends_at", "must be later than starts_at")
    if ends - starts > MAX_SHIFT:
        raise InvalidField(
            "ends_at", "a shift lasts at most 24 hours; enter a longer duty as several"
        )
    crew = get_crew(session, crew_public_id)
    clash = session.scalar(
        sa.select(CrewShift)
        .where(CrewShift.crew_id == crew.id, CrewShift.starts_at < ends, CrewShift.ends_at > starts)
        .limit(1)
    )
    if clash is not None:
        raise Conflict(
            f"overlaps shift {clash.id} of {crew_public_id} "
            f"({clash.starts_at.isoformat()} to {clash.ends_at.isoformat()})"
        )
    shift = CrewShift(crew_id=crew.id, starts_at=starts, ends_at=ends)
    try:
        with session.begin_nested():
            session.add(shift)
            session.flush()
    except IntegrityError:  # another request wrote an overlapping shift meanwhile
        raise Conflict(f"overlaps another shift of {crew_public_id}") from None
    return shift


def list_shifts(
    session: Session, crew_public_id: str, since: datetime | None, until: datetime | None
) -> list[CrewShift]:
    """The crew's shifts overlapping [since, until), earliest first."""
    crew = get_crew(session, crew_public_id)
    query = sa.select(CrewShift).where(CrewShift.crew_id == crew.id)
    if since is not None:
        query = query.where(CrewShift.ends_at > since)
    if until is not None:
        query = query.where(CrewShift.starts_at < until)
    return list(session.scalars(query.order_by(CrewShift.starts_at)))


def delete_shift(session: Session, crew_public_id: str, shift_id: int) -> None:
    crew = get_crew(session, crew_public_id)
    shift = session.get(CrewShift, shift_id)
    if shift is None or shift.crew_id != crew.id:
        raise NotFound(f"{crew_public_id} has no shift {shift_id}")
    session.delete(shift)
    session.flush()


# --- devices --------------------------------------------------------------------------------


def _identifier(kind: str, identifier: Any) -> str:
    if not isinstance(identifier, str) or not identifier or len(identifier) > MAX_IDENTIFIER_LENGTH:
        raise InvalidField(
            "identifier", f"must be a name of 1 to {MAX_IDENTIFIER_LENGTH} characters"
        )
    if BAD_IDENTIFIER.search(identifier):
        raise InvalidField("identifier", "must not contain spaces, '+' or '#'")
    parts = identifier.split("/")
    if kind == "owntracks" and (len(parts) != 2 or "" in parts):
        raise InvalidField("identifier", "an OwnTracks device is named user/device")
    if kind == "own" and len(parts) != 1:
        raise InvalidField("identifier", "a handheld's name has no '/'")
    return identifier


def bind_device(session: Session, crew_public_id: str, kind: Any, identifier: Any) -> Device:
    """Bind a device to a crew: `own` (a handheld name) or `owntracks` ("user/device").
    Binding it again to the same crew is a no-op; a device of another crew is a Conflict."""
    kind = choice(kind, "kind", DEVICE_KINDS)
    identifier = _identifier(kind, identifier)
    crew = get_crew(session, crew_public_id)
    taken = session.scalar(
        sa.select(Device).where(Device.kind == kind, Device.identifier == identifier)
    )
    if taken is not None and taken.crew_id != crew.id:
        owner = session.get(Crew, taken.crew_id)
        owner_id = owner.public_id if owner else "another crew"
        raise Conflict(f"{kind} device {identifier} is bound to {owner_id}; unbind it there first")
    if taken is not None:
        return taken
    device = Device(crew_id=crew.id, kind=kind, identifier=identifier)
    session.add(device)
    session.flush()
    return device


def unbind_device(session: Session, crew_public_id: str, kind: str, identifier: str) -> None:
    crew = get_crew(session, crew_public_id)
    device = session.scalar(
        sa.select(Device).where(
            Device.crew_id == crew.id, Device.kind == kind, Device.identifier == identifier
        )
    )
    if device is None:
        raise NotFound(f"{crew_public_id} has no {kind} device {identifier}")
    session.delete(device)
    session.flush()


def signed_in_device(session: Session, crew_public_id: str, device_id: Any) -> tuple[Crew, Device]:
    """The crew and its handheld (an `own` device) a sign-in names: NotFound for an unknown
    crew, InvalidField naming `device_id` for a device that is not this crew's. The sign-in
    then gives the device a fresh MQTT login (mqtt_access.services.sign_in_login)."""
    try:
        identifier = _identifier("own", device_id)
    except InvalidField as exc:
        raise InvalidField("device_id", f"must be a handheld's name: {exc.detail}") from None
    crew = get_crew(session, crew_public_id)
    device = session.scalar(
        sa.select(Device).where(
            Device.crew_id == crew.id, Device.kind == "own", Device.identifier == identifier
        )
    )
    if device is None:
        raise InvalidField(
            "device_id",
            f"device {identifier} is not bound to {crew.public_id}; bind it with "
            f"`fieldline devices add --crew {crew.public_id} --identifier {identifier}`",
        )
    return crew, device


# --- status and roster ----------------------------------------------------------------------


def crew_status(
    now: datetime,
    shifts_now: bool,
    latest_fix_time: datetime | None,
    active_tasks: int,
    stale_after_s: float,
) -> str:
    """What a crew is doing, the first that holds: `off_shift` (no shift covers now),
    `no_signal` (no fix within `stale_after_s`, the limit itself still counts as a signal),
    `busy` (it has active tasks), `available`."""
    if not shifts_now:
        return "off_shift"
    if latest_fix_time is None or (now - latest_fix_time).total_seconds() > stale_after_s:
        return "no_signal"
    if active_tasks > 0:
        return "busy"
    return "available"


def active_task_counts(session: Session, crews: Collection[str] | None = None) -> dict[int, int]:
    """Active tasks per crew (db id), as the tasks domain counts them; of the crews with these
    public ids only, when given."""
    from fieldline.server.tasks.services import active_task_counts as counts  # tasks need crews

    return counts(session, crews)


@dataclass(frozen=True)
class CrewState:
    id: int  # the database id, as tasks refer to crews
    public_id: str
    name: str
    mode: str
    skills: tuple[str, ...]
    position: tuple[float, float] | None  # (lon, lat): the latest fix, else the depot
    position_time: datetime | None  # the fix's time; None for the depot or no position
    status: str


# The latest fix per crew public id (`live().latest()`), or what gives those of the crews
# asked (`live().latest`): a page of crews then reads its own fixes only.
Fixes = Mapping[str, Mapping[str, Any]]
LatestFixes = Fixes | Callable[[list[str]], Fixes]


@dataclass(frozen=True)
class CrewFilter:
    """The crews a listing covers: those `where` selects (every crew without conditions), the
    first `limit` of them by public id when given."""

    where: Sequence[sa.ColumnElement[bool]] = ()
    limit: int | None = None


def _crew_rows(session: Session, crews: CrewFilter) -> list[sa.Row[Any]]:
    """The crews, by public id, as plain rows with the depot's coordinates read by PostGIS:
    ORM objects and a WKB parse per depot cost seconds for 10,000 crews."""
    query = sa.select(
        Crew.id,
        Crew.public_id,
        Crew.name,
        Crew.mode,
        Crew.skills,
        Crew.phone,
        sa.func.ST_X(Crew.depot).label("depot_lon"),
        sa.func.ST_Y(Crew.depot).label("depot_lat"),
    )
    query = query.where(*crews.where).order_by(Crew.public_id).limit(crews.limit)
    return list(session.execute(query))


def _of_crews(crew_id: InstrumentedAttribute[int], crews: CrewFilter) -> sa.ColumnElement[bool]:
    """Rows of the crews `crews` selects, as a sub-select rather than a list of their ids:
    one plan for one crew or 10,000."""
    if not crews.where and crews.limit is None:
        return sa.true()
    ids = sa.select(Crew.id).where(*crews.where).order_by(Crew.public_id).limit(crews.limit)
    return crew_id.in_(ids)


def _row_depot(row: sa.Row[Any]) -> tuple[float, float] | None:
    return None if row.depot_lon is None else (row.depot_lon, row.depot_lat)


def _on_shift(session: Session, crews: CrewFilter, now: datetime) -> set[int]:
    return set(
        session.scalars(
            sa.select(CrewShift.crew_id).where(
                _of_crews(CrewShift.crew_id, crews),
                CrewShift.starts_at <= now,
                CrewShift.ends_at > now,
            )
        )
    )


def _states(
    session: Session,
    rows: Sequence[sa.Row[Any]],
    crews: CrewFilter,
    latest: Mapping[str, Mapping[str, Any]],
    now: datetime,
    active_tasks: Mapping[int, int],
    stale_after_s: float | None,
) -> list[CrewState]:
    stale_s = get_settings().crew_stale_after_s if stale_after_s is None else stale_after_s
    on_shift = _on_shift(session, crews, now) if rows else set()
    states = []
    for crew in rows:
        fix = latest.get(crew.public_id)
        fix_time = datetime.fromisoformat(fix["fix_time"]) if fix else None
        position = (float(fix["lon"]), float(fix["lat"])) if fix else _row_depot(crew)
        status = crew_status(
            now, crew.id in on_shift, fix_time, active_tasks.get(crew.id, 0), stale_s
        )
        states.append(
            CrewState(
                id=crew.id,
                public_id=crew.public_id,
                name=crew.name,
                mode=crew.mode,
                skills=tuple(crew.skills),
                position=position,
                position_time=fix_time,
                status=status,
            )
        )
    return states


def roster(
    session: Session,
    latest: Mapping[str, Mapping[str, Any]],
    now: datetime,
    active_tasks: Mapping[int, int],
    skills: Iterable[str] | None = None,
    *,
    stale_after_s: float | None = None,
    public_ids: Collection[str] | None = None,
) -> list[CrewState]:
    """Every crew (with all of `skills`, when given; of `public_ids`, when given) and its
    status at `now`, by public id. `latest` is the latest fix per crew public id
    (`live().latest()`); `stale_after_s` defaults to FIELDLINE_CREW_STALE_AFTER_S."""
    where: list[sa.ColumnElement[bool]] = []
    if skills is not None:
        required = check_skills(skills)
        if required:
            where.append(Crew.skills.contains(required))
    if public_ids is not None:
        where.append(Crew.public_id.in_(list(public_ids)))
    crews = CrewFilter(tuple(where))
    return _states(
        session, _crew_rows(session, crews), crews, latest, now, active_tasks, stale_after_s
    )


# --- the crew list of the API ---------------------------------------------------------------


def _describe(
    session: Session,
    crews: CrewFilter,
    latest_fixes: LatestFixes,
    now: datetime,
    active_tasks: Mapping[int, int],
    stale_after_s: float | None,
) -> list[dict[str, Any]]:
    rows = _crew_rows(session, crews)
    if not rows:
        return []
    latest = (
        latest_fixes([row.public_id for row in rows]) if callable(latest_fixes) else latest_fixes
    )
    members: dict[int, list[dict[str, Any]]] = {}
    for member in session.execute(
        sa.select(CrewMember.crew_id, CrewMember.name, CrewMember.role, CrewMember.phone)
        .where(_of_crews(CrewMember.crew_id, crews))
        .order_by(CrewMember.id)
    ):
        members.setdefault(member.crew_id, []).append(
            {"name": member.name, "role": member.role, "phone": member.phone}
        )
    devices: dict[int, list[dict[str, str]]] = {}
    for device in session.execute(
        sa.select(Device.crew_id, Device.kind, Device.identifier)
        .where(_of_crews(Device.crew_id, crews))
        .order_by(Device.id)
    ):
        devices.setdefault(device.crew_id, []).append(
            {"kind": device.kind, "identifier": device.identifier}
        )
    shifts: dict[int, list[dict[str, Any]]] = {}
    for shift in session.execute(
        sa.select(CrewShift.crew_id, CrewShift.id, CrewShift.starts_at, CrewShift.ends_at)
        .where(
            _of_crews(CrewShift.crew_id, crews),
            CrewShift.ends_at > now - SHIFTS_AROUND_NOW,
            CrewShift.starts_at < now + SHIFTS_AROUND_NOW,
        )
        .order_by(CrewShift.starts_at)
    ):
        shifts.setdefault(shift.crew_id, []).append(
            _shift_json(shift.id, shift.starts_at, shift.ends_at)
        )
    described = []
    states = _states(session, rows, crews, latest, now, active_tasks, stale_after_s)
    for crew, state in zip(rows, states, strict=True):
        depot = _row_depot(crew)
        described.append(
            {
                "id": crew.public_id,
                "name": crew.name,
                "mode": crew.mode,
                "skills": list(crew.skills),
                "phone": crew.phone,
                "depot": None if depot is None else {"lon": depot[0], "lat": depot[1]},
                "status": state.status,
                "position": None
                if state.position is None
                else {
                    "lon": state.position[0],
                    "lat": state.position[1],
                    "time": state.position_time.isoformat() if state.position_time else None,
                    "source": "fix" if state.position_time else "depot",
                },
                "members": members.get(crew.id, []),
                "shifts": shifts.get(crew.id, []),
                "devices": devices.get(crew.id, []),
                "latest": latest.get(crew.public_id),
            }
        )
    return described


def list_crews(
    session: Session,
    latest: LatestFixes,
    now: datetime,
    active_tasks: Mapping[int, int],
    *,
    stale_after_s: float | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> list[dict[str, Any]]:
    """Every crew with its status, members, shifts around now, devices and latest fix, by
    crew id; a page of `limit` crews after the crew id `after`, when given."""
    where = () if after is None else (Crew.public_id > after,)
    return _describe(session, CrewFilter(where, limit), latest, now, active_tasks, stale_after_s)


def describe_crew(
    session: Session,
    public_id: str,
    latest: LatestFixes,
    now: datetime,
    active_tasks: Mapping[int, int],
    *,
    stale_after_s: float | None = None,
) -> dict[str, Any]:
    crews = CrewFilter((Crew.public_id == public_id,))
    found = _describe(session, crews, latest, now, active_tasks, stale_after_s)
    if not found:
        raise NotFound(f"no crew {public_id}")
    return found[0]


def shift_json(shift: CrewShift) -> dict[str, Any]:
    return _shift_json(shift.id, shift.starts_at, shift.ends_at)


def _shift_json(shift_id: int, starts_at: datetime, ends_at: datetime) -> dict[str, Any]:
    return {"id": shift_id, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()}
