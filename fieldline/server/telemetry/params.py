"""Query-string parsing for the crews, telemetry and dead-letter reads; a bad parameter is a
400 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from fieldline.server.errors import BadRequest


def parse_time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{raw[:40]!r} is not an ISO 8601 date-time", field=name) from None
    if value.tzinfo is None:
        raise BadRequest("needs a time zone (e.g. 2026-05-01T08:00:00Z)", field=name)
    return value


def parse_interval(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    since, until = parse_time(params, "since"), parse_time(params, "until")
    if since and until and until <= since:
        raise BadRequest("must be later than since", field="until")
    return since, until


def parse_limit(params: Mapping[str, str], default: int, most: int) -> int:
    raw = params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest("must be a whole number of at least 1", field="limit")
    return min(int(raw), most)
