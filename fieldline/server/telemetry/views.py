"""`/api/v1/stations` with their bindings, `/api/v1/stations/{id}/telemetry` and
`/api/v1/deadletter`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import requires
from fieldline.server.errors import Unprocessable
from fieldline.server.resources import db, replica, resources
from fieldline.server.telemetry.params import parse_interval, parse_limit
from fieldline.server.telemetry.services import (
    bind_station,
    dead_letters,
    list_stations,
    station_telemetry,
    unbind_station,
)

blueprint = Blueprint("telemetry", __name__)


@blueprint.get("/stations")
@requires("telemetry:read")
def stations() -> Any:
    return {"stations": list_stations(db())}


@blueprint.post("/stations/<station_id>/bindings")
@requires("stations:write")
def bind(station_id: str) -> Any:
    body = request_json(("application/json",))
    if not isinstance(body, dict):
        raise Unprocessable("must be a JSON object", field="body")
    binding = bind_station(db(), station_id, body.get("source"))
    db().commit()
    # Binding is idempotent: the same answer whether or not it was bound already.
    return {"station_id": station_id, "source": binding.source}


@blueprint.delete("/stations/<station_id>/bindings/<path:source>")
@requires("stations:write")
def unbind(station_id: str, source: str) -> Any:
    unbind_station(db(), station_id, source)
    db().commit()
    return "", 204


@blueprint.get("/stations/<station_id>/telemetry")
@requires("telemetry:read")
def telemetry(station_id: str) -> Any:
    since, until = parse_interval(request.args)
    settings = resources().settings
    limit = parse_limit(request.args, settings.page_size, settings.max_page_size)
    metric = request.args.get("metric") or None
    readings = station_telemetry(replica(), station_id, metric, since, until, limit)
    return {"station_id": station_id, "readings": readings}


@blueprint.get("/deadletter")
@requires("deadletter:read")
def deadletter() -> Any:
    settings = resources().settings
    limit = parse_limit(request.args, settings.page_size, settings.max_page_size)
    reason = request.args.get("reason") or None
    return {"dead_letters": dead_letters(db(), reason, limit)}
