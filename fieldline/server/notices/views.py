"""`/api/v1/notices`: what customers and the supervisor were told, for the call centre."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request

from fieldline.server.assets.payloads import request_json
from fieldline.server.auth import requires
from fieldline.server.notices.contacts import store_contacts
from fieldline.server.notices.services import list_notices
from fieldline.server.resources import db
from fieldline.server.telemetry.params import parse_limit

blueprint = Blueprint("notices", __name__)


@blueprint.get("/notices")
@requires("notices:read")
def index() -> Any:
    """`task=` one task's notices; newest first, `limit` (default 100)."""
    task = request.args.get("task") or None
    limit = parse_limit(request.args, 100, 5000)
    return {"notices": list_notices(db(), task, limit)}


@blueprint.put("/customer-contacts")
@requires("customers:write")
def contacts() -> Any:
    """The billing system's contacts of customer accounts (outage notices reach them)."""
    stored = store_contacts(db(), request_json(("application/json",)), datetime.now(UTC))
    db().commit()
    return {"stored": stored}
