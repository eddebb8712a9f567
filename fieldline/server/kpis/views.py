"""`/api/v1/kpis`: completion and on-time rates, response times, per crew, district, kind or
priority and per day, week or month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request

from fieldline.server.auth import requires
from fieldline.server.kpis.params import parse_kpi_query
from fieldline.server.kpis.services import kpis
from fieldline.server.resources import replica, resources

blueprint = Blueprint("kpis", __name__)


@blueprint.get("/kpis")
@requires("kpis:read")
def index() -> Any:
    now = datetime.now(UTC)
    query = parse_kpi_query(request.args, now, resources().settings.timezone)
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "group_by": query.group_by,
        "period": query.period,
        "timezone": query.timezone,
        "rows": kpis(replica(), query, now),
    }
