"""Request bodies for asset writes: a GeoJSON Feature, checked field by field."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from flask import request
from shapely.geometry.base import BaseGeometry

from fieldline.gis.crs import CRS84, Crs, parse_crs
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import Layer
from fieldline.gis.validation import parse_geometry, parse_properties
from fieldline.server.assets.params import query_errors
from fieldline.server.errors import Unprocessable, UnsupportedMediaType

JSON_TYPES = ("application/geo+json", "application/json")


def request_json(types: Collection[str] = JSON_TYPES) -> Any:
    if request.mimetype not in types:
        raise UnsupportedMediaType(
            f"send the body as {' or '.join(types)}, not {request.mimetype!r}"
        )
    body = request.get_json(silent=True)
    if body is None:
        raise Unprocessable("the body is not valid JSON", field="body")
    return body


def content_crs(parse: Callable[[str, str], Crs] = parse_crs) -> Crs:
    """The CRS of coordinates in the body: the Content-Crs header, WGS 84 when absent."""
    value = request.headers.get("Content-Crs")
    if not value:
        return CRS84
    with query_errors():
        return parse(value.strip().strip("<>"), "Content-Crs")


def parse_feature(
    layer: Layer,
    body: Any,
    crs: Crs,
    *,
    partial: bool,
    feature_id: str | None = None,
    require_type: bool = True,
) -> tuple[BaseGeometry | None, dict[str, Any]]:
    """A Feature's geometry (WGS 84) and checked properties. A whole feature may carry only
    `feature_id` as its id; `require_type=False` takes a merge patch without `"type"`."""
    default_type = None if require_type else "Feature"
    if not isinstance(body, dict) or body.get("type", default_type) != "Feature":
        raise InvalidField("type", 'the body must be a GeoJSON Feature ("type": "Feature")')
    if not partial and body.get("id", feature_id) != feature_id:
        raise InvalidField(
            "id",
            "ids are assigned by the server; leave it out"
            if feature_id is None
            else f"must be {feature_id!r}, the id in the path, or left out",
        )
    geometry = None
    if body.get("geometry") is not None or not partial:
        geometry = parse_geometry(layer, body.get("geometry"), crs)
    return geometry, parse_properties(layer, body.get("properties"), partial=partial)


def feature_body(layer: Layer, *, partial: bool) -> tuple[BaseGeometry | None, dict[str, Any]]:
    return parse_feature(layer, request_json(), content_crs(), partial=partial)
