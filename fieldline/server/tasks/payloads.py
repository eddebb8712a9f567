"""Tasks as JSON: for the API, the map (GeoJSON), the crew's handheld and the live stream."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.fields import iso
from fieldline.server.tasks.events import TaskEvent
from fieldline.server.tasks.models import (
    Task,
    TaskAsset,
    TaskTransition,
)
from fieldline.server.tasks.services import asset_positions, history
from fieldline.server.tasks.states import (
    allowed_actions,
)


def _point_json(geometry: Any) -> dict[str, float] | None:
    if geometry is None:
        return None
    point = to_shape(geometry)
    return {"lon": point.x, "lat": point.y}


def _crew_ids(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(sa.select(Crew.id, Crew.public_id).where(Crew.id.in_(wanted)))
    return {crew_id: public_id for crew_id, public_id in rows}


def _assets_of(session: Session, tasks: Sequence[Task]) -> dict[int, list[dict[str, Any]]]:
    rows = list(
        session.scalars(
            sa.select(TaskAsset)
            .where(TaskAsset.task_id.in_([t.id for t in tasks]))
            .order_by(TaskAsset.task_id, TaskAsset.ordinal)
        )
    )
    places = asset_positions(session, ((row.layer, row.asset_id) for row in rows))
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        place = places.get((row.layer, row.asset_id))  # None: the asset was deleted since
        found.setdefault(row.task_id, []).append(
            {
                "layer": row.layer,
                "id": row.asset_id,
                "role": row.role,
                "lon": None if place is None else place[0],
                "lat": None if place is None else place[1],
            }
        )
    return found


def transition_json(step: TaskTransition, crews: Mapping[int, str]) -> dict[str, Any]:
    return {
        "action": step.action,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "crew": None if step.crew_id is None else crews.get(step.crew_id),
        "actor": step.actor,
        "actor_kind": step.actor_kind,
        "at": step.at.isoformat(),
        "recorded_at": iso(step.recorded_at),
        "position": _point_json(step.position),
        "note": step.note,
    }


def step_json(session: Session, step: TaskTransition) -> dict[str, Any]:
    return transition_json(step, _crew_ids(session, [step.crew_id]))


def history_json(session: Session, task: Task) -> list[dict[str, Any]]:
    steps = history(session, task)
    crews = _crew_ids(session, (step.crew_id for step in steps))
    return [transition_json(step, crews) for step in steps]


def tasks_json(
    session: Session, tasks: Sequence[Task], *, with_history: bool = False
) -> list[dict[str, Any]]:
    """Tasks as the API shows them, each with its assets and crew; `history` on request."""
    if not tasks:
        return []
    crews = _crew_ids(session, (task.crew_id for task in tasks))
    assets = _assets_of(session, tasks)
    described = []
    for task in tasks:
        body: dict[str, Any] = {
            "id": task.public_id,
            "kind": task.kind,
            "priority": task.priority,
            "state": task.state,
            "allowed_actions": list(allowed_actions(task.state)),
            "source": task.source,
            "title": task.title,
            "description": task.description,
            "caller": task.caller,
            "site": _point_json(task.site),
            "area": None if task.area is None else mapping(to_shape(task.area)),
            "source_position": _point_json(task.source_position),
            "mode": task.mode,
            "required_skills": list(task.required_skills),
            "district": task.district,
            "crew": None if task.crew_id is None else crews.get(task.crew_id),
            "assets": assets.get(task.id, []),
            "offer_expires_at": iso(task.offer_expires_at),
            "promised_arrival_at": iso(task.promised_arrival_at),
            "promised_completion_at": iso(task.promised_completion_at),
            "appointment": task.appointment,
            "arrived_at": iso(task.arrived_at),
            # The first fix within reach of the site, once the crew's trace has been checked.
            "trace_arrived_at": iso(task.trace_arrived_at),
            "completed_at": iso(task.completed_at),
            "transfer_count": task.transfer_count,
            "reopen_count": task.reopen_count,
            "created_by": task.created_by,
            "created_at": task.created_at.isoformat(),
            "updated_at": task.updated_at.isoformat(),
        }
        if with_history:
            body["history"] = history_json(session, task)
        described.append(body)
    return described


def task_json(session: Session, task: Task) -> dict[str, Any]:
    return tasks_json(session, [task], with_history=True)[0]


def feature_collection(session: Session, tasks: Sequence[Task]) -> dict[str, Any]:
    """Tasks as GeoJSON for the map: at the site, else over the patrol's area."""
    features = []
    for task, body in zip(tasks, tasks_json(session, tasks), strict=True):
        geometry = task.site if task.site is not None else task.area
        properties = {k: v for k, v in body.items() if k not in ("id", "site", "area")}
        features.append(
            {
                "type": "Feature",
                "id": body["id"],
                "geometry": None if geometry is None else mapping(to_shape(geometry)),
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def handheld_json(session: Session, task: Task) -> dict[str, Any]:
    """What a crew's handheld needs of a task: where, what, by when, and the notes."""
    full = tasks_json(session, [task])[0]
    notes = [
        {"at": step.at.isoformat(), "note": step.note}
        for step in history(session, task)
        if step.note
    ]
    caller = task.caller or {}
    return {
        "id": full["id"],
        "kind": full["kind"],
        "priority": full["priority"],
        "state": full["state"],
        "title": full["title"],
        "description": full["description"],
        "site": full["site"],
        "mode": full["mode"],
        "assets": full["assets"],
        "required_skills": full["required_skills"],
        "promised_arrival_at": full["promised_arrival_at"],
        "promised_completion_at": full["promised_completion_at"],
        "offer_expires_at": full["offer_expires_at"],
        # The crew may call the customer; the e-mail stays with the office.
        "caller": {key: caller[key] for key in ("name", "phone") if key in caller} or None,
        "notes": notes,
    }


# --- after the commit ---------------------------------------------------------------------


def event_json(event: TaskEvent) -> dict[str, Any]:
    return {
        "task_id": event.task_id,
        "crew_id": event.crew_id,
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "at": event.at.isoformat(),
        "actor_kind": event.actor_kind,
        "previous_crew_id": event.previous_crew_id,
    }
