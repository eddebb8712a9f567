"""Query-string parsing for the meter anomalies; a bad parameter is a 400 naming it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fieldline.server.errors import BadRequest
from fieldline.server.meters.findings import KINDS
from fieldline.server.meters.services import MAX_RECENT_DAYS, AnomalyQuery, local_today
from fieldline.server.tasks.params import choices
from fieldline.server.telemetry.params import parse_limit
from fieldline.settings import Settings


def _since(raw: str, now: datetime, timezone: str) -> date:
    """A local date (`2026-11-20`) or a date-time with its zone, taken as its local day."""
    try:
        if "T" in raw or " " in raw:
            at = datetime.fromisoformat(raw)
            if at.tzinfo is None:
                raise BadRequest("needs a time zone (e.g. 2026-11-20T00:00:00Z)", field="since")
            day = at.astimezone(ZoneInfo(timezone)).date()
        else:
            day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{raw!r} is not an ISO 8601 date or date-time", field="since") from None
    today = local_today(now, timezone)
    if day >= today:
        raise BadRequest(f"must be a day before today ({today})", field="since")
    if day < today - timedelta(days=MAX_RECENT_DAYS):
        raise BadRequest(f"must be at most {MAX_RECENT_DAYS} days ago", field="since")
    return day


def _min_score(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest("must be a number", field="min_score") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest("must be a number of at least 0", field="min_score")
    return value


def parse_anomaly_query(
    params: Mapping[str, str], settings: Settings, now: datetime
) -> AnomalyQuery:
    """`since` (the first day to judge), `kind=spike,zero`, `min_score`, `limit`."""
    since = params.get("since")
    min_score = params.get("min_score")
    return AnomalyQuery(
        since=_since(since, now, settings.timezone) if since else None,
        kinds=choices(params, "kind", KINDS) if "kind" in params else (),
        min_score=_min_score(min_score) if min_score else 0.0,
        limit=parse_limit(params, settings.page_size, settings.max_page_size),
    )
