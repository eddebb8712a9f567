"""Query-string parsing for the task list; a bad parameter is a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fieldline.gis.crs import CRS84
from fieldline.gis.validation import BIGINT_MAX
from fieldline.server.assets.params import parse_bbox, parse_integer, query_errors
from fieldline.server.errors import BadRequest
from fieldline.server.tasks.models import PRIORITIES, TASK_KINDS
from fieldline.server.tasks.services import TaskQuery
from fieldline.server.tasks.states import STATES
from fieldline.server.telemetry.params import parse_interval
from fieldline.settings import Settings

GEOJSON = "application/geo+json"


def choices(params: Mapping[str, str], name: str, known: Sequence[str]) -> tuple[str, ...]:
    """`state=assigned,accepted` or the parameter repeated."""
    values = [
        value.strip()
        for raw in getattr(params, "getlist", lambda n: [params[n]])(name)
        for value in raw.split(",")
        if value.strip()
    ]
    for value in values:
        if value not in known:
            raise BadRequest(f"{value!r} is not one of: {', '.join(known)}", field=name)
    return tuple(dict.fromkeys(values))


def parse_task_query(params: Mapping[str, str], settings: Settings) -> TaskQuery:
    since, until = parse_interval(params)
    query = TaskQuery(
        states=choices(params, "state", STATES) if "state" in params else (),
        kinds=choices(params, "kind", TASK_KINDS) if "kind" in params else (),
        priorities=choices(params, "priority", PRIORITIES) if "priority" in params else (),
        crew=params.get("crew") or None,
        since=since,
        until=until,
    )
    with query_errors():
        query.limit = parse_integer(params, "limit", settings.page_size, 1, settings.max_page_size)
        if "cursor" in params:
            query.cursor = parse_integer(params, "cursor", 0, 1, BIGINT_MAX)
        if "bbox" in params:
            west, south, east, north = parse_bbox(params, CRS84).bounds
            query.bbox = (west, south, east, north)
    return query


def wants_geojson(params: Mapping[str, str], preferred: str | None) -> bool:
    """`?f=geojson` or `?f=json`; else the type the Accept header prefers (`preferred`)."""
    f = params.get("f")
    if f is not None:
        if f not in ("json", "geojson"):
            raise BadRequest("must be json or geojson", field="f")
        return f == "geojson"
    return preferred == GEOJSON
