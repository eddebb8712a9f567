"""Loading asset files (GeoJSON, GeoPackage, Shapefile, anything GDAL reads) into the layers.

Files are read with pyogrio (GDAL). Every feature goes through the same validation as the API;
a bad feature is reported with its number and reason while the good ones are stored. Features
carrying a public id (`P-000123`) are upserted, so importing the same file twice changes
nothing the second time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldline.gis.crs import Crs, parse_crs
from fieldline.gis.errors import GisError, InvalidField
from fieldline.gis.layers import LAYERS, Layer, get_layer
from fieldline.gis.services import column_values, geometry_value, resolve_references
from fieldline.gis.validation import check_geometry, parse_properties

# LAYERS lists each layer after those it refers to, so references resolve while loading.
IMPORT_ORDER = tuple(LAYERS)
BATCH_SIZE = 1000
FORMATS = {"geojson": (".geojson", ".json"), "gpkg": (".gpkg",), "shp": (".shp",)}

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Rejection:
    number: int  # 1-based position of the feature in its source layer
    feature_id: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        name = f" ({self.feature_id})" if self.feature_id else ""
        return f"feature {self.number}{name}: {self.field}: {self.reason}"


@dataclass
class LayerSummary:
    layer: str
    source: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class Source:
    path: Path
    source_layer: str | None  # a layer inside a GeoPackage; None for single-layer files
    layer: Layer

    @property
    def label(self) -> str:
        return f"{self.path.name}:{self.source_layer}" if self.source_layer else self.path.name


@dataclass
class Feature:
    number: int
    public_id: str | None
    geometry: Any
    properties: dict[str, Any]


def find_sources(path: Path, layer_name: str | None = None, fmt: str | None = None) -> list[Source]:
    """What to import from a file or a folder of files, in reference order."""
    if not path.exists():
        raise GisError(f"{path} does not exist")
    if fmt is not None and fmt not in FORMATS:
        raise GisError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    suffixes = FORMATS[fmt] if fmt else tuple(s for group in FORMATS.values() for s in group)
    files = sorted(p for p in path.iterdir() if p.suffix in suffixes) if path.is_dir() else [path]
    sources = []
    for file in files:
        inner = [name for name, _ in pyogrio.list_layers(file)]
        if len(inner) > 1:
            for name in inner:
                if name in LAYERS and layer_name in (None, name):
                    sources.append(Source(file, name, LAYERS[name]))
        elif layer_name or file.stem in LAYERS:
            sources.append(Source(file, None, get_layer(layer_name or file.stem)))
        elif not path.is_dir():
            raise GisError(f"cannot tell the layer of {file.name}; name it with --layer")
    if not sources:
        raise GisError(
            f"nothing to import in {path}; files are named after layers: {', '.join(LAYERS)}"
        )
    return sorted(sources, key=lambda s: IMPORT_ORDER.index(s.layer.name))


def count_features(source: Source) -> int:
    return int(pyogrio.read_info(source.path, layer=source.source_layer)["features"])


def _python(value: Any) -> Any:
    """GDAL hands back numpy values, NaN for an empty number and arrays for lists."""
    if isinstance(value, np.ndarray):
        return [_python(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _defaults(layer: Layer) -> dict[str, Any]:
    """Column values for attributes a file does not have at all."""
    return {
        a.column: list(a.default) if isinstance(a.default, tuple) else a.default
        for a in layer.attributes
        if not a.read_only
    }


def _coerce(layer: Layer, name: str, value: Any) -> Any:
    attribute = layer.attribute(name)
    if attribute is None:
        return value
    if value is None and attribute.default is not None:
        value = attribute.default
    if attribute.kind == "boolean" and isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if attribute.kind == "text_list" and isinstance(value, tuple | list):
        return [str(v) for v in value]
    return value


def read_features(source: Source) -> Iterator[Feature]:
    meta, _fids, geometries, columns = pyogrio.raw.read(
        source.path, layer=source.source_layer, datetime_as_string=True, return_fids=True
    )
    names = [str(n) for n in meta["fields"]]
    layer = source.layer
    for index, wkb in enumerate(geometries):
        values = {name: _python(column[index]) for name, column in zip(names, columns, strict=True)}
        public_id = values.pop("id", None) or values.pop("public_id", None)
        properties = {name: _coerce(layer, name, value) for name, value in values.items()}
        geometry = shapely.from_wkb(wkb) if wkb is not None else None
        yield Feature(
            index + 1, None if public_id is None else str(public_id), geometry, properties
        )


def file_crs(source: Source, override: Crs | None) -> Crs:
    if override is not None:
        return override
    found = pyogrio.read_info(source.path, layer=source.source_layer).get("crs")
    if not found:
        raise GisError(f"{source.label} names no CRS; give it with --crs EPSG:N")
    return parse_crs(found, "crs")


def _public_id_pattern(layer: Layer) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(layer.model.id_prefix)}-\d+$")


def _validate(
    layer: Layer, feature: Feature, crs: Crs, id_pattern: re.Pattern[str]
) -> dict[str, Any]:
    if feature.public_id is not None and not id_pattern.match(feature.public_id):
        raise InvalidField(
            "id",
            f"{feature.public_id!r} is not a {layer.name} id like {layer.model.id_prefix}-000123",
        )
    if feature.geometry is None:
        raise InvalidField("geometry", "is missing")
    properties = {
        k: v
        for k, v in feature.properties.items()
        if not (layer.attribute(k) and layer.attribute_index[k].read_only)
    }
    clean = parse_properties(layer, properties, partial=False)
    clean["geom"] = check_geometry(layer, feature.geometry, crs, "geometry")
    return clean


def _upsert(layer: Layer, with_ids: bool) -> Any:
    table = layer.table
    columns = [a.column for a in layer.attributes if not a.read_only] + ["geom"]
    statement = insert(table)
    if with_ids:
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.public_id],
            set_={c: statement.excluded[c] for c in columns} | {"updated_at": sa.func.now()},
        )
    # xmax is 0 for a freshly inserted row and set for one that was updated.
    return statement.returning(sa.literal_column("(xmax = 0)").label("inserted"))


def _store(
    session: Session,
    layer: Layer,
    batch: list[tuple[Feature, dict[str, Any]]],
    summary: LayerSummary,
) -> None:
    references = resolve_references(session, layer, [clean for _, clean in batch])
    rows: dict[bool, list[tuple[Feature, dict[str, Any]]]] = {True: [], False: []}
    for feature, clean in batch:
        geometry = clean.pop("geom")
        try:
            values = column_values(layer, clean, references)
        except InvalidField as exc:
            summary.rejected.append(
                Rejection(feature.number, feature.public_id, exc.field, exc.detail)
            )
            continue
        values = _defaults(layer) | values
        values["geom"] = geometry_value(geometry)
        if feature.public_id is not None:
            values["public_id"] = feature.public_id
        rows[feature.public_id is not None].append((feature, values))
    for with_ids, group in rows.items():
        if group:
            _write_group(session, layer, with_ids, group, summary)
            if with_ids:
                # Before any id-less feature takes the next number, skip the numbers used.
                advance_public_ids(session, layer)


def _write_group(
    session: Session,
    layer: Layer,
    with_ids: bool,
    group: list[tuple[Feature, dict[str, Any]]],
    summary: LayerSummary,
) -> None:
    statement = _upsert(layer, with_ids)
    try:
        with session.begin_nested():
            results: list[bool] = list(
                session.execute(statement, [values for _, values in group]).scalars()
            )
    except IntegrityError:
        # One bad row spoils a multi-row insert; redo the batch row by row to name it.
        results = []
        for feature, values in group:
            try:
                with session.begin_nested():
                    results.append(session.execute(statement, [values]).scalar_one())
            except IntegrityError as exc:
                reason = str(exc.orig).splitlines()[0]
                summary.rejected.append(
                    Rejection(feature.number, feature.public_id, "feature", reason)
                )
    summary.inserted += sum(1 for inserted in results if inserted)
    summary.updated += sum(1 for inserted in results if not inserted)


def advance_public_ids(session: Session, layer: Layer) -> None:
    """After ids came from a file, new assets must continue after the highest one."""
    table = layer.table.name
    prefix = layer.model.id_prefix
    session.execute(
        sa.text(
            f"SELECT setval('{table}_public_seq', m) FROM ("  # noqa: S608 - names from LAYERS
            f" SELECT max(substring(public_id from '[0-9]+$')::bigint) AS m FROM {table}"
            f" WHERE public_id ~ '^{prefix}-[0-9]+$') AS highest WHERE m IS NOT NULL"
        )
    )


def import_source(
    session: Session, source: Source, crs: Crs | None = None, progress: Progress | None = None
) -> LayerSummary:
    layer = source.layer
    summary = LayerSummary(layer.name, source.label)
    source_crs = file_crs(source, crs)
    id_pattern = _public_id_pattern(layer)
    batch: list[tuple[Feature, dict[str, Any]]] = []
    for feature in read_features(source):
        summary.read += 1
        try:
            batch.append((feature, _validate(layer, feature, source_crs, id_pattern)))
        except InvalidField as exc:
            summary.rejected.append(
                Rejection(feature.number, feature.public_id, exc.field, exc.detail)
            )
        if len(batch) >= BATCH_SIZE:
            _store(session, layer, batch, summary)
            batch = []
        if progress:
            progress(1)
    if batch:
        _store(session, layer, batch, summary)
    session.commit()
    summary.rejected.sort(key=lambda r: r.number)
    return summary


def import_path(
    session: Session,
    sources: Sequence[Source],
    crs: Crs | None = None,
    progress: Progress | None = None,
) -> list[LayerSummary]:
    return [import_source(session, source, crs, progress) for source in sources]
