"""`/api/v1/alarm-rules` and `/api/v1/alarms`: the rules, the alarms they raised, and
acknowledging one. Steps go out live (`alarm` events) after the commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request, url_for

from fieldline.server.alarms import payloads, services
from fieldline.server.alarms.params import parse_alarm_query
from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import current_principal, requires
from fieldline.server.fields import known_fields
from fieldline.server.live.views import live
from fieldline.server.resources import db, resources

blueprint = Blueprint("alarms", __name__)
JSON = ("application/json",)


def _commit() -> None:
    """Commit, then publish the steps the transaction recorded."""
    session = db()
    session.commit()
    services.announce(session, live(), datetime.now(UTC))
    session.commit()


@blueprint.get("/alarm-rules")
@requires("alarms:read")
def rules() -> Any:
    return {"rules": [payloads.rule_json(rule) for rule in services.list_rules(db())]}


@blueprint.post("/alarm-rules")
@requires("alarm-rules:write")
def create_rule() -> Any:
    now = datetime.now(UTC)
    rule = services.create_rule(db(), request_json(JSON), current_principal().name, now)
    db().commit()
    location = url_for(".show_rule", rule_id=rule.public_id)
    return payloads.rule_json(rule), 201, {"Location": location}


@blueprint.get("/alarm-rules/<rule_id>")
@requires("alarms:read")
def show_rule(rule_id: str) -> Any:
    return payloads.rule_json(services.get_rule(db(), rule_id))


@blueprint.patch("/alarm-rules/<rule_id>")
@requires("alarm-rules:write")
def update_rule(rule_id: str) -> Any:
    now = datetime.now(UTC)
    rule = services.update_rule(db(), rule_id, request_json(JSON), current_principal().name, now)
    _commit()
    return payloads.rule_json(rule)


@blueprint.delete("/alarm-rules/<rule_id>")
@requires("alarm-rules:write")
def delete_rule(rule_id: str) -> Any:
    services.delete_rule(db(), rule_id, current_principal().name, datetime.now(UTC))
    _commit()
    return "", 204


@blueprint.get("/alarms")
@requires("alarms:read")
def alarms() -> Any:
    query = parse_alarm_query(request.args, resources().settings)
    return {"alarms": payloads.alarms_json(db(), services.list_alarms(db(), query))}


@blueprint.get("/alarms/<alarm_id>")
@requires("alarms:read")
def show_alarm(alarm_id: str) -> Any:
    session = db()
    alarm = services.get_alarm(session, alarm_id)
    limit = resources().settings.max_page_size
    readings = services.readings_around(session, alarm, datetime.now(UTC), limit)
    return payloads.alarm_detail(session, alarm, services.history(session, alarm), readings)


@blueprint.post("/alarms/<alarm_id>/acknowledge")
@requires("alarms:acknowledge")
def acknowledge(alarm_id: str) -> Any:
    body = known_fields(request_json(JSON) if request.get_data() else {}, ("note",))
    now = datetime.now(UTC)
    alarm = services.acknowledge(db(), alarm_id, current_principal().name, body.get("note"), now)
    _commit()
    (shown,) = payloads.alarms_json(db(), [alarm])
    return shown
