"""Query-string parsing for the asset API; a bad parameter is a 400 naming it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import shapely
from shapely import wkt
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from fieldline.gis.crs import CRS84, Crs, parse_crs, point_to_wgs84, to_wgs84
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import Layer
from fieldline.gis.queries import FeatureQuery, parse_attribute_filters
from fieldline.gis.validation import BIGINT_MAX
from fieldline.server.errors import BadRequest
from fieldline.settings import Settings

MAX_FILTER_VERTICES = 10_000
# Metres (or feet) of a projected CRS: the Earth is some 4e7 m round, so larger is no place.
MAX_PROJECTED = 1e8


@contextmanager
def query_errors() -> Iterator[None]:
    """Errors in the query string are the client's request being malformed: 400, not 422."""
    try:
        yield
    except InvalidField as exc:
        raise BadRequest(exc.detail, field=exc.field) from None


def _numbers(params: Mapping[str, str], name: str, count: tuple[int, ...]) -> list[float]:
    try:
        values = [float(part) for part in params[name].split(",")]
    except ValueError:
        raise InvalidField(name, f"must be {count[0]} comma-separated numbers") from None
    if len(values) not in count or not all(math.isfinite(v) for v in values):
        raise InvalidField(name, f"must be {' or '.join(map(str, count))} finite numbers")
    return values


def _number(params: Mapping[str, str], name: str, low: float, high: float) -> float:
    (value,) = _numbers(params, name, (1,))
    if not low < value <= high:
        raise InvalidField(name, f"must be greater than {low:g} and at most {high:g}")
    return value


def parse_integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidField(name, "must be a whole number") from None
    if not low <= value <= high:
        raise InvalidField(name, f"must be between {low} and {high}")
    return value


def _point(params: Mapping[str, str], name: str, crs: Crs) -> tuple[float, float]:
    x, y = _numbers(params, name, (2,))
    lon, lat = point_to_wgs84(x, y, crs)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidField(name, "must be lon,lat within -180..180, -90..90")
    return lon, lat


def parse_bbox(params: Mapping[str, str], crs: Crs) -> BaseGeometry:
    values = _numbers(params, "bbox", (4, 6))
    minx, miny, maxx, maxy = (
        (values[0], values[1], values[3], values[4]) if len(values) == 6 else values
    )
    if minx > maxx or miny > maxy:
        raise InvalidField("bbox", "must be minx,miny,maxx,maxy with min <= max")
    west, south, east, north = (miny, minx, maxy, maxx) if crs.yx else (minx, miny, maxx, maxy)
    if crs.geographic and not (west >= -180 and east <= 180 and south >= -90 and north <= 90):
        raise InvalidField("bbox", "is outside longitude -180..180 / latitude -90..90")
    if not crs.geographic and max(map(abs, (minx, miny, maxx, maxy))) > MAX_PROJECTED:
        raise InvalidField("bbox", f"is outside the CRS's coordinates (beyond {MAX_PROJECTED:g})")
    area = box(minx, miny, maxx, maxy)
    if crs.srid != CRS84.srid and minx < maxx and miny < maxy:
        # Straight edges in a projected CRS are curves in WGS 84: densify before transforming.
        area = shapely.segmentize(area, max(maxx - minx, maxy - miny) / 32)
    area = to_wgs84(area, crs)
    if not all(math.isfinite(v) for v in area.bounds):
        raise InvalidField("bbox", "lies outside the area the CRS covers")
    return area


def parse_area(params: Mapping[str, str], crs: Crs) -> BaseGeometry:
    """`intersects` as a GeoJSON or WKT polygon."""
    text = params["intersects"].strip()
    try:
        geometry = shape(json.loads(text)) if text.startswith("{") else wkt.loads(text)
    except Exception:  # json and shapely raise several types for malformed input
        raise InvalidField("intersects", "must be a GeoJSON or WKT polygon") from None
    if geometry.geom_type not in {"Polygon", "MultiPolygon"}:
        raise InvalidField(
            "intersects", f"must be a Polygon or MultiPolygon, not {geometry.geom_type}"
        )
    if shapely.get_num_coordinates(geometry) > MAX_FILTER_VERTICES:
        raise InvalidField("intersects", f"has more than {MAX_FILTER_VERTICES} vertices")
    if not geometry.is_valid:
        raise InvalidField("intersects", f"invalid polygon: {shapely.is_valid_reason(geometry)}")
    return to_wgs84(geometry, crs)


def parse_feature_query(
    layer: Layer, params: Mapping[str, str], settings: Settings
) -> FeatureQuery:
    with query_errors():
        out_crs = parse_crs(params["crs"], "crs") if "crs" in params else CRS84
        in_crs = parse_crs(params["bbox-crs"], "bbox-crs") if "bbox-crs" in params else CRS84
        query = FeatureQuery(
            limit=parse_integer(params, "limit", settings.page_size, 1, settings.max_page_size),
            cursor=(
                parse_integer(params, "cursor", 0, 0, BIGINT_MAX) if "cursor" in params else None
            ),
            out_crs=out_crs,
            filters=parse_attribute_filters(layer, params),
        )
        if "bbox" in params:
            query.bbox = parse_bbox(params, in_crs)
        if "intersects" in params:
            query.intersects = parse_area(params, in_crs)
        if "near" in params:
            if "radius_m" not in params:
                raise InvalidField("radius_m", "is required with near")
            query.near = (
                *_point(params, "near", in_crs),
                _number(params, "radius_m", 0, settings.max_radius_m),
            )
        elif "radius_m" in params:
            raise InvalidField("near", "is required with radius_m")
        if "nearest" in params:
            if "near" in params:
                raise InvalidField("nearest", "cannot be combined with near")
            k = parse_integer(params, "k", 5, 1, settings.max_nearest_k)
            query.nearest = (*_point(params, "nearest", in_crs), k)
        elif "k" in params:
            raise InvalidField("nearest", "is required with k")
    return query


def parse_around(params: Mapping[str, str], settings: Settings) -> tuple[float, float, float, int]:
    with query_errors():
        for name in ("lon", "lat", "radius_m"):
            if name not in params:
                raise InvalidField(name, "is required")
        lon = _numbers(params, "lon", (1,))[0]
        lat = _numbers(params, "lat", (1,))[0]
        if not (-180 <= lon <= 180):
            raise InvalidField("lon", "must be within -180..180")
        if not (-90 <= lat <= 90):
            raise InvalidField("lat", "must be within -90..90")
        radius_m = _number(params, "radius_m", 0, settings.max_radius_m)
        limit = parse_integer(params, "limit", settings.page_size, 1, settings.max_page_size)
    return lon, lat, radius_m, limit


def parse_output_crs(params: Mapping[str, str]) -> Crs:
    with query_errors():
        return parse_crs(params["crs"], "crs") if "crs" in params else CRS84
