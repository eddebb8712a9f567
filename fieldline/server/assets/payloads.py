"""Request bodies for asset writes: a GeoJSON Feature, checked field by field."""

from __future__ import annotations

from typing import Any

from flask import request
from shapely.geometry.base import BaseGeometry

from fieldline.gis.crs import CRS84, Crs, parse_crs
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import Layer
from fieldline.gis.validation import parse_geometry, parse_properties
from fieldline.server.assets.params import query_errors
from fieldline.server.errors import Unprocessable, UnsupportedMediaType

JSON_TYPES = {"application/json", "application/geo+json"}


def request_json() -> Any:
    if request.mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"send the body as application/geo+json or application/json, not {request.mimetype!r}"
        )
    body = request.get_json(silent=True)
    if body is None:
        raise Unprocessable("the body is not valid JSON", field="body")
    return body


def content_crs() -> Crs:
    """The CRS of coordinates in the body: the Content-Crs header, WGS 84 when absent."""
    value = request.headers.get("Content-Crs")
    if not value:
        return CRS84
    with query_errors():
        return parse_crs(value.strip().strip("<>"), "Content-Crs")


def feature_body(layer: Layer, *, partial: bool) -> tuple[BaseGeometry | None, dict[str, Any]]:
    body = request_json()
    crs = content_crs()
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise InvalidField("type", 'the body must be a GeoJSON Feature ("type": "Feature")')
    if "id" in body and not partial:
        raise InvalidField("id", "ids are assigned by the server; leave it out")
    geometry = None
    if body.get("geometry") is not None or not partial:
        geometry = parse_geometry(layer, body.get("geometry"), crs)
    return geometry, parse_properties(layer, body.get("properties"), partial=partial)
