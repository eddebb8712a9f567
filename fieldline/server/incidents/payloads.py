"""Incidents as JSON, for the API and the live stream. The summary carries what the map
needs to draw one (where, state, the broken pipe, customers without water); the detail adds
its reports, the suggested pipes, the isolation, its tasks, the notices and its history."""

from __future__ import annotations

from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy.orm import Session

from fieldline.server.fields import iso
from fieldline.server.incidents import services
from fieldline.server.incidents.models import Incident, IncidentSource, IncidentStep
from fieldline.server.incidents.states import allowed_actions
from fieldline.server.incidents.suggestions import suggested_pipes
from fieldline.server.notices.services import notice_json
from fieldline.settings import Settings


def _point(geometry: Any) -> dict[str, float]:
    point = to_shape(geometry)
    return {"lon": point.x, "lat": point.y}


def incident_json(incident: Incident) -> dict[str, Any]:
    isolation = incident.isolation or {}
    return {
        "id": incident.public_id,
        "state": incident.state,
        "allowed_actions": list(allowed_actions(incident.state)),
        "title": incident.title,
        **_point(incident.site),
        "pipe_id": incident.pipe_id,
        "customers": isolation.get("customers"),
        "estimated_restoration": iso(incident.estimated_restoration),
        "opened_at": iso(incident.opened_at),
        "isolated_at": iso(incident.isolated_at),
        "closed_at": iso(incident.closed_at),
        "updated_at": iso(incident.updated_at),
    }


def source_json(source: IncidentSource) -> dict[str, Any]:
    return {
        "id": source.id,
        "kind": source.kind,
        "ref": source.ref,
        **_point(source.position),
        "reported_at": iso(source.reported_at),
        "description": source.description,
        "caller": source.caller,
        "meter_id": source.meter_id,
        "station_id": source.station_id,
        "asset_id": source.asset_id,
        "linked_by": source.linked_by,
        "linked_at": iso(source.linked_at),
    }


def step_json(step: IncidentStep) -> dict[str, Any]:
    return {
        "action": step.action,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "actor": step.actor,
        "actor_kind": step.actor_kind,
        "at": iso(step.at),
        "note": step.note,
    }


def incident_detail(session: Session, incident: Incident, settings: Settings) -> dict[str, Any]:
    sources = services.sources_of(session, incident)
    return incident_json(incident) | {
        "sources": [source_json(source) for source in sources],
        "suggested_pipes": suggested_pipes(session, sources, settings),
        "isolation": incident.isolation,
        "tasks": [
            {
                "id": task.public_id,
                "role": link.role,
                "valve_id": link.valve_id,
                "order": link.ordinal if link.valve_id else None,
                "kind": task.kind,
                "priority": task.priority,
                "state": task.state,
                "title": task.title,
                "promised_completion_at": iso(task.promised_completion_at),
            }
            for link, task in services.tasks_of(session, incident)
        ],
        "notices": [
            notice_json(notice, task) for notice, task in services.notices_of(session, incident)
        ],
        "history": [step_json(step) for step in services.steps_of(session, incident)],
    }


def incident_event(session: Session, incident: Incident, step: IncidentStep) -> dict[str, Any]:
    """An `incident` event of the live stream: the incident as the list shows it, and the
    step."""
    return {
        "type": "incident",
        **incident_json(incident),
        "action": step.action,
        "at": iso(step.at),
        "actor": step.actor,
        "note": step.note,
    }
