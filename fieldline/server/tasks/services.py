"""Work orders: the only code that creates or changes a task.

Every value from a request is checked here before anything is written; a bad one is an
InvalidField naming it (`assets[2].id`, `caller.phone`). Which step is legal is the state
machine's call (states.py); what each step does to the task is `_EFFECTS`. Every change is
recorded as a TaskEvent (events.py) for the listeners inside the transaction and for
`announce` after the commit: the live stream and the crews' inboxes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import redis
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, shape
from sqlalchemy.orm import Session, object_session

from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.gis.layers import LAYERS, Layer
from fieldline.gis.models import SRID
from fieldline.server.crews.models import Crew
from fieldline.server.crews.services import check_point, check_skills
from fieldline.server.fields import (
    choice,
    is_email,
    known_fields,
    moment,
    optional_text,
    phone_number,
    text,
)
from fieldline.server.live.services import Live
from fieldline.server.tasks import events
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.inbox import Delivery, Inbox, messages_for
from fieldline.server.tasks.models import (
    ACTOR_KINDS,
    PRIORITIES,
    TASK_KINDS,
    TASK_SOURCES,
    TRAVEL_MODES,
    Task,
    TaskAsset,
    TaskTransition,
)
from fieldline.server.tasks.states import (
    ACTIONS,
    ACTIVE_STATES,
    OPEN_STATES,
    OVERRIDE_ACTIONS,
    IllegalTransition,
    crew_progress,
    next_state,
)
from fieldline.settings import Settings, get_settings

log = logging.getLogger(__name__)

CREATE_FIELDS = (
    "kind",
    "priority",
    "source",
    "title",
    "description",
    "caller",
    "assets",
    "site",
    "area",
    "mode",
    "required_skills",
    "promised_arrival_at",
    "position",
)
UPDATE_FIELDS = ("title", "description", "priority", "caller")
TRANSITION_FIELDS = ("action", "crew", "note", "position", "at")
CALLER_FIELDS = ("name", "phone", "email")
# What a crew may do to its own task; the rest is the dispatcher's.
CREW_ACTIONS = ("accept", "decline", "start", "arrive", "complete")
# The handheld reports `rejected` when the crew turns the offer down.
CREW_DECLINES = "rejected"
KIND_TITLES = {
    "repair": "Repair",
    "patrol": "Patrol",
    "inspection": "Inspection",
    "meter_reading": "Meter reading",
    "valve_operation": "Valve operation",
}
MAX_TITLE = 200
MAX_TEXT = 5000
MAX_ASSETS = 5000
MAX_AREA_VERTICES = 10_000
# A time a person sends may run this far ahead of the server's clock.
MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class KindRule:
    """The assets a kind of task names: the role each layer's assets play, how many."""

    roles: Mapping[str, str]  # layer -> role
    least: int = 0
    most: int | None = None
    takes_site: bool = False  # a point may stand for the asset, or say where on it
    takes_area: bool = False
    takes_mode: bool = False


_NETWORK_TARGETS = {name: "target" for name, layer in LAYERS.items() if layer.network}
KIND_RULES: dict[str, KindRule] = {
    "repair": KindRule(_NETWORK_TARGETS, most=1, takes_site=True),
    "inspection": KindRule(_NETWORK_TARGETS, takes_site=True),
    "valve_operation": KindRule({"valves": "target"}, least=1, most=1),
    "meter_reading": KindRule({"meters": "meter"}, least=1),
    "patrol": KindRule(
        {"pipes": "pipe", "valves": "checkpoint", "hydrants": "checkpoint"},
        takes_area=True,
        takes_mode=True,
    ),
}


class StatusRefused(Exception):
    """A crew's status report that cannot apply; `reason` names why (the dead letter's)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- checks -------------------------------------------------------------------------------


def check_caller(value: Any, required: bool) -> dict[str, str] | None:
    """{name, phone, email}, with a phone or an e-mail so that notices can reach the caller."""
    if value is None:
        if required:
            raise InvalidField(
                "caller", "a call-centre task needs the caller: {name, phone, email}"
            )
        return None
    fields = known_fields(value, CALLER_FIELDS)
    caller: dict[str, str] = {}
    name = optional_text(fields.get("name"), "caller.name", MAX_TITLE)
    if name:
        caller["name"] = name
    phone = optional_text(fields.get("phone"), "caller.phone", 40)
    if phone:
        if phone_number(phone) is None:
            raise InvalidField("caller.phone", f"{phone!r} is not a phone number")
        caller["phone"] = phone
    email = optional_text(fields.get("email"), "caller.email", 320)
    if email:
        if not is_email(email):
            raise InvalidField("caller.email", f"{email!r} is not an e-mail address")
        caller["email"] = email
    if "phone" not in caller and "email" not in caller:
        raise InvalidField("caller", "needs a phone or an email, to keep the caller informed")
    return caller


def _check_area(value: Any) -> MultiPolygon:
    if not isinstance(value, Mapping) or value.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidField("area", "must be a GeoJSON Polygon or MultiPolygon")
    try:
        area = shape(value)
    except Exception:  # shapely raises several types for malformed coordinates
        raise InvalidField("area", "has malformed coordinates") from None
    if area.is_empty or shapely.get_num_coordinates(area) > MAX_AREA_VERTICES:
        raise InvalidField("area", f"must have 4 to {MAX_AREA_VERTICES} vertices")
    lons, lats = shapely.get_coordinates(area).T
    if not (lons.min() >= -180 and lons.max() <= 180 and lats.min() >= -90 and lats.max() <= 90):
        raise InvalidField("area", "is outside longitude -180..180 / latitude -90..90")
    if not area.is_valid:
        raise InvalidField("area", f"is not a valid polygon: {shapely.is_valid_reason(area)}")
    return area if isinstance(area, MultiPolygon) else MultiPolygon([area])


@dataclass(frozen=True)
class AssetRef:
    layer: str
    asset_id: str
    role: str
    field: str  # where the request named it, for errors


def _asset_refs(value: Any, rule: KindRule, kind: str) -> list[AssetRef]:
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        raise InvalidField("assets", "must be a list of {layer, id}")
    if len(value) > MAX_ASSETS:
        raise InvalidField("assets", f"lists at most {MAX_ASSETS} assets")
    if len(value) < rule.least or (rule.most is not None and len(value) > rule.most):
        most = "" if rule.most is None else f" and at most {rule.most}"
        raise InvalidField("assets", f"a {kind} task names at least {rule.least}{most} asset(s)")
    refs, seen = [], set()
    for i, raw in enumerate(value):
        field = f"assets[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidField(field, "must be an object {layer, id}")
        known_fields(raw, ("layer", "id"))
        layer = str(raw.get("layer"))
        if layer not in rule.roles:
            raise InvalidField(
                f"{field}.layer",
                f"a {kind} task takes assets of: {', '.join(rule.roles)}; not {layer!r}",
            )
        asset_id = text(raw.get("id"), f"{field}.id", 100)
        assert asset_id is not None
        if (layer, asset_id) in seen:
            raise InvalidField(f"{field}.id", f"{layer} {asset_id} is listed twice")
        seen.add((layer, asset_id))
        refs.append(AssetRef(layer, asset_id, rule.roles[layer], field))
    return refs


def _position_column(layer: Layer) -> Any:
    geom = layer.table.c.geom
    # A line's place is its middle, measured along it.
    return (
        sa.func.ST_LineInterpolatePoint(geom, 0.5) if layer.geometry_type == "LineString" else geom
    )


def asset_positions(
    session: Session, wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[float, float]]:
    """(layer, public id) -> (lon, lat) of those that exist: a point asset's position, the
    middle of a line."""
    by_layer: dict[str, set[str]] = {}
    for layer, asset_id in wanted:
        by_layer.setdefault(layer, set()).add(asset_id)
    found: dict[tuple[str, str], tuple[float, float]] = {}
    for name, ids in by_layer.items():
        table = LAYERS[name].table
        place = _position_column(LAYERS[name])
        lon = sa.func.ST_X(place, type_=sa.Float)
        lat = sa.func.ST_Y(place, type_=sa.Float)
        rows = session.execute(
            sa.select(table.c.public_id, lon, lat).where(table.c.public_id.in_(sorted(ids)))
        )
        for public_id, x, y in cast(Iterable[tuple[str, float, float]], rows):
            found[(name, public_id)] = (x, y)
    return found


def _district(session: Session, place: Any) -> str | None:
    """The district of the nearest pipe that has one (the network's districts)."""
    pipes = LAYERS["pipes"].table
    return session.scalar(
        sa.select(pipes.c.district)
        .where(pipes.c.district.is_not(None))
        .order_by(pipes.c.geom.op("<->")(place))
        .limit(1)
    )


def _geometry(point: tuple[float, float] | None) -> Any:
    return None if point is None else from_shape(Point(*point), srid=SRID)


# --- service levels -----------------------------------------------------------------------


def promises(
    priority: str,
    created_at: datetime,
    appointment: datetime | None,
    settings: Settings,
) -> tuple[datetime, datetime]:
    """The promised arrival and completion: the priority's service levels from the creation,
    or from an appointment, after which the work gets the same time as without one."""
    arrival, completion = settings.sla_arrival[priority], settings.sla_completion[priority]
    if appointment is None:
        return created_at + arrival, created_at + completion
    return appointment, appointment + (completion - arrival)


# --- creating and editing -----------------------------------------------------------------


def create_task(
    session: Session,
    data: Any,
    actor: str,
    now: datetime,
    settings: Settings | None = None,
) -> Task:
    """A new task in state `created` from a request body (see README for its fields)."""
    settings = settings or get_settings()
    fields = known_fields(data, CREATE_FIELDS)
    kind = choice(fields.get("kind"), "kind", TASK_KINDS)
    priority = choice(fields.get("priority"), "priority", PRIORITIES)
    source = choice(fields.get("source"), "source", TASK_SOURCES)
    rule = KIND_RULES[kind]
    caller = check_caller(fields.get("caller"), required=source == "call_centre")
    description = optional_text(fields.get("description"), "description", MAX_TEXT)
    skills = check_skills(fields.get("required_skills", []), "required_skills")
    for name, allowed in (("site", rule.takes_site), ("area", rule.takes_area)):
        if name in fields and not allowed:
            raise InvalidField(name, f"a {kind} task does not take a {name}")
    if "mode" in fields and not rule.takes_mode:
        raise InvalidField("mode", "only a patrol has a travel mode")
    mode = choice(fields.get("mode", "vehicle"), "mode", TRAVEL_MODES) if rule.takes_mode else None
    if "position" in fields and source != "crew_report":
        raise InvalidField("position", "only a crew_report has the position it was reported at")
    position = check_point(fields.get("position"), "position")
    if source == "crew_report" and position is None:
        raise InvalidField("position", "a crew_report needs the position it was reported at")
    area = _check_area(fields["area"]) if fields.get("area") is not None else None
    site = check_point(fields.get("site"), "site")

    refs = _asset_refs(fields.get("assets", []), rule, kind)
    places = asset_positions(session, ((ref.layer, ref.asset_id) for ref in refs))
    for ref in refs:
        if (ref.layer, ref.asset_id) not in places:
            raise InvalidField(f"{ref.field}.id", f"there is no {ref.layer} {ref.asset_id}")
    targets = [places[(r.layer, r.asset_id)] for r in refs if r.role == "target"]
    if site is None and targets:
        site = targets[0]
    if site is None and rule.takes_site:
        site = position  # a crew's report of a problem where it stands
        if site is None:
            raise InvalidField("assets", f"a {kind} task needs an asset or a site")
    if kind == "patrol" and area is None and not any(r.role == "pipe" for r in refs):
        raise InvalidField("assets", "a patrol needs pipes, an area, or both")

    appointment = None
    if fields.get("promised_arrival_at") is not None:
        appointment = moment(fields["promised_arrival_at"], "promised_arrival_at")
        if appointment <= now:
            raise InvalidField("promised_arrival_at", "an appointment must be in the future")
    arrive_by, complete_by = promises(priority, now, appointment, settings)

    title = optional_text(fields.get("title"), "title", MAX_TITLE)
    if title is None:
        title = " ".join([KIND_TITLES[kind], *(ref.asset_id for ref in refs[:1])])
    if site is not None:
        place = _geometry(site)
    elif refs:
        place = _geometry(places[(refs[0].layer, refs[0].asset_id)])
    else:
        place = from_shape(area.representative_point(), srid=SRID) if area else None
    task = Task(
        kind=kind,
        priority=priority,
        source=source,
        title=title,
        description=description,
        caller=caller,
        site=_geometry(site),
        area=None if area is None else from_shape(area, srid=SRID),
        source_position=_geometry(position),
        mode=mode,
        required_skills=skills,
        district=None if place is None else _district(session, place),
        promised_arrival_at=arrive_by,
        promised_completion_at=complete_by,
        appointment=appointment is not None,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    session.flush()
    session.add_all(
        TaskAsset(task_id=task.id, role=ref.role, layer=ref.layer, asset_id=ref.asset_id, ordinal=i)
        for i, ref in enumerate(refs)
    )
    session.flush()
    session.refresh(task)  # the public id comes from the database
    events.record(session, TaskEvent(task.public_id, None, "create", "created", "created", now))
    return task


def get_task(session: Session, public_id: str, *, crew: str | None = None) -> Task:
    """`crew`: only that crew's task (a crew member's view); another's is not found."""
    task = session.scalar(sa.select(Task).where(Task.public_id == public_id))
    if task is None or (crew is not None and _crew_public_id(session, task.crew_id) != crew):
        raise NotFound(f"no task {public_id}")
    return task


def update_task(
    session: Session, public_id: str, data: Any, now: datetime, settings: Settings | None = None
) -> Task:
    """Change the title, description, priority (before completion: the promises follow it)
    or caller."""
    settings = settings or get_settings()
    fields = known_fields(data, UPDATE_FIELDS)
    task = _locked(session, get_task(session, public_id))
    checked: dict[str, Any] = {}  # every value checked before any is set
    if "title" in fields:
        checked["title"] = text(fields["title"], "title", MAX_TITLE)
    if "description" in fields:
        checked["description"] = optional_text(fields["description"], "description", MAX_TEXT)
    if "caller" in fields:
        checked["caller"] = check_caller(fields["caller"], required=task.source == "call_centre")
    if "priority" in fields:
        priority = choice(fields["priority"], "priority", PRIORITIES)
        if priority != task.priority and task.state not in OPEN_STATES:
            raise Conflict(f"{task.public_id} is {task.state}: its priority can no longer change")
        appointment = task.promised_arrival_at if task.appointment else None
        checked["priority"] = priority
        checked["promised_arrival_at"], checked["promised_completion_at"] = promises(
            priority, task.created_at, appointment, settings
        )
    for name, value in checked.items():
        setattr(task, name, value)
    task.updated_at = now
    session.flush()
    crew = _crew_public_id(session, task.crew_id)
    events.record(session, TaskEvent(task.public_id, crew, "update", task.state, task.state, now))
    return task


# --- transitions --------------------------------------------------------------------------


def _locked(session: Session, task: Task) -> Task:
    """The task re-read under a row lock: two dispatchers (or a dispatcher and the gateway)
    moving one task take turns, each seeing the other's result."""
    session.refresh(task, with_for_update=True)
    return task


def _crew_public_id(session: Session, crew_id: int | None) -> str | None:
    if crew_id is None:
        return None
    crew = session.get(Crew, crew_id)
    return None if crew is None else crew.public_id


def _resolve_crew(session: Session, crew: Crew | str | None) -> Crew | None:
    if crew is None or isinstance(crew, Crew):
        return crew
    found = session.scalar(sa.select(Crew).where(Crew.public_id == crew))
    if found is None:
        raise InvalidField("crew", f"there is no crew {crew}")
    return found


def _offer(task: Task, at: datetime, settings: Settings) -> None:
    task.offer_expires_at = at + timedelta(seconds=settings.offer_timeout_s)


def _assign(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    assert crew is not None
    task.crew_id = crew.id
    _offer(task, at, settings)


def _transfer(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    _assign(task, crew, at, settings)
    task.transfer_count += 1


def _accept(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    task.offer_expires_at = None


def _decline(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    task.crew_id = None
    task.offer_expires_at = None


def _arrive(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    task.arrived_at = task.arrived_at or at  # the first arrival counts for the promise


def _complete(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    task.completed_at = at


def _reject(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    task.reopen_count += 1
    task.completed_at = None  # done again later, or never
    _offer(task, at, settings)


def _approve(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    """The work the check sent back passes after all: it was done when the crew completed
    it, the end of the checked window, not now."""
    session = object_session(task)
    assert session is not None
    task.completed_at = session.scalar(
        sa.select(sa.func.max(TaskTransition.at)).where(
            TaskTransition.task_id == task.id, TaskTransition.action == "complete"
        )
    )
    task.offer_expires_at = None


def _cancel(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    task.offer_expires_at = None


def _nothing(task: Task, crew: Crew | None, at: datetime, settings: Settings) -> None:
    pass


# What each step does to the task besides its state.
_EFFECTS: dict[str, Callable[[Task, Crew | None, datetime, Settings], None]] = {
    "assign": _assign,
    "transfer": _transfer,
    "accept": _accept,
    "decline": _decline,
    "start": _nothing,
    "arrive": _arrive,
    "complete": _complete,
    "verify": _nothing,
    "reject": _reject,
    "approve": _approve,
    "cancel": _cancel,
}
assert set(_EFFECTS) == set(ACTIONS), "every action needs its effect"


def transition(
    session: Session,
    task: Task,
    action: str,
    *,
    actor: str,
    actor_kind: str,
    at: datetime,
    crew: Crew | str | None = None,
    position: tuple[float, float] | None = None,
    note: str | None = None,
    eta_at: datetime | None = None,
    settings: Settings | None = None,
) -> TaskTransition:
    """Take one step of the state machine and record it. For a crew (`actor_kind` "crew"),
    `actor` is its public id and the task must be with it; `crew` is the crew an assign or a
    transfer gives the task to. IllegalTransition names the current state."""
    settings = settings or get_settings()
    if actor_kind not in ACTOR_KINDS:
        raise ValueError(f"unknown actor kind {actor_kind!r}")
    if at.tzinfo is None:
        raise InvalidField("at", "needs a time zone")
    action = choice(action, "action", ACTIONS)
    task = _locked(session, task)
    before = task.crew_id
    current_crew = _crew_public_id(session, before)
    if actor_kind == "crew":
        if action not in CREW_ACTIONS:
            raise InvalidField("action", "a crew may only " + ", ".join(CREW_ACTIONS))
        if current_crew != actor:
            raise Conflict(f"{task.public_id} is not with {actor}: a crew moves its own tasks only")
    to_state = next_state(task.state, action)
    target = _resolve_crew(session, crew)
    if action in ("assign", "transfer"):
        if target is None:
            raise InvalidField("crew", f"is required to {action} a task")
        if action == "transfer" and target.id == task.crew_id:
            raise InvalidField("crew", f"{task.public_id} is with {target.public_id} already")
    elif target is not None:
        raise InvalidField("crew", "only assign and transfer take a crew")
    if actor_kind != "crew":
        # A handheld's clock may lag and its reports are kept as sent; a time typed in the
        # office must not put a step before the one it follows.
        last = session.scalar(
            sa.select(sa.func.max(TaskTransition.at)).where(TaskTransition.task_id == task.id)
        )
        if last is not None and at < last:
            raise InvalidField("at", f"is before the task's last step ({last.isoformat()})")
    if action == "reject" and not note:
        raise InvalidField("note", "say why the work is rejected; the crew gets the reasons")

    from_state = task.state
    _EFFECTS[action](task, target, at, settings)
    task.state = to_state
    task.updated_at = sa.func.now()
    after_crew = _crew_public_id(session, task.crew_id)
    step = TaskTransition(
        task_id=task.id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        # The crew the task is with after the step; the one it leaves for a decline.
        crew_id=task.crew_id if task.crew_id is not None else before,
        actor=actor,
        actor_kind=actor_kind,
        at=at,
        position=_geometry(position),
        note=note,
    )
    session.add(step)
    session.flush()
    session.refresh(task)
    event = TaskEvent(
        task_id=task.public_id,
        crew_id=after_crew or current_crew,
        action=action,
        from_state=from_state,
        to_state=to_state,
        at=at,
        actor_kind=actor_kind,
        previous_crew_id=current_crew if action == "transfer" else None,
        note=note,
        eta_at=eta_at,
    )
    events.record(session, event)
    return step


@dataclass(frozen=True)
class TransitionRequest:
    action: str
    crew: str | None
    note: str | None
    position: tuple[float, float] | None
    at: datetime


def transition_request(data: Any, now: datetime, action: str | None = None) -> TransitionRequest:
    """A transition's request body: {action, crew, note, position, at}; `action` comes from
    the path instead for the short forms (POST .../cancel)."""
    known = TRANSITION_FIELDS if action is None else TRANSITION_FIELDS[1:]
    fields = known_fields({} if data is None else data, known)
    action = choice(action or fields.get("action"), "action", ACTIONS)
    if action in OVERRIDE_ACTIONS:
        raise InvalidField(
            "action",
            f"{action} overrides a failed check: POST /api/v1/tasks/{{id}}/verification/override",
        )
    crew = optional_text(fields.get("crew"), "crew", 100)
    note = optional_text(fields.get("note"), "note", MAX_TEXT)
    at = now if fields.get("at") is None else moment(fields["at"], "at")
    if at > now + MAX_CLOCK_SKEW:
        raise InvalidField("at", "is in the future")
    position = check_point(fields.get("position"), "position")
    return TransitionRequest(action, crew, note, position, at)


# --- crews' status reports over MQTT ------------------------------------------------------


def apply_crew_status(
    session: Session,
    crew_public_id: str,
    task_public_id: str,
    status: str,
    at: datetime,
    position: tuple[float, float] | None = None,
    note: str | None = None,
) -> list[TaskTransition]:
    """A crew's report (`accepted`, `en_route`, `on_site`, `completed`, or `rejected` to turn
    the offer down) as the transitions it implies; none when the task is there already or
    past it (a late or repeated report). StatusRefused when it cannot apply."""
    task = session.scalar(sa.select(Task).where(Task.public_id == task_public_id))
    if task is None:
        raise StatusRefused("unknown_task", f"no task {task_public_id}")
    crew = session.scalar(sa.select(Crew).where(Crew.public_id == crew_public_id))
    if crew is None:
        raise StatusRefused("unknown_crew", f"no crew {crew_public_id}")
    task = _locked(session, task)
    if task.crew_id != crew.id:
        if status == CREW_DECLINES and _declined_by(session, task, crew):
            return []  # turned down already
        holder = _crew_public_id(session, task.crew_id) or "no crew"
        raise StatusRefused("task_not_yours", f"{task.public_id} is with {holder}")
    try:
        actions = ["decline"] if status == CREW_DECLINES else crew_progress(task.state, status)
        steps = []
        for i, action in enumerate(actions):
            last = i == len(actions) - 1
            step = transition(
                session,
                task,
                action,
                actor=crew.public_id,
                actor_kind="crew",
                at=at,
                position=position,
                note=note if last else None,
            )
            steps.append(step)
    except IllegalTransition as exc:
        raise StatusRefused("illegal_transition", str(exc)) from None
    except ValueError as exc:
        raise StatusRefused("unknown_status", str(exc)) from None
    return steps


def _declined_by(session: Session, task: Task, crew: Crew) -> bool:
    last = session.scalar(
        sa.select(TaskTransition)
        .where(TaskTransition.task_id == task.id)
        .order_by(TaskTransition.id.desc())
        .limit(1)
    )
    return last is not None and last.action == "decline" and last.crew_id == crew.id


def active_task_counts(session: Session, crews: Collection[str] | None = None) -> dict[int, int]:
    """Tasks with each crew (db id) from the offer until the work is done; of the crews with
    these public ids only, when given."""
    query = sa.select(Task.crew_id, sa.func.count()).where(
        Task.state.in_(ACTIVE_STATES), Task.crew_id.is_not(None)
    )
    if crews is not None:
        ids = sa.select(Crew.id).where(Crew.public_id.in_(list(crews)))
        query = query.where(Task.crew_id.in_(ids))
    rows = session.execute(query.group_by(Task.crew_id))
    return {crew_id: count for crew_id, count in rows if crew_id is not None}


# --- reading ------------------------------------------------------------------------------


@dataclass
class TaskQuery:
    states: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    crew: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    limit: int = 100
    cursor: int | None = None  # the last id of the previous page (newest first)


def list_tasks(session: Session, query: TaskQuery) -> list[Task]:
    """Tasks matching every filter given, newest first."""
    statement = sa.select(Task)
    if query.states:
        statement = statement.where(Task.state.in_(query.states))
    if query.kinds:
        statement = statement.where(Task.kind.in_(query.kinds))
    if query.priorities:
        statement = statement.where(Task.priority.in_(query.priorities))
    if query.crew is not None:
        statement = statement.where(
            Task.crew_id == sa.select(Crew.id).where(Crew.public_id == query.crew).scalar_subquery()
        )
    if query.bbox is not None:
        envelope = sa.func.ST_MakeEnvelope(*query.bbox, SRID)
        statement = statement.where(
            sa.or_(
                Task.site.op("&&")(envelope),
                sa.and_(Task.site.is_(None), sa.func.ST_Intersects(Task.area, envelope)),
            )
        )
    if query.since is not None:
        statement = statement.where(Task.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(Task.created_at < query.until)
    if query.cursor is not None:
        statement = statement.where(Task.id < query.cursor)
    return list(session.scalars(statement.order_by(Task.id.desc()).limit(query.limit)))


def history(session: Session, task: Task) -> list[TaskTransition]:
    return list(
        session.scalars(
            sa.select(TaskTransition)
            .where(TaskTransition.task_id == task.id)
            .order_by(TaskTransition.id)  # the order the steps were taken in
        )
    )


def publish_live(live: Live, committed: Sequence[TaskEvent]) -> None:
    """Each event on the live stream, as type `task`; a Redis failure is logged."""
    from fieldline.server.tasks.payloads import event_json  # payloads reads through here

    for event in committed:
        try:
            live.publish({"type": "task", **event_json(event)})
        except redis.RedisError as exc:
            log.warning("task event of %s not published live: %s", event.task_id, exc)


def announce(
    session: Session,
    committed: Sequence[TaskEvent],
    live: Live | None,
    inbox: Inbox | None,
) -> list[Delivery]:
    """Publish committed events: each on the live stream (type `task`), and to the inbox of
    every crew it concerns. Best effort: the change is committed; failures are logged, and
    the inbox's are returned to report."""
    from fieldline.server.tasks.payloads import handheld_json  # payloads reads through here

    if live is not None:
        publish_live(live, committed)
    if inbox is None:
        return []
    deliveries: list[Delivery] = []
    handheld: dict[str, dict[str, Any]] = {}
    for event in committed:

        def task_now(task_id: str = event.task_id) -> dict[str, Any]:
            if task_id not in handheld:
                handheld[task_id] = handheld_json(session, get_task(session, task_id))
            return handheld[task_id]

        for crew_id, message in messages_for(event, task_now):
            deliveries.append(inbox.send(crew_id, message))
    return deliveries
