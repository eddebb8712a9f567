"""Writing asset layers to GeoPackage or GeoJSON with pyogrio (GDAL).

Coordinates stay in WGS 84 (EPSG:4326, longitude first) at full precision. Fields keep their
types: integers as integers, numbers as reals, booleans as GDAL booleans, times as UTC date-times,
text lists as JSON text (GeoJSON writes them as arrays). Each feature's `id` is its public id, so a
written file imports back onto the same assets. A GeoPackage holds one table per layer; GeoJSON
holds one layer per file.

Rows are read in pages by the same queries as the API, so memory stays flat for large layers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.crs import WGS84
from fieldline.gis.errors import InvalidField
from fieldline.gis.layers import COMMON_PROPERTIES, LAYERS, Layer
from fieldline.gis.queries import FeatureQuery, select_features

FORMATS = {"gpkg": ("GPKG", ".gpkg"), "geojson": ("GeoJSON", ".geojson")}
MEDIA_TYPES = {"gpkg": "application/geopackage+sqlite3", "geojson": "application/geo+json"}
PAGE_SIZE = 5000
# GDAL's time zone flag for UTC (RFC 56: 100 is GMT, each step 15 minutes).
_GDAL_UTC = 100
# Field types of the columns every layer shares besides its attributes.
_COMMON_KINDS = {"source_id": "text", "created_at": "datetime", "updated_at": "datetime"}


@dataclass(frozen=True)
class ExportSummary:
    layer: str
    path: Path
    features: int


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # an Attribute kind


def fields(layer: Layer) -> list[_Field]:
    """The columns written for a layer, in order: id, attributes, common properties."""
    return [
        _Field("id", "text"),
        *(_Field(a.name, a.kind) for a in layer.attributes),
        *(_Field(name, _COMMON_KINDS[name]) for name in COMMON_PROPERTIES),
    ]


def layer_path(folder: Path, layer: Layer, fmt: str) -> Path:
    return folder / f"{layer.name}{FORMATS[fmt][1]}"


def export_layers(
    bind: sa.Connection | Session, path: Path, fmt: str, layers: Sequence[Layer] | None = None
) -> list[ExportSummary]:
    """A GeoPackage at `path` with a table per layer, or GeoJSON files: one per layer in the
    folder `path`, or the file `path` itself when it ends with .geojson and one layer is asked."""
    if fmt not in FORMATS:
        raise InvalidField("format", f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    chosen = list(layers) if layers else list(LAYERS.values())
    if fmt == "gpkg":
        path.unlink(missing_ok=True)  # a fresh file, not layers added to an old one
        return [write_layer(bind, layer, path, fmt) for layer in chosen]
    if path.suffix == ".geojson":
        if len(chosen) != 1:
            raise InvalidField("path", "a .geojson file holds one layer; name a folder for more")
        return [write_layer(bind, chosen[0], path, fmt)]
    path.mkdir(parents=True, exist_ok=True)
    return [write_layer(bind, layer, layer_path(path, layer, fmt), fmt) for layer in chosen]


def write_layer(bind: sa.Connection | Session, layer: Layer, path: Path, fmt: str) -> ExportSummary:
    driver = FORMATS[fmt][0]
    columns = fields(layer)
    options = (
        {"ID_FIELD": "id"}
        if fmt == "geojson"
        else {"IDENTIFIER": layer.name, "DESCRIPTION": layer.title}
    )
    if fmt == "geojson":
        path.unlink(missing_ok=True)
    query = FeatureQuery(limit=PAGE_SIZE)
    written = 0
    while True:
        statement, values = select_features(layer, query)
        statement = statement.add_columns(sa.func.ST_AsBinary(layer.table.c.geom).label("_wkb"))
        rows = bind.execute(statement, values).mappings().all()
        if rows or written == 0:  # an empty layer is still written, with its fields
            data = [_column(f, rows) for f in columns]
            pyogrio.raw.write(
                path,
                np.array([bytes(row["_wkb"]) for row in rows], dtype=object),
                [values for values, _ in data],
                [f.name for f in columns],
                field_mask=[mask for _, mask in data],
                layer=layer.name,
                driver=driver,
                geometry_type=layer.geometry_type,
                crs=f"EPSG:{WGS84}",
                append=written > 0,
                layer_options=options,
                gdal_tz_offsets={
                    f.name: np.full(len(rows), _GDAL_UTC) for f in columns if f.kind == "datetime"
                },
            )
        written += len(rows)
        if len(rows) < PAGE_SIZE:
            return ExportSummary(layer.name, path, written)
        query.cursor = int(rows[-1]["_id"])


def _column(field: _Field, rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """One field's values as the numpy array pyogrio writes, with a mask of the empty ones."""
    values = [row["_public_id"] if field.name == "id" else row[field.name] for row in rows]
    missing = np.array([v is None for v in values], dtype=bool)
    mask = missing if missing.any() else None
    if field.kind == "number":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64), None
    if field.kind == "integer":
        return np.array([0 if v is None else v for v in values], dtype=np.int64), mask
    if field.kind == "boolean":
        return np.array([bool(v) for v in values], dtype=bool), mask
    if field.kind == "datetime":
        return np.array([_utc(v) for v in values], dtype="datetime64[ms]"), None
    if field.kind == "text_list":
        return np.array([None if v is None else json.dumps(v) for v in values], dtype=object), None
    return np.array(values, dtype=object), None


def _utc(value: datetime | None) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT")
    return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "ms")
