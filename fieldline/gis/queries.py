"""Spatial and attribute queries over the asset layers, framework-neutral.

Queries return rows with the geometry already encoded as GeoJSON by PostGIS, so serving a page
of features costs little more than the SQL itself. Distances are always metres on the WGS 84
ellipsoid (geography), never degrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geography
from shapely.geometry.base import BaseGeometry

from fieldline.gis.crs import WGS84, Crs, crs_from_srid
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import COMMON_PROPERTIES, LAYERS, Attribute, Layer
from fieldline.gis.models import SRID
from fieldline.gis.validation import parse_value

# Query parameters that are not attribute filters.
RESERVED_PARAMS = frozenset(
    {
        "bbox",
        "bbox-crs",
        "crs",
        "near",
        "radius_m",
        "nearest",
        "k",
        "intersects",
        "limit",
        "cursor",
        "f",
    }
)


@dataclass(frozen=True)
class AttributeFilter:
    attribute: Attribute
    op: str  # eq | min | max
    value: Any


@dataclass
class FeatureQuery:
    bbox: BaseGeometry | None = None  # WGS 84 polygon
    near: tuple[float, float, float] | None = None  # lon, lat, radius_m
    nearest: tuple[float, float, int] | None = None  # lon, lat, k
    intersects: BaseGeometry | None = None  # WGS 84
    filters: list[AttributeFilter] = field(default_factory=list)
    limit: int = 100
    cursor: int | None = None
    out_crs: Crs = field(default_factory=lambda: crs_from_srid(WGS84))


def geography(column: Any) -> Any:
    # Written exactly as the expression index in models.py, so PostgreSQL uses that index.
    return sa.cast(column, Geography(srid=SRID))


def _point_geography(lon: float, lat: float) -> Any:
    return sa.cast(sa.func.ST_SetSRID(sa.func.ST_MakePoint(lon, lat), SRID), Geography(srid=SRID))


def _wkb_geometry(geometry: BaseGeometry) -> Any:
    return sa.func.ST_GeomFromWKB(sa.literal(geometry.wkb, sa.LargeBinary), SRID)


@dataclass
class _Plan:
    """The pieces of a layer query, shared by the row and the GeoJSON document forms."""

    properties: list[tuple[str, Any]]  # public name -> SQL expression
    from_clause: Any
    conditions: list[Any]
    order: list[Any]
    limit: int
    distance: Any | None


def _properties(layer: Layer) -> tuple[list[tuple[str, Any]], Any]:
    """Attribute expressions by public name, with refs joined to their public ids."""
    table = layer.table
    from_clause: Any = table
    properties: list[tuple[str, Any]] = []
    for attribute in layer.attributes:
        if attribute.kind == "ref":
            target = LAYERS[attribute.ref_layer or ""].table.alias(f"ref_{attribute.name}")
            from_clause = from_clause.outerjoin(target, target.c.id == table.c[attribute.column])
            properties.append((attribute.name, target.c.public_id))
        else:
            properties.append((attribute.name, table.c[attribute.column]))
    properties.extend((name, table.c[name]) for name in COMMON_PROPERTIES)
    return properties, from_clause


def geojson_column(layer: Layer, crs: Crs) -> Any:
    geom: Any = layer.table.c.geom
    if crs.srid != SRID:
        geom = sa.func.ST_Transform(geom, crs.srid)
    # options=0: no "crs" member, which RFC 7946 dropped; the Content-Crs header says it.
    return sa.func.ST_AsGeoJSON(geom, crs.precision, 0)


def _plan(layer: Layer, query: FeatureQuery) -> _Plan:
    table = layer.table
    properties, from_clause = _properties(layer)
    plan = _Plan(properties, from_clause, [], [table.c.id], query.limit, None)
    if query.bbox is not None:
        plan.conditions.append(sa.func.ST_Intersects(table.c.geom, _wkb_geometry(query.bbox)))
    if query.intersects is not None:
        plan.conditions.append(sa.func.ST_Intersects(table.c.geom, _wkb_geometry(query.intersects)))
    if query.near is not None:
        lon, lat, radius_m = query.near
        point = _point_geography(lon, lat)
        plan.conditions.append(sa.func.ST_DWithin(geography(table.c.geom), point, radius_m))
        plan.distance = sa.func.ST_Distance(geography(table.c.geom), point)
    if query.nearest is not None:
        lon, lat, k = query.nearest
        point = _point_geography(lon, lat)
        # KNN on the sphere through the geography index, alone in its subquery: any other
        # ORDER BY term would stop PostgreSQL from walking the index. The spheroid distance
        # is what is reported and sorted on.
        nearest_ids = (
            sa.select(table.c.id).order_by(geography(table.c.geom).op("<->")(point)).limit(k)
        )
        plan.conditions.append(table.c.id.in_(nearest_ids))
        plan.distance = sa.func.ST_Distance(geography(table.c.geom), point)
        plan.order = [plan.distance, table.c.id]
        plan.limit = k
    for item in query.filters:
        column = _filter_column(layer, item.attribute)
        if item.op == "eq":
            plan.conditions.append(column == item.value)
        elif item.op == "min":
            plan.conditions.append(column >= item.value)
        else:
            plan.conditions.append(column <= item.value)
    if query.cursor is not None and query.nearest is None:
        plan.conditions.append(table.c.id > query.cursor)
    return plan


def select_features(layer: Layer, query: FeatureQuery) -> sa.Select[Any]:
    """One row per feature with every attribute as a column (for services and checks)."""
    table = layer.table
    plan = _plan(layer, query)
    head: list[Any] = [
        table.c.id.label("_id"),
        table.c.public_id.label("_public_id"),
        geojson_column(layer, query.out_crs).label("_geometry"),
    ]
    if plan.distance is not None:
        head.append(plan.distance.label("distance_m"))
    return (
        sa.select(*head, *(expression.label(name) for name, expression in plan.properties))
        .select_from(plan.from_clause)
        .where(*plan.conditions)
        .order_by(*plan.order)
        .limit(plan.limit)
    )


def select_documents(
    layer: Layer, query: FeatureQuery, extra: Mapping[str, str] | None = None
) -> sa.Select[Any]:
    """One GeoJSON Feature per row, as text written by PostgreSQL: `_id`, `_feature`
    and, for distance queries, `distance_m`.

    Encoding in the database keeps a page of features close to the cost of the SQL alone;
    Python only joins the texts.
    """
    table = layer.table
    plan = _plan(layer, query)
    properties = list(plan.properties)
    head: list[Any] = [table.c.id.label("_id")]
    if plan.distance is not None:
        head.append(plan.distance.label("distance_m"))
        rounded = sa.func.round(sa.cast(plan.distance, sa.Numeric), 3)
        properties.append(("distance_m", rounded))
    properties.extend((name, sa.literal(value, sa.Text)) for name, value in (extra or {}).items())
    pairs = [part for name, expression in properties for part in (sa.literal(name), expression)]
    document = sa.func.concat(
        sa.literal('{"type":"Feature","id":'),
        sa.func.to_json(table.c.public_id),
        sa.literal(',"geometry":'),
        geojson_column(layer, query.out_crs),
        sa.literal(',"properties":'),
        sa.func.json_build_object(*pairs),
        sa.literal("}"),
        type_=sa.Text,
    )
    return (
        sa.select(*head, document.label("_feature"))
        .select_from(plan.from_clause)
        .where(*plan.conditions)
        .order_by(*plan.order)
        .limit(plan.limit)
    )


def _filter_column(layer: Layer, attribute: Attribute) -> Any:
    if attribute.kind == "ref":
        return sa.literal_column(f"ref_{attribute.name}.public_id")
    return layer.table.c[attribute.column]


def parse_attribute_filters(layer: Layer, params: Mapping[str, str]) -> list[AttributeFilter]:
    """`material=PVC`, `diameter_mm_min=150`, `install_year_max=1980`; unknown names are 400s."""
    filters = []
    for name, raw in params.items():
        if name in RESERVED_PARAMS:
            continue
        attribute, op = layer.attribute(name), "eq"
        if attribute is None and name.endswith(("_min", "_max")):
            attribute, op = layer.attribute(name[:-4]), name[-3:]
            if attribute is not None and not attribute.filter_range:
                raise InvalidField(name, f"{attribute.name} cannot be filtered by range")
        if attribute is None:
            raise InvalidField(name, f"unknown parameter or attribute for {layer.name}")
        if attribute.kind == "text_list":
            raise InvalidField(name, "list attributes cannot be filtered")
        filters.append(AttributeFilter(attribute, op, _query_value(attribute, raw, name)))
    return filters


def _query_value(attribute: Attribute, raw: str, field: str) -> Any:
    """Turn a query-string value into the attribute's type, then apply its rules."""
    value: Any = raw
    try:
        if attribute.kind == "number":
            value = float(raw)
        elif attribute.kind == "integer":
            value = int(raw)
        elif attribute.kind == "boolean":
            value = {"true": True, "false": False}[raw.lower()]
    except (ValueError, KeyError):
        raise InvalidField(field, f"{raw!r} is not a valid {attribute.kind}") from None
    if attribute.filter_range:
        # A range bound is not a stored value: `diameter_mm_min=0` is a fair question.
        if attribute.kind == "datetime":
            return parse_value(Attribute(attribute.name, "datetime"), value, field)
        return value
    return parse_value(attribute, value, field)


def feature_properties(layer: Layer, row: Mapping[Any, Any]) -> dict[str, Any]:
    properties = {a.name: row[a.name] for a in layer.attributes}
    for name in COMMON_PROPERTIES:
        properties[name] = row[name]
    return properties


def around(
    connection: sa.Connection, lon: float, lat: float, radius_m: float, limit: int
) -> list[str]:
    """What lies within `radius_m` of a point across every network layer, nearest first,
    as GeoJSON Feature texts carrying their `layer`."""
    found: list[tuple[float, str, int, str]] = []
    for layer in LAYERS.values():
        if not layer.network:
            continue
        query = FeatureQuery(near=(lon, lat, radius_m), limit=limit)
        statement = (
            select_documents(layer, query, {"layer": layer.name})
            .order_by(None)
            .order_by(sa.literal_column("distance_m"), layer.table.c.id)
        )
        found.extend(
            (row.distance_m, layer.name, row._id, row._feature)
            for row in connection.execute(statement)
        )
    found.sort()
    return [feature for *_, feature in found[:limit]]


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")
