"""Loading asset files (GeoJSON, GeoPackage, Shapefile, EPANET, anything GDAL reads) into layers.

GIS files are read with pyogrio (GDAL), EPANET models with WNTR (see epanet.py). Every feature
goes through the same validation as the API; a bad feature is reported with its number and
reason while the good ones are stored.

Importing the same file twice changes nothing the second time. A feature is found again by:
- its public id (`P-000123`), when its `id` has the shape of one for its layer;
- otherwise by its source id, `<namespace>:<id in the file>`, kept in the `source_id` column. The
  id in the file is the `--id-field` when one is named, else the `id` field, else the feature's
  FID (a GeoPackage's primary key; a shapefile's record number, which shifts when records are
  deleted, so name a real id field for shapefiles that are edited). The namespace is the name of
  the file or folder imported (`Net3` for `Net3.inp`) unless given, so two files cannot
  overwrite each other's features by sharing ids.

References between layers (a pipe's `from_node`) may be public ids or, in the same way, ids of
features imported under the same namespace: an EPANET pipe names its nodes by their EPANET ids.
On update only the attributes the file has are changed: a file without `material` leaves the
materials users set alone.
"""

from __future__ import annotations

import json
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

from fieldline.gis import epanet
from fieldline.gis.crs import Crs, parse_crs
from fieldline.gis.errors import GisError, InvalidField
from fieldline.gis.layers import COMMON_PROPERTIES, LAYERS, Layer
from fieldline.gis.mapping import NO_MAPPING, FieldMapping
from fieldline.gis.services import column_values, geometry_value, resolve_references
from fieldline.gis.validation import check_geometry, parse_properties

# LAYERS lists each layer after those it refers to, so references resolve while loading.
IMPORT_ORDER = tuple(LAYERS)
BATCH_SIZE = 1000
FORMATS = {
    "geojson": (".geojson", ".json"),
    "gpkg": (".gpkg",),
    "shp": (".shp", ".zip"),  # a zipped shapefile is read as it is
    "epanet": (".inp",),
}
# Fields a file may carry that are not attributes and are not reported as ignored: the ids, and
# the read-only columns an export writes.
ID_FIELDS = ("id", "public_id")
SOURCE_ID_FIELD = "source_id"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Rejection:
    number: int  # 1-based position of the feature in its source layer
    feature_id: str | None  # the id as the file gives it
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
    ignored_fields: list[str] = field(default_factory=list)  # fields that match no attribute

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "source": self.source,
            "read": self.read,
            "inserted": self.inserted,
            "updated": self.updated,
            "rejected": [
                {"number": r.number, "id": r.feature_id, "field": r.field, "reason": r.reason}
                for r in self.rejected
            ],
            "ignored_fields": self.ignored_fields,
        }


@dataclass(frozen=True)
class Source:
    path: Path
    source_layer: str | None  # a layer inside a GeoPackage; None for single-layer files
    layer: Layer
    namespace: str  # source ids are `<namespace>:<id in the file>`
    model: epanet.EpanetFile | None = None  # for EPANET files, the model its layers come from

    @property
    def label(self) -> str:
        inner = self.source_layer or (self.layer.name if self.model else None)
        return f"{self.path.name}:{inner}" if inner else self.path.name


@dataclass
class Feature:
    number: int
    id_value: str | None  # the feature's id as the file gives it
    foreign: bool  # the id is the file's own, never a public id (EPANET ids, --id-field, FIDs)
    geometry: Any
    properties: dict[str, Any]
    source_id: str | None = None  # a `source_id` field, as exports write it


@dataclass
class Reading:
    """What one source holds: its features and which attributes they carry."""

    features: Iterator[Feature]
    carried: frozenset[str]  # attributes present in the source; updates change only these
    ignored: list[str]
    foreign_references: bool = False  # references are always ids in the file (EPANET)


def file_stem(path: Path) -> str:
    """`pipes` for pipes.geojson, pipes.zip and pipes.shp.zip."""
    return Path(path.name.removesuffix(".zip")).stem


def find_sources(
    path: Path,
    layer_name: str | None = None,
    fmt: str | None = None,
    namespace: str | None = None,
) -> list[Source]:
    """What to import from a file or a folder of files, in reference order.

    `layer_name` is the target layer (`pipes`), or `INNER=pipes` to read the layer INNER of a
    GeoPackage whose layers are named otherwise."""
    if not path.exists():
        raise GisError(f"{path} does not exist")
    if fmt is not None and fmt not in FORMATS:
        raise InvalidField("format", f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    inner, _, target = (layer_name or "").rpartition("=")
    if target and target not in LAYERS:
        raise InvalidField("layer", f"no layer named {target!r}; layers are: {', '.join(LAYERS)}")
    namespace = namespace or file_stem(path)
    suffixes = FORMATS[fmt] if fmt else tuple(s for group in FORMATS.values() for s in group)
    files = sorted(p for p in path.iterdir() if p.suffix in suffixes) if path.is_dir() else [path]
    sources = []
    for file in files:
        if fmt == "epanet" or (fmt is None and file.suffix == ".inp"):
            sources.extend(_epanet_sources(file, target or None, namespace))
        else:
            sources.extend(_gis_sources(file, inner, target, namespace, path.is_dir()))
    if not sources:
        raise GisError(
            f"nothing to import in {path}; files are named after layers: {', '.join(LAYERS)}"
        )
    return sorted(sources, key=lambda s: IMPORT_ORDER.index(s.layer.name))


def _gis_sources(
    file: Path, inner: str, target: str, namespace: str, in_folder: bool
) -> list[Source]:
    names = [str(name) for name, _ in _list_layers(file)]
    if inner:
        if inner not in names:
            raise InvalidField(
                "layer", f"{file.name} has no layer {inner!r}; it has: {', '.join(names)}"
            )
        return [Source(file, inner, LAYERS[target], namespace)]
    if len(names) > 1:
        found = [n for n in names if n in LAYERS and target in ("", n)]
        if target and not found:
            raise InvalidField(
                "layer",
                f"{file.name} has no layer {target!r}; name the one to read as"
                f" --layer NAME={target} (it has: {', '.join(names)})",
            )
        return [Source(file, name, LAYERS[name], namespace) for name in found]
    # One layer: named by --layer, by itself (as exports name them) or by the file.
    candidates = [target, *names, file_stem(file)]
    chosen = next((name for name in candidates if name in LAYERS), None)
    if chosen is None:
        if in_folder:
            return []
        raise InvalidField("layer", f"cannot tell the layer of {file.name}; name it with --layer")
    return [Source(file, None, LAYERS[chosen], namespace)]


def _list_layers(file: Path) -> Any:
    try:
        return pyogrio.list_layers(file)
    except pyogrio.errors.DataSourceError as exc:
        raise InvalidField("file", f"{file.name} cannot be read: {exc}") from None


def _epanet_sources(file: Path, layer_name: str | None, namespace: str) -> list[Source]:
    if layer_name is not None and layer_name not in epanet.ATTRIBUTES:
        raise InvalidField(
            "layer", f"EPANET files hold only these layers: {', '.join(epanet.ATTRIBUTES)}"
        )
    model = epanet.EpanetFile(file)
    return [
        Source(file, None, LAYERS[name], namespace, model)
        for name in epanet.ATTRIBUTES
        if layer_name in (None, name)
    ]


def check_mapping(sources: Sequence[Source], mapping: FieldMapping) -> None:
    """A rule naming a field that no file has is most likely a typing error: say so before
    anything is stored."""
    if mapping.empty:
        return
    if any(source.model for source in sources):
        raise InvalidField(
            "map", "field mappings apply to GIS files; EPANET files are read as they are"
        )
    names = {str(n) for source in sources for n in _info(source)["fields"]}
    wanted = [rule.source for rule in mapping.rules]
    if mapping.id_field:
        wanted.append(mapping.id_field)
    missing = [name for name in wanted if name not in names]
    if missing:
        field_name = "id_field" if missing == [mapping.id_field] else "map"
        raise InvalidField(
            field_name,
            f"no field {', '.join(missing)} in {', '.join(sorted({s.label for s in sources}))};"
            f" the fields are: {', '.join(sorted(names))}",
        )


def _info(source: Source) -> dict[str, Any]:
    try:
        info: dict[str, Any] = pyogrio.read_info(source.path, layer=source.source_layer)
    except pyogrio.errors.DataSourceError as exc:
        raise InvalidField("file", f"{source.label} cannot be read: {exc}") from None
    return info


def count_features(source: Source) -> int:
    if source.model is not None:
        return source.model.count(source.layer.name)
    return int(_info(source)["features"])


def _python(value: Any) -> Any:
    """GDAL hands back numpy values, NaN for an empty number and arrays for lists."""
    if isinstance(value, np.ndarray):
        return [_python(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _id_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def _defaults(layer: Layer) -> dict[str, Any]:
    """Column values for attributes a file does not have at all."""
    return {
        a.column: list(a.default) if isinstance(a.default, tuple) else a.default
        for a in layer.attributes
        if not a.read_only
    }


def _coerce(layer: Layer, name: str, value: Any) -> Any:
    """File types into attribute types where the meaning is plain: 0/1 for booleans, a JSON
    text or a GDAL list for a text list, a number for a reference id."""
    attribute = layer.attribute(name)
    if attribute is None:
        return value
    if value is None and attribute.default is not None:
        value = attribute.default
    if attribute.kind == "boolean" and isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if attribute.kind == "text_list":
        if isinstance(value, str) and value.startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        if isinstance(value, tuple | list):
            return [str(v) for v in value]
    if attribute.kind == "ref" and isinstance(value, int | float) and not isinstance(value, bool):
        return _id_text(value)
    return value


def read_source(source: Source, mapping: FieldMapping = NO_MAPPING) -> Reading:
    if source.model is not None:
        return _read_epanet(source)
    return _read_gis(source, mapping)


def _read_epanet(source: Source) -> Reading:
    assert source.model is not None
    elements = source.model.elements(source.layer.name)
    features = (
        Feature(number, element.id, True, element.geometry, element.properties)
        for number, element in enumerate(elements, start=1)
    )
    return Reading(features, epanet.ATTRIBUTES[source.layer.name], [], foreign_references=True)


def _read_gis(source: Source, mapping: FieldMapping) -> Reading:
    layer = source.layer
    meta, fids, geometries, columns = pyogrio.raw.read(
        source.path, layer=source.source_layer, datetime_as_string=True, return_fids=True
    )
    names = [str(n) for n in meta["fields"]]
    id_field = mapping.id_field or next((n for n in ID_FIELDS if n in names), None)
    if id_field is not None and id_field not in names:
        raise InvalidField("id_field", f"no field {id_field} in {source.label}")
    targets: dict[str, str] = {}  # file field -> attribute
    ignored = []
    known = {id_field, SOURCE_ID_FIELD, *ID_FIELDS, *COMMON_PROPERTIES}
    for name in names:
        attribute = layer.attribute(mapping.target(name))
        if attribute is not None and not attribute.read_only:
            targets[name] = attribute.name
        elif name not in known and attribute is None:
            ignored.append(name)
    by_name = dict(zip(names, columns, strict=True))

    def features() -> Iterator[Feature]:
        for index, wkb in enumerate(geometries):
            properties = {
                target: _coerce(layer, target, mapping.convert(name, _python(by_name[name][index])))
                for name, target in targets.items()
            }
            id_value = _id_text(_python(by_name[id_field][index])) if id_field else None
            # Without an id field, or with an empty id, the feature's FID identifies it.
            foreign = mapping.id_field is not None or id_value is None
            if id_value is None and not mapping.id_field:
                id_value = _id_text(_python(fids[index]))
            source_id = (
                _id_text(_python(by_name[SOURCE_ID_FIELD][index]))
                if SOURCE_ID_FIELD in by_name
                else None
            )
            geometry = shapely.from_wkb(wkb) if wkb is not None else None
            yield Feature(index + 1, id_value, foreign, geometry, properties, source_id)

    return Reading(features(), frozenset(targets.values()), ignored)


def file_crs(source: Source, override: Crs | None) -> Crs:
    if override is not None:
        return override
    if source.model is not None:
        raise InvalidField(
            "crs", f"EPANET files carry no CRS; give that of {source.path.name} with --crs EPSG:N"
        )
    found = _info(source).get("crs")
    if not found:
        raise InvalidField("crs", f"{source.label} names no CRS; give it with --crs EPSG:N")
    return parse_crs(found, "crs")


def _public_id_pattern(layer: Layer) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(layer.model.id_prefix)}-\d+$")


# Another layer's public id in a file is a mistake (a file named after the wrong layer), not a
# foreign id; SC- and PM- come before S- and P- so the longest prefix wins.
_PREFIXES = sorted((layer.model.id_prefix for layer in LAYERS.values()), key=len, reverse=True)
_ANY_PUBLIC_ID = re.compile(r"^(" + "|".join(map(re.escape, _PREFIXES)) + r")-\d+$")
_LAYER_BY_PREFIX = {layer.model.id_prefix: layer.name for layer in LAYERS.values()}


@dataclass(frozen=True)
class Identity:
    public_id: str | None
    source_id: str | None


def identify(layer: Layer, feature: Feature, namespace: str) -> Identity:
    """How the feature is found again; InvalidField for an id that belongs to another layer."""
    value = feature.id_value
    if value is None:
        return Identity(None, feature.source_id)
    if not feature.foreign:
        if _public_id_pattern(layer).match(value):
            return Identity(value, feature.source_id)
        other = _ANY_PUBLIC_ID.match(value)
        if other:
            raise InvalidField(
                "id",
                f"{value!r} is a {_LAYER_BY_PREFIX[other.group(1)]} id; {layer.name} ids look"
                f" like {layer.model.id_prefix}-000123",
            )
    return Identity(None, feature.source_id or f"{namespace}:{value}")


def _validate(layer: Layer, feature: Feature, crs: Crs) -> dict[str, Any]:
    if feature.geometry is None:
        raise InvalidField("geometry", "is missing")
    clean = parse_properties(layer, feature.properties, partial=False)
    clean["geom"] = check_geometry(layer, feature.geometry, crs, "geometry")
    return clean


def _upsert(layer: Layer, key: str, carried: frozenset[str]) -> Any:
    table = layer.table
    statement = insert(table)
    columns = [a.column for a in layer.attributes if a.name in carried] + ["geom"]
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={c: statement.excluded[c] for c in columns}
        | {
            # An id the file does not know leaves the one stored before.
            "source_id": sa.func.coalesce(statement.excluded.source_id, table.c.source_id),
            "updated_at": sa.func.now(),
        },
    )
    # xmax is 0 for a freshly inserted row and set for one that was updated.
    return statement.returning(sa.literal_column("(xmax = 0)").label("inserted"))


@dataclass
class _Pending:
    feature: Feature
    identity: Identity
    clean: dict[str, Any]


class _SourceImport:
    """The state of importing one source: batches, the ids seen, the summary."""

    def __init__(self, session: Session, source: Source, reading: Reading) -> None:
        self.session = session
        self.source = source
        self.layer = source.layer
        self.reading = reading
        self.summary = LayerSummary(source.layer.name, source.label)
        self.summary.ignored_fields = list(reading.ignored)
        self.seen: dict[str, int] = {}  # public or source id -> number of the feature
        self.statements = {
            key: _upsert(self.layer, key, reading.carried) for key in ("public_id", "source_id")
        }

    def reject(self, feature: Feature, exc: InvalidField) -> None:
        self.summary.rejected.append(
            Rejection(feature.number, feature.id_value, exc.field, exc.detail)
        )

    def check_once(self, identity: Identity, feature: Feature) -> None:
        for key in (identity.public_id, identity.source_id):
            if key is None:
                continue
            if key in self.seen:
                raise InvalidField("id", f"{key!r} was already used by feature {self.seen[key]}")
            self.seen[key] = feature.number

    def store(self, batch: list[_Pending]) -> None:
        batch = self._resolve_foreign_references(batch)
        references = resolve_references(self.session, self.layer, [p.clean for p in batch])
        known = self._public_ids_of([p.identity.source_id for p in batch])
        groups: dict[str, list[tuple[Feature, dict[str, Any]]]] = {
            "public_id": [],
            "source_id": [],
        }
        for pending in batch:
            clean = dict(pending.clean)
            geometry = clean.pop("geom")
            try:
                values = column_values(self.layer, clean, references)
            except InvalidField as exc:
                self.reject(pending.feature, exc)
                continue
            values = _defaults(self.layer) | values
            values["geom"] = geometry_value(geometry)
            values["source_id"] = pending.identity.source_id
            public_id = pending.identity.public_id or known.get(pending.identity.source_id or "")
            if public_id is not None:
                values["public_id"] = public_id
            groups["public_id" if public_id else "source_id"].append((pending.feature, values))
        for key, group in groups.items():
            if group:
                self._write(key, group)
                if key == "public_id":
                    # Before any new feature takes the next number, skip the numbers used.
                    advance_public_ids(self.session, self.layer)

    def _public_ids_of(self, source_ids: list[str | None]) -> dict[str, str]:
        wanted = sorted({s for s in source_ids if s is not None})
        if not wanted:
            return {}
        table = self.layer.table
        rows = self.session.execute(
            sa.select(table.c.source_id, table.c.public_id).where(table.c.source_id.in_(wanted))
        )
        return {str(row[0]): str(row[1]) for row in rows}

    def _resolve_foreign_references(self, batch: list[_Pending]) -> list[_Pending]:
        """Replace references given as ids in the file by the public ids of those features."""
        refs = [a for a in self.layer.attributes if a.kind == "ref"]
        wanted: dict[str, set[str]] = {}
        for pending in batch:
            for attribute in refs:
                value = pending.clean.get(attribute.name)
                if value is not None and self._foreign_reference(attribute.ref_layer, value):
                    wanted.setdefault(attribute.ref_layer or "", set()).add(self._qualify(value))
        found: dict[str, dict[str, str]] = {}
        for layer_name, source_ids in wanted.items():
            table = LAYERS[layer_name].table
            rows = self.session.execute(
                sa.select(table.c.source_id, table.c.public_id).where(
                    table.c.source_id.in_(sorted(source_ids))
                )
            )
            found[layer_name] = {str(row[0]): str(row[1]) for row in rows}
        kept = []
        for pending in batch:
            try:
                for attribute in refs:
                    value = pending.clean.get(attribute.name)
                    if value is None or not self._foreign_reference(attribute.ref_layer, value):
                        continue
                    target = attribute.ref_layer or ""
                    public_id = found.get(target, {}).get(self._qualify(value))
                    if public_id is None:
                        raise InvalidField(
                            f"properties.{attribute.name}",
                            f"no {target} asset with id {value!r} (source id"
                            f" {self._qualify(value)!r})",
                        )
                    pending.clean[attribute.name] = public_id
                kept.append(pending)
            except InvalidField as exc:
                self.reject(pending.feature, exc)
        return kept

    def _foreign_reference(self, layer_name: str | None, value: str) -> bool:
        if self.reading.foreign_references:
            return True
        return not _public_id_pattern(LAYERS[layer_name or ""]).match(value)

    def _qualify(self, value: str) -> str:
        return f"{self.source.namespace}:{value}"

    def _write(self, key: str, group: list[tuple[Feature, dict[str, Any]]]) -> None:
        statement = self.statements[key]
        session = self.session
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
                    self.summary.rejected.append(
                        Rejection(feature.number, feature.id_value, "feature", reason)
                    )
        self.summary.inserted += sum(1 for inserted in results if inserted)
        self.summary.updated += sum(1 for inserted in results if not inserted)


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
    session: Session,
    source: Source,
    crs: Crs | None = None,
    progress: Progress | None = None,
    mapping: FieldMapping = NO_MAPPING,
) -> LayerSummary:
    source_crs = file_crs(source, crs)
    reading = read_source(source, mapping)
    state = _SourceImport(session, source, reading)
    layer = source.layer
    batch: list[_Pending] = []
    for feature in reading.features:
        state.summary.read += 1
        try:
            identity = identify(layer, feature, source.namespace)
            state.check_once(identity, feature)
            batch.append(_Pending(feature, identity, _validate(layer, feature, source_crs)))
        except InvalidField as exc:
            state.reject(feature, exc)
        if len(batch) >= BATCH_SIZE:
            state.store(batch)
            batch = []
        if progress:
            progress(1)
    if batch:
        state.store(batch)
    session.commit()
    state.summary.rejected.sort(key=lambda r: r.number)
    return state.summary


def import_path(
    session: Session,
    sources: Sequence[Source],
    crs: Crs | None = None,
    progress: Progress | None = None,
    mapping: FieldMapping = NO_MAPPING,
) -> list[LayerSummary]:
    check_mapping(sources, mapping)
    return [import_source(session, source, crs, progress, mapping) for source in sources]
