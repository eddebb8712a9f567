"""`/api/v1/meters/anomalies`: the meters whose consumption calls for a follow-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request

from fieldline.server.auth import requires
from fieldline.server.meters import payloads, services
from fieldline.server.meters.params import parse_anomaly_query
from fieldline.server.resources import db, resources

blueprint = Blueprint("meters", __name__)


@blueprint.get("/anomalies")
@requires("meters:read")
def anomalies() -> Any:
    now = datetime.now(UTC)
    settings = resources().settings
    query = parse_anomaly_query(request.args, settings, now)
    found = services.find_anomalies(db(), query, settings, now)
    places = services.meter_places(db(), (finding.meter_id for finding in found))
    return {"anomalies": payloads.findings_json(found, places)}
