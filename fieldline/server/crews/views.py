"""`/api/v1/crews`: the roster (crews, members, skills, depots, shifts, status), device
bindings, and each crew's GPS track."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request, url_for

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import check_crew, current_principal, requires
from fieldline.server.crews import payloads, services
from fieldline.server.crews.params import parse_crew_page
from fieldline.server.errors import Unprocessable
from fieldline.server.live.views import live
from fieldline.server.mqtt_access import services as mqtt_access
from fieldline.server.mqtt_access.broker import BrokerAdmin
from fieldline.server.resources import db, replica, resources
from fieldline.server.telemetry.params import parse_interval
from fieldline.server.telemetry.services import crew_track

blueprint = Blueprint("crews", __name__)
JSON = ("application/json",)


def _body() -> dict[str, Any]:
    body = request_json(JSON)
    if not isinstance(body, dict):
        raise Unprocessable("must be a JSON object", field="body")
    return body


def _describe(crew_id: str) -> dict[str, Any]:
    session = db()
    return services.describe_crew(
        session,
        crew_id,
        live().latest,
        datetime.now(UTC),
        services.active_task_counts(session, [crew_id]),
        stale_after_s=resources().settings.crew_stale_after_s,
    )


@blueprint.get("")
@requires("crews:read")
def index() -> Any:
    page = parse_crew_page(request.args, resources().settings)
    session = db()
    crews = services.list_crews(
        session,
        live().latest,
        datetime.now(UTC),
        services.active_task_counts(session),
        stale_after_s=resources().settings.crew_stale_after_s,
        limit=page.limit,
        after=page.cursor,
    )
    if page.limit is None and page.cursor is None:
        return {"crews": crews}  # every crew, as the list always answered
    links = [{"rel": "self", "href": request.url}]
    if len(crews) == page.limit:
        args = request.args.to_dict() | {"cursor": crews[-1]["id"]}
        links.append({"rel": "next", "href": url_for(".index", _external=True, **args)})
    return {"crews": crews, "links": links}


@blueprint.post("")
@requires("crews:write")
def create() -> Any:
    fields = services.crew_fields(_body(), partial=False)
    crew = services.create_crew(db(), **fields)
    db().commit()
    return _describe(crew.public_id), 201, {"Location": f"/api/v1/crews/{crew.public_id}"}


@blueprint.get("/<crew_id>")
@requires("crews:read")
def show(crew_id: str) -> Any:
    return _describe(crew_id)


@blueprint.patch("/<crew_id>")
@requires("crews:write")
def update(crew_id: str) -> Any:
    services.update_crew(db(), crew_id, _body())
    db().commit()
    return _describe(crew_id)


@blueprint.delete("/<crew_id>")
@requires("crews:write")
def delete(crew_id: str) -> Any:
    admin = BrokerAdmin.from_settings(resources().settings)
    mqtt_access.delete_crew(db(), admin, crew_id, actor=current_principal().name)
    db().commit()
    return "", 204


@blueprint.post("/<crew_id>/shifts")
@requires("crews:write")
def add_shift(crew_id: str) -> Any:
    body = _body()
    shift = services.add_shift(db(), crew_id, body.get("starts_at"), body.get("ends_at"))
    db().commit()
    return services.shift_json(shift), 201


@blueprint.get("/<crew_id>/shifts")
@requires("crews:read")
def shifts(crew_id: str) -> Any:
    since, until = parse_interval(request.args)
    found = services.list_shifts(db(), crew_id, since, until)
    return {"crew_id": crew_id, "shifts": [services.shift_json(shift) for shift in found]}


@blueprint.delete("/<crew_id>/shifts/<int:shift_id>")
@requires("crews:write")
def delete_shift(crew_id: str, shift_id: int) -> Any:
    services.delete_shift(db(), crew_id, shift_id)
    db().commit()
    return "", 204


@blueprint.post("/<crew_id>/devices")
@requires("devices:write")
def bind_device(crew_id: str) -> Any:
    body = _body()
    device, login = mqtt_access.add_device(
        db(),
        BrokerAdmin.from_settings(resources().settings),
        crew_id,
        body.get("kind"),
        body.get("identifier"),
        actor=current_principal().name,
    )
    db().commit()
    # The password is shown this once; asking again for a bound device issues a new one.
    return {
        "crew_id": crew_id,
        "kind": device.kind,
        "identifier": device.identifier,
        "mqtt": login.as_json(),
    }


@blueprint.delete("/<crew_id>/devices/<kind>/<path:identifier>")
@requires("devices:write")
def unbind_device(crew_id: str, kind: str, identifier: str) -> Any:
    admin = BrokerAdmin.from_settings(resources().settings)
    mqtt_access.revoke_device(
        db(), admin, crew_id, kind, identifier, actor=current_principal().name
    )
    db().commit()
    return "", 204


@blueprint.post("/<crew_id>/sign-in")
@requires("crews:sign-in")
def sign_in(crew_id: str) -> Any:
    check_crew(crew_id, f"crew {crew_id}")  # a crew member signs in for its own crew only
    crew, device = services.signed_in_device(db(), crew_id, _body().get("device_id"))
    settings = resources().settings
    login = mqtt_access.sign_in_login(
        db(), BrokerAdmin.from_settings(settings), crew, device, actor=current_principal().name
    )
    db().commit()
    return payloads.sign_in_json(crew, device, settings, request.host, login)


@blueprint.get("/<crew_id>/positions")
@requires("crews:read")
def positions(crew_id: str) -> Any:
    since, until = parse_interval(request.args)
    body = crew_track(replica(), crew_id, since, until)
    return body, 200, {"Content-Type": "application/geo+json"}
