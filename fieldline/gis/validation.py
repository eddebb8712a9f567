"""Checks on asset input, shared by the REST API, OGC API and importers.

Every failure is an InvalidField naming the exact place (`geometry`, `properties.material`),
so a user can fix the request without guessing.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from fieldline.gis.crs import Crs, to_wgs84
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import Attribute, Layer

MAX_TEXT_LENGTH = 500
MAX_VERTICES = 100_000

BIGINT_MAX = 2**63 - 1


def parse_geometry(layer: Layer, value: Any, crs: Crs, field: str = "geometry") -> BaseGeometry:
    """A GeoJSON geometry of the layer's type, returned in WGS 84."""
    if not isinstance(value, dict):
        raise InvalidField(field, "must be a GeoJSON geometry object")
    kind = value.get("type")
    if kind != layer.geometry_type:
        raise InvalidField(
            f"{field}.type", f"{layer.name} need a {layer.geometry_type}, got {kind!r}"
        )
    try:
        geometry = shape(value)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        reason = str(exc).strip().removeprefix("IllegalArgumentException: ")
        raise InvalidField(f"{field}.coordinates", f"malformed coordinates: {reason}") from None
    return check_geometry(layer, geometry, crs, field)


def check_geometry(layer: Layer, geometry: BaseGeometry, crs: Crs, field: str) -> BaseGeometry:
    if geometry.geom_type != layer.geometry_type:
        raise InvalidField(
            f"{field}.type", f"{layer.name} need a {layer.geometry_type}, got {geometry.geom_type}"
        )
    coords = shapely.get_coordinates(geometry)
    if len(coords) > MAX_VERTICES:
        raise InvalidField(f"{field}.coordinates", f"more than {MAX_VERTICES} vertices")
    if geometry.is_empty or not all(math.isfinite(v) for v in coords.flat):
        raise InvalidField(f"{field}.coordinates", "coordinates must be finite numbers")
    if shapely.has_z(geometry):
        geometry = shapely.force_2d(geometry)
    wgs84 = to_wgs84(geometry, crs)
    for lon, lat in shapely.get_coordinates(wgs84):
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not math.isfinite(lon + lat):
            raise InvalidField(
                f"{field}.coordinates",
                f"({lon}, {lat}) is outside longitude -180..180 / latitude -90..90"
                + ("" if crs.geographic else f" after transforming from EPSG:{crs.srid}"),
            )
    if layer.geometry_type == "LineString" and wgs84.length == 0:
        raise InvalidField(f"{field}.coordinates", "a line needs two distinct points")
    return wgs84


def parse_properties(layer: Layer, value: Any, *, partial: bool) -> dict[str, Any]:
    """Validated attribute values by public name; refs stay public ids until resolved."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidField("properties", "must be an object")
    clean: dict[str, Any] = {}
    for name, raw in value.items():
        attribute = layer.attribute(name)
        field = f"properties.{name}"
        if attribute is None:
            allowed = ", ".join(a.name for a in layer.attributes if not a.read_only)
            raise InvalidField(field, f"unknown attribute; {layer.name} have: {allowed}")
        if attribute.read_only:
            raise InvalidField(field, "is computed and cannot be set")
        if raw is None and not layer.nullable(attribute):
            raise InvalidField(field, "must not be null")
        clean[name] = parse_value(attribute, raw, field)
    if not partial:
        for attribute in layer.attributes:
            if attribute.required and clean.get(attribute.name) is None:
                raise InvalidField(f"properties.{attribute.name}", "is required")
    return clean


def parse_value(attribute: Attribute, raw: Any, field: str) -> Any:
    if raw is None:
        if attribute.required:
            raise InvalidField(field, "is required")
        return None
    parser = _PARSERS[attribute.kind]
    value = parser(raw, field)
    if attribute.choices and value not in attribute.choices:
        raise InvalidField(field, f"{value!r} is not one of: {', '.join(attribute.choices)}")
    if attribute.kind in {"number", "integer"}:
        assert isinstance(value, int | float)
        if attribute.positive and value <= 0:
            raise InvalidField(field, "must be greater than 0")
        if attribute.minimum is not None and value < attribute.minimum:
            raise InvalidField(field, f"must be at least {attribute.minimum:g}")
        if attribute.maximum is not None and value > attribute.maximum:
            raise InvalidField(field, f"must be at most {attribute.maximum:g}")
    return value


def _text(raw: Any, field: str) -> str:
    if not isinstance(raw, str):
        raise InvalidField(field, "must be a string")
    if len(raw) > MAX_TEXT_LENGTH:
        raise InvalidField(field, f"longer than {MAX_TEXT_LENGTH} characters")
    if "\x00" in raw:
        raise InvalidField(field, "must not contain NUL characters")
    return raw


def _number(raw: Any, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidField(field, "must be a number")
    if not math.isfinite(raw):
        raise InvalidField(field, "must be a finite number")
    return float(raw)


def _integer(raw: Any, field: str) -> int:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidField(field, "must be a whole number")
    return check_bigint(raw, field)


def check_bigint(value: int, field: str) -> int:
    """A whole number PostgreSQL's bigint holds: larger ones fail in the database."""
    if not -BIGINT_MAX <= value <= BIGINT_MAX:
        raise InvalidField(field, f"must be between {-BIGINT_MAX} and {BIGINT_MAX}")
    return value


def _boolean(raw: Any, field: str) -> bool:
    if not isinstance(raw, bool):
        raise InvalidField(field, "must be true or false")
    return raw


def parse_datetime(raw: Any, field: str) -> datetime:
    """An ISO 8601 date-time with a time zone; a naive or malformed one is an InvalidField."""
    if not isinstance(raw, str):
        raise InvalidField(field, "must be an ISO 8601 date-time string")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidField(field, f"{raw!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise InvalidField(field, "needs a time zone (e.g. 2024-05-01T08:00:00Z)")
    return value


def _text_list(raw: Any, field: str) -> list[str]:
    if not isinstance(raw, list):
        raise InvalidField(field, "must be a list of strings")
    return [_text(item, f"{field}[{i}]") for i, item in enumerate(raw)]


_PARSERS = {
    "text": _text,
    "ref": _text,
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "datetime": parse_datetime,
    "text_list": _text_list,
}
