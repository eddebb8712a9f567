"""What each /api/v1 endpoint reads besides its path: query parameters and request bodies.

The routes, methods and path parameters come from Flask's url_map (openapi.py), so only what
the views parse by hand is written here, one row per endpoint as its params.py reads it. Body
fields reuse the services' own tuples of known fields where they have one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fieldline.gis.layers import LAYERS
from fieldline.server.alarms.rules import FIELDS as ALARM_RULE_FIELDS
from fieldline.server.crews.services import CREW_FIELDS
from fieldline.server.incidents.services import CALL_FIELDS
from fieldline.server.notices.contacts import CONTACT_FIELDS
from fieldline.server.tasks.services import CREATE_FIELDS, TRANSITION_FIELDS, UPDATE_FIELDS
from fieldline.server.verification.views import OVERRIDE_FIELDS

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer", "minimum": 1}
NUMBER: dict[str, Any] = {"type": "number"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
BOOLEAN_TEXT: dict[str, Any] = {"type": "string", "enum": ["true", "false"]}
# A value of any JSON type: the service checks it and names the field when it is wrong.
ANY: dict[str, Any] = {}


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: dict(STRING))


@dataclass(frozen=True)
class Body:
    media_type: str
    schema: dict[str, Any]


def object_of(names: tuple[str, ...] | list[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object of these fields; others are refused (422 naming them)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: ANY for name in names},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


def json_body(names: tuple[str, ...] | list[str], required: tuple[str, ...] = ()) -> Body:
    return Body("application/json", object_of(names, required))


LIMIT = Query("limit", "At most this many (lowered to the largest page).", INTEGER)
SINCE = Query("since", "From this time (ISO 8601 with an offset).", TIME)
UNTIL = Query("until", "Before this time (ISO 8601 with an offset).", TIME)
CRS = Query("crs", "The CRS of the coordinates in the answer (`EPSG:3067`, an OGC URI).")
CURSOR = Query("cursor", "The page after this one; taken from `next` links.", INTEGER)
BBOX = Query("bbox", "minx,miny,maxx,maxy (longitude first).")

ATTRIBUTE_NAMES = sorted({a.name for layer in LAYERS.values() for a in layer.attributes})

QUERY: dict[str, tuple[Query, ...]] = {
    "assets.list_features": (
        BBOX,
        Query("bbox-crs", "The CRS of `bbox`, `near`, `nearest` and `intersects`."),
        Query("near", "lon,lat: features within `radius_m` of the point."),
        Query("radius_m", "Metres around `near`.", NUMBER),
        Query("nearest", "lon,lat: the `k` nearest features."),
        Query("k", "How many nearest features.", INTEGER),
        Query("intersects", "A GeoJSON or WKT polygon."),
        CRS,
        LIMIT,
        Query("cursor", "The page after this one; taken from `next` links.", {"type": "integer"}),
        *(
            Query(name, f"Features whose `{name}` equals this (`_min`, `_max` for ranges).")
            for name in ATTRIBUTE_NAMES
        ),
    ),
    "assets.get_feature": (CRS,),
    "assets.post_feature": (CRS,),
    "assets.patch_feature": (CRS,),
    "assets.assets_around": (
        Query("lon", "Longitude (WGS 84).", NUMBER),
        Query("lat", "Latitude (WGS 84).", NUMBER),
        Query("radius_m", "Metres around the point.", NUMBER),
        LIMIT,
    ),
    "network.isolation_trace": (
        Query("pipe_id", "The broken pipe."),
        Query("lon", "The break's longitude (WGS 84), instead of `pipe_id`.", NUMBER),
        Query("lat", "The break's latitude.", NUMBER),
        Query("radius_m", "How far from the point to look for a pipe (at most 500).", NUMBER),
    ),
    "crews.index": (
        Query("limit", "A page of at most this many crews, with a `next` link.", INTEGER),
        Query("cursor", "The page after this crew id; taken from `next` links."),
    ),
    "crews.shifts": (SINCE, UNTIL),
    "crews.positions": (SINCE, UNTIL),
    "telemetry.telemetry": (Query("metric", "Only this metric."), SINCE, UNTIL, LIMIT),
    "telemetry.deadletter": (Query("reason", "Only this reason."), LIMIT),
    "live.stream": (
        Query("heartbeat", "Seconds between heartbeats (1 to 60).", INTEGER),
        Query("limit", "End the stream after this many events.", INTEGER),
    ),
    "tasks.index": (
        Query("state", "States, comma-separated."),
        Query("kind", "Kinds, comma-separated."),
        Query("priority", "Priorities, comma-separated."),
        Query("crew", "The crew's id."),
        BBOX,
        SINCE,
        UNTIL,
        LIMIT,
        CURSOR,
        Query("f", "`json` or `geojson`.", {"type": "string", "enum": ["json", "geojson"]}),
    ),
    "dispatch.candidates": (
        LIMIT,
        Query("include_busy", "Busy crews too.", BOOLEAN_TEXT),
    ),
    "dispatch.route": (
        Query("from", "LON,LAT the way starts from (else the crew's latest fix)."),
        Query("mode", "`vehicle` or `foot`.", {"type": "string", "enum": ["vehicle", "foot"]}),
    ),
    "warnings.index": (
        Query("active", "Only active ones, or only the others.", BOOLEAN_TEXT),
        LIMIT,
    ),
    "notices.index": (Query("task", "The task's id."), LIMIT),
    "kpis.index": (
        Query("from", "Tasks created from this time.", TIME),
        Query("to", "... until this time.", TIME),
        Query("group_by", "`crew`, `district`, `kind` or `priority`."),
        Query("period", "`day`, `week` or `month`."),
    ),
    "alarms.alarms": (
        Query("state", "States, comma-separated (`open`: active and acknowledged)."),
        Query("station", "Stations, comma-separated."),
        Query("severity", "Severities, comma-separated."),
        LIMIT,
    ),
    "incidents.index": (Query("state", "States, comma-separated, or `active`."), LIMIT),
    "meters.anomalies": (
        Query("since", "The first local day judged (a date or a date-time with its zone)."),
        Query("kind", "Kinds, comma-separated."),
        Query("min_score", "The least score.", NUMBER),
        LIMIT,
    ),
    "verification.show": (
        Query("run", "The run's number (default: the latest).", INTEGER),
        Query("layers", "With the GeoJSON layers.", BOOLEAN_TEXT),
    ),
    "verification.report": (Query("run", "The run's number (default: the latest).", INTEGER),),
    "verification.index": (
        Query("result", "`pass` or `fail`.", {"type": "string", "enum": ["pass", "fail"]}),
        LIMIT,
    ),
    "reports.index": (
        Query("crew_id", "The crew's id."),
        Query("kind", "Kinds, comma-separated."),
        Query("status", "Statuses, comma-separated."),
        LIMIT,
    ),
}

FEATURE = Body(
    "application/geo+json",
    {
        "type": "object",
        "properties": {"type": {"type": "string"}, "geometry": ANY, "properties": ANY},
    },
)
# A photo's bytes; its first bytes must be JPEG, PNG or WebP.
PHOTO = Body("image/jpeg", {"type": "string", "format": "binary"})
UPLOAD = Body(
    "multipart/form-data",
    {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            **{name: STRING for name in ("format", "crs", "layer", "id_field", "namespace")},
            "map": {"type": "array", "items": STRING},
            "map_values": {"type": "array", "items": STRING},
        },
        "required": ["file"],
    },
)

BODIES: dict[str, Body] = {
    "assets.post_feature": FEATURE,
    "assets.patch_feature": FEATURE,
    "imports.upload": UPLOAD,
    "uploads.put": PHOTO,
    "crews.create": json_body(CREW_FIELDS),
    "crews.update": json_body(CREW_FIELDS),
    "crews.add_shift": json_body(("starts_at", "ends_at")),
    "crews.bind_device": json_body(("kind", "identifier")),
    "crews.sign_in": json_body(("device_id",)),
    "telemetry.bind": json_body(("source",)),
    "tasks.create": json_body(CREATE_FIELDS),
    "tasks.update": json_body(UPDATE_FIELDS),
    "tasks.transitions": json_body(TRANSITION_FIELDS),
    "tasks.short_form": json_body(("crew", "note", "position", "at")),
    "dispatch.assign": json_body(("crew",)),
    "dispatch.batch": json_body(("tasks", "crews", "dry_run")),
    "alarms.create_rule": json_body(ALARM_RULE_FIELDS),
    "alarms.update_rule": json_body(ALARM_RULE_FIELDS),
    "alarms.acknowledge": json_body(("note",)),
    "incidents.report": json_body(CALL_FIELDS),
    "incidents.update": json_body(("estimated_restoration",)),
    "incidents.isolate": json_body(("pipe_id",)),
    "incidents.cancel": json_body(("reason",)),
    "notices.contacts": Body(
        "application/json",
        {
            "type": "object",
            "properties": {"contacts": {"type": "array", "items": object_of(CONTACT_FIELDS)}},
            "additionalProperties": False,
        },
    ),
    "verification.override": json_body(OVERRIDE_FIELDS),
    "reports.reject": json_body(("reason",)),
}
