"""`/api/v1/incidents`: main breaks and outages, from the first report to water back on.
After each commit the tasks' events and the incident's steps go out live (`task` and
`incident` events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request, url_for

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import current_principal, requires
from fieldline.server.incidents import payloads, services
from fieldline.server.incidents.models import Incident
from fieldline.server.incidents.params import parse_incident_query
from fieldline.server.live.views import live
from fieldline.server.resources import db, resources
from fieldline.server.tasks import events
from fieldline.server.tasks.services import announce as announce_tasks

blueprint = Blueprint("incidents", __name__)
JSON = ("application/json",)


def _commit() -> None:
    """Commit, then publish what the transaction recorded: tasks' events and the steps."""
    session = db()
    session.commit()
    announce_tasks(session, events.take(session), live(), resources().inbox())
    services.announce(session, live(), datetime.now(UTC))
    session.commit()


def _detail(incident: Incident) -> dict[str, Any]:
    return payloads.incident_detail(db(), incident, resources().settings)


@blueprint.post("/incidents")
@requires("incidents:write")
def report() -> Any:
    """A call-centre report; 201 when it opened an incident, 200 when it joined one."""
    now = datetime.now(UTC)
    taken = services.report_call(
        db(), request_json(JSON), current_principal().name, now, resources().settings
    )
    _commit()
    body = _detail(taken.incident) | {"source_id": taken.source.id, "opened": taken.opened}
    location = url_for(".show", incident_id=taken.incident.public_id)
    return body, 201 if taken.opened else 200, {"Location": location}


@blueprint.get("/incidents")
@requires("incidents:read")
def index() -> Any:
    query = parse_incident_query(request.args, resources().settings)
    found = services.list_incidents(db(), query)
    return {"incidents": [payloads.incident_json(incident) for incident in found]}


@blueprint.get("/incidents/<incident_id>")
@requires("incidents:read")
def show(incident_id: str) -> Any:
    return _detail(services.get_incident(db(), incident_id))


@blueprint.patch("/incidents/<incident_id>")
@requires("incidents:write")
def update(incident_id: str) -> Any:
    now = datetime.now(UTC)
    incident = services.update(
        db(), incident_id, request_json(JSON), current_principal().name, now, resources().settings
    )
    _commit()
    return _detail(incident)


@blueprint.post("/incidents/<incident_id>/isolate")
@requires("incidents:write")
def isolate(incident_id: str) -> Any:
    now = datetime.now(UTC)
    incident = services.isolate(
        db(), incident_id, request_json(JSON), current_principal().name, now, resources().settings
    )
    _commit()
    return _detail(incident)


@blueprint.post("/incidents/<incident_id>/cancel")
@requires("incidents:write")
def cancel(incident_id: str) -> Any:
    now = datetime.now(UTC)
    incident = services.cancel(db(), incident_id, request_json(JSON), current_principal().name, now)
    _commit()
    return _detail(incident)
