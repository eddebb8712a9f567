"""`/api/v1/crews`: crews with their latest position, and each crew's GPS track."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from fieldline.server.auth import requires
from fieldline.server.crews.services import list_crews
from fieldline.server.live.views import live
from fieldline.server.resources import db
from fieldline.server.telemetry.params import parse_interval
from fieldline.server.telemetry.services import crew_track

blueprint = Blueprint("crews", __name__)


@blueprint.get("")
@requires("crews:read")
def index() -> Any:
    return {"crews": list_crews(db(), live().latest())}


@blueprint.get("/<crew_id>/positions")
@requires("crews:read")
def positions(crew_id: str) -> Any:
    since, until = parse_interval(request.args)
    body = crew_track(db(), crew_id, since, until)
    return body, 200, {"Content-Type": "application/geo+json"}
