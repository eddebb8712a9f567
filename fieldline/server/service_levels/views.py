"""`/api/v1/warnings`: the service-level warnings for the dispatchers' list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request

from fieldline.server.auth import current_principal, requires
from fieldline.server.errors import BadRequest
from fieldline.server.resources import db
from fieldline.server.service_levels import services
from fieldline.server.telemetry.params import parse_limit

blueprint = Blueprint("warnings", __name__)
BOOLEANS = {"true": True, "false": False}


@blueprint.get("/warnings")
@requires("warnings:read")
def index() -> Any:
    """`active=true`: those still to act on; `active=false`: the others; neither: all."""
    raw = request.args.get("active")
    if raw is not None and raw not in BOOLEANS:
        raise BadRequest("must be true or false", field="active")
    limit = parse_limit(request.args, 500, 5000)
    active = BOOLEANS[raw] if raw is not None else None
    return {"warnings": services.list_warnings(db(), active, limit)}


@blueprint.post("/warnings/<int:warning_id>/acknowledge")
@requires("warnings:write")
def acknowledge(warning_id: int) -> Any:
    found = services.acknowledge(db(), warning_id, current_principal().name, datetime.now(UTC))
    db().commit()
    return found
