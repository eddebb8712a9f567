"""The query string of `GET /api/v1/kpis`; a bad value is a 422 naming the parameter."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from fieldline.gis.errors import InvalidField
from fieldline.gis.validation import parse_datetime
from fieldline.server.kpis.services import GROUPS, PERIODS, KpiQuery

DEFAULT_SPAN = timedelta(days=30)


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = params.get(name) or None
    if value is not None and value not in allowed:
        raise InvalidField(name, f"must be one of {', '.join(allowed)}")
    return value


def parse_kpi_query(params: Mapping[str, str], now: datetime, timezone: str) -> KpiQuery:
    """`from` and `to` (ISO 8601 with an offset; by default the 30 days up to now),
    `group_by` and `period` (optional)."""
    end = parse_datetime(params["to"], "to") if params.get("to") else now
    start = parse_datetime(params["from"], "from") if params.get("from") else end - DEFAULT_SPAN
    if start >= end:
        raise InvalidField("to", "must be later than from")
    return KpiQuery(
        start=start,
        end=end,
        group_by=_choice(params, "group_by", tuple(GROUPS)),
        period=_choice(params, "period", PERIODS),
        timezone=timezone,
    )
