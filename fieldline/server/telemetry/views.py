"""`/api/v1/stations/{id}/telemetry` and `/api/v1/deadletter`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from fieldline.server.auth import requires
from fieldline.server.resources import db, resources
from fieldline.server.telemetry.params import parse_interval, parse_limit
from fieldline.server.telemetry.services import dead_letters, station_telemetry

blueprint = Blueprint("telemetry", __name__)


@blueprint.get("/stations/<station_id>/telemetry")
@requires("telemetry:read")
def telemetry(station_id: str) -> Any:
    since, until = parse_interval(request.args)
    settings = resources().settings
    limit = parse_limit(request.args, settings.page_size, settings.max_page_size)
    metric = request.args.get("metric") or None
    readings = station_telemetry(db(), station_id, metric, since, until, limit)
    return {"station_id": station_id, "readings": readings}


@blueprint.get("/deadletter")
@requires("deadletter:read")
def deadletter() -> Any:
    settings = resources().settings
    limit = parse_limit(request.args, settings.page_size, settings.max_page_size)
    reason = request.args.get("reason") or None
    return {"dead_letters": dead_letters(db(), reason, limit)}
