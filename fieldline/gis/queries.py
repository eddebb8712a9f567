"""Spatial and attribute queries over the asset layers, framework-neutral.

Queries return rows with the geometry already encoded as GeoJSON by PostGIS, so serving a page
of features costs little more than the SQL itself. Distances are always metres on the WGS 84
ellipsoid (geography), never degrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geography
from shapely.geometry.base import BaseGeometry

from fieldline.gis.crs import WGS84, Crs, crs_from_srid
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import COMMON_PROPERTIES, LAYERS, Attribute, Layer
from fieldline.gis.models import SRID
from fieldline.gis.validation import check_bigint, parse_datetime, parse_value

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
    public_id: str | None = None  # one asset
    # A further condition built elsewhere (e.g. from a CQL2 filter) with its values bound in
    # it; such queries are built each time rather than taken from the cache of shapes.
    where: Any | None = None
    out_crs: Crs = field(default_factory=lambda: crs_from_srid(WGS84))


# A statement and the values of its bound parameters, ready for `connection.execute(*bound)`.
Bound = tuple[sa.Select[Any], dict[str, Any]]


@dataclass(frozen=True)
class _Shape:
    """What a query looks like without its values. Each shape is built and compiled once
    (see `_statement`): building SQL expressions costs more than running a small query."""

    layer: str
    documents: bool
    bbox: bool
    intersects: bool
    near: bool
    nearest: bool
    cursor: bool
    public_id: bool
    filters: tuple[tuple[str, str], ...]  # (attribute, op)
    srid: int
    precision: int
    yx: bool
    extra: tuple[str, ...]  # constant properties added to each document


def geography(column: Any) -> Any:
    # Written exactly as the expression index in models.py, so PostgreSQL uses that index.
    return sa.cast(column, Geography(srid=SRID))


def _point_geography(lon: str, lat: str) -> Any:
    point = sa.func.ST_MakePoint(
        sa.bindparam(lon, type_=sa.Float), sa.bindparam(lat, type_=sa.Float)
    )
    return sa.cast(sa.func.ST_SetSRID(point, SRID), Geography(srid=SRID))


def _wkb_geometry(name: str) -> Any:
    return sa.func.ST_GeomFromWKB(sa.bindparam(name, type_=sa.LargeBinary), SRID)


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


def geojson_column(layer: Layer, srid: int, precision: int, yx: bool = False) -> Any:
    geom: Any = layer.table.c.geom
    if srid != SRID:
        geom = sa.func.ST_Transform(geom, srid)
    if yx:  # latitude (northing) first, as the CRS defines it; see crs.py
        geom = sa.func.ST_FlipCoordinates(geom)
    # options=0: no "crs" member, which RFC 7946 dropped; the Content-Crs header says it.
    return sa.func.ST_AsGeoJSON(geom, precision, 0)


def _bind(
    layer: Layer, query: FeatureQuery, documents: bool, extra: Mapping[str, str]
) -> tuple[_Shape, dict[str, Any]]:
    values: dict[str, Any] = {"limit": query.limit}
    if query.bbox is not None:
        values["bbox"] = query.bbox.wkb
    if query.intersects is not None:
        values["area"] = query.intersects.wkb
    if query.near is not None:
        values["lon"], values["lat"], values["radius_m"] = query.near
    if query.nearest is not None:
        values["lon"], values["lat"], values["limit"] = query.nearest
    cursor = query.cursor is not None and query.nearest is None
    if cursor:
        values["cursor"] = query.cursor
    if query.public_id is not None:
        values["public_id"] = query.public_id
    for index, item in enumerate(query.filters):
        values[f"filter_{index}"] = item.value
    for name, value in extra.items():
        values[f"extra_{name}"] = value
    shape = _Shape(
        layer=layer.name,
        documents=documents,
        bbox=query.bbox is not None,
        intersects=query.intersects is not None,
        near=query.near is not None,
        nearest=query.nearest is not None,
        cursor=cursor,
        public_id=query.public_id is not None,
        filters=tuple((item.attribute.name, item.op) for item in query.filters),
        srid=query.out_crs.srid,
        precision=query.out_crs.precision,
        yx=query.out_crs.yx,
        extra=tuple(extra),
    )
    return shape, values


@lru_cache(maxsize=1024)
def _statement(shape: _Shape) -> sa.Select[Any]:
    layer = LAYERS[shape.layer]
    table = layer.table
    properties, from_clause = _properties(layer)
    conditions: list[Any] = []
    order: list[Any] = [table.c.id]
    distance = None
    if shape.bbox:
        conditions.append(sa.func.ST_Intersects(table.c.geom, _wkb_geometry("bbox")))
    if shape.intersects:
        conditions.append(sa.func.ST_Intersects(table.c.geom, _wkb_geometry("area")))
    if shape.near:
        point = _point_geography("lon", "lat")
        radius = sa.bindparam("radius_m", type_=sa.Float)
        conditions.append(sa.func.ST_DWithin(geography(table.c.geom), point, radius))
        distance = sa.func.ST_Distance(geography(table.c.geom), point)
    if shape.nearest:
        point = _point_geography("lon", "lat")
        # KNN on the sphere through the geography index, alone in its subquery: any other
        # ORDER BY term would stop PostgreSQL from walking the index. The spheroid distance
        # is what is reported and sorted on.
        nearest_ids = (
            sa.select(table.c.id)
            .order_by(geography(table.c.geom).op("<->")(point))
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )
        conditions.append(table.c.id.in_(nearest_ids))
        distance = sa.func.ST_Distance(geography(table.c.geom), point)
        order = [distance, table.c.id]
    for index, (name, op) in enumerate(shape.filters):
        attribute = layer.attribute_index[name]
        column = filter_column(layer, attribute)
        value = sa.bindparam(f"filter_{index}", type_=column.type)
        conditions.append({"eq": column == value, "min": column >= value}.get(op, column <= value))
    if shape.cursor:
        conditions.append(table.c.id > sa.bindparam("cursor", type_=sa.BigInteger))
    if shape.public_id:
        conditions.append(table.c.public_id == sa.bindparam("public_id", type_=sa.Text))
    geometry = geojson_column(layer, shape.srid, shape.precision, shape.yx)
    if shape.documents:
        head = _document_columns(table, properties, geometry, distance, shape.extra)
    else:
        head = [
            table.c.id.label("_id"),
            table.c.public_id.label("_public_id"),
            geometry.label("_geometry"),
        ]
        if distance is not None:
            head.append(distance.label("distance_m"))
        head.extend(expression.label(name) for name, expression in properties)
    return (
        sa.select(*head)
        .select_from(from_clause)
        .where(*conditions)
        .order_by(*order)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


def _document_columns(
    table: sa.Table,
    properties: list[tuple[str, Any]],
    geometry: Any,
    distance: Any,
    extra: tuple[str, ...],
) -> list[Any]:
    head: list[Any] = [table.c.id.label("_id")]
    properties = list(properties)
    if distance is not None:
        head.append(distance.label("distance_m"))
        properties.append(("distance_m", sa.func.round(sa.cast(distance, sa.Numeric), 3)))
    properties.extend((name, sa.bindparam(f"extra_{name}", type_=sa.Text)) for name in extra)
    pairs: list[Any] = []  # name, value, name, value, ...
    for name, expression in properties:
        pairs.extend((sa.literal_column(f"'{name}'"), expression))
    document = sa.func.concat(
        sa.literal_column("""'{"type":"Feature","id":'"""),
        sa.func.to_json(table.c.public_id),
        sa.literal_column("""',"geometry":'"""),
        geometry,
        sa.literal_column("""',"properties":'"""),
        sa.func.json_build_object(*pairs),
        sa.literal_column("'}'"),
        type_=sa.Text,
    )
    head.append(document.label("_feature"))
    return head


def select_features(layer: Layer, query: FeatureQuery) -> Bound:
    """One row per feature with every attribute as a column (for services and checks)."""
    shape, values = _bind(layer, query, documents=False, extra={})
    return _with_where(_statement(shape), query), values


def select_documents(
    layer: Layer, query: FeatureQuery, extra: Mapping[str, str] | None = None
) -> Bound:
    """One GeoJSON Feature per row, as text written by PostgreSQL: `_id`, `_feature`
    and, for distance queries, `distance_m`.

    Encoding in the database keeps a page of features close to the cost of the SQL alone;
    Python only joins the texts.
    """
    shape, values = _bind(layer, query, documents=True, extra=extra or {})
    return _with_where(_statement(shape), query), values


def _with_where(statement: sa.Select[Any], query: FeatureQuery) -> sa.Select[Any]:
    return statement if query.where is None else statement.where(query.where)


def filter_column(layer: Layer, attribute: Attribute) -> Any:
    """What a filter on `attribute` compares (query parameters and CQL2 alike): a reference
    compares the referenced asset's public id, through the `ref_<name>` join of `_properties`."""
    if attribute.kind == "ref":
        return sa.literal_column(f"ref_{attribute.name}.public_id", sa.Text)
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
            value = check_bigint(int(raw), field)
        elif attribute.kind == "boolean":
            value = {"true": True, "false": False}[raw.lower()]
    except (ValueError, KeyError):
        raise InvalidField(field, f"{raw!r} is not a valid {attribute.kind}") from None
    if attribute.filter_range:
        # A range bound is not a stored value: `diameter_mm_min=0` is a fair question.
        if attribute.kind == "datetime":
            return parse_datetime(value, field)
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
        statement, values = select_documents(layer, query, {"layer": layer.name})
        statement = statement.order_by(None).order_by(
            sa.literal_column("distance_m"), layer.table.c.id
        )
        found.extend(
            (row.distance_m, layer.name, row._id, row._feature)
            for row in connection.execute(statement, values)
        )
    found.sort()
    return [feature for *_, feature in found[:limit]]


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


Bounds = tuple[float, float, float, float]  # minx, miny, maxx, maxy


def layer_extents(connection: sa.Connection) -> dict[str, Bounds | None]:
    """The WGS 84 bounding box (longitude first) of every layer; None for an empty layer.

    One statement for all layers, but ST_Extent still reads every geometry: callers that
    serve it often keep the answer for a while."""
    parts = []
    for layer in LAYERS.values():
        box = sa.func.ST_Extent(layer.table.c.geom)
        parts.append(
            sa.select(
                sa.literal(layer.name).label("layer"),
                sa.func.ST_XMin(box).label("minx"),
                sa.func.ST_YMin(box).label("miny"),
                sa.func.ST_XMax(box).label("maxx"),
                sa.func.ST_YMax(box).label("maxy"),
            )
        )
    return {
        row.layer: None if row.minx is None else (row.minx, row.miny, row.maxx, row.maxy)
        for row in connection.execute(sa.union_all(*parts))
    }
