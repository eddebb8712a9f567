"""Query-string parsing for the crews, telemetry and dead-letter reads; a bad parameter is a
400 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from fieldline.gis.validation import parse_datetime
from fieldline.server.assets.params import query_errors
from fieldline.server.errors import BadRequest


def parse_time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    with query_errors():
        return parse_datetime(raw, name)


def parse_interval(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    since, until = parse_time(params, "since"), parse_time(params, "until")
    if since and until and until <= since:
        raise BadRequest("must be later than since", field="until")
    return since, until


def parse_limit(params: Mapping[str, str], default: int, most: int) -> int:
    raw = params.get("limit")
    if raw is None:
        return default
    # isdecimal() alone would pass other scripts' digits, which int() may refuse.
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise BadRequest("must be a whole number of at least 1", field="limit")
    return min(int(raw), most)
