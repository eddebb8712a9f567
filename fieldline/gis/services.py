"""Creating, changing and deleting assets, with the audit history of every edit.

Callers pass validated input (see validation.py) and a Session; each function does its work
inside a savepoint, so a refused write leaves the caller's transaction usable and nothing
half-written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldline.gis.crs import Crs
from fieldline.gis.errors import Conflict, InvalidField, NotFound
from fieldline.gis.layers import Layer, get_layer
from fieldline.gis.models import SRID, AssetEdit
from fieldline.gis.queries import (
    FeatureQuery,
    feature_properties,
    select_documents,
    select_features,
)


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def resolve_references(
    session: Session, layer: Layer, rows: Iterable[Mapping[str, Any]]
) -> dict[str, dict[str, int]]:
    """Internal ids of every public id the rows refer to, by attribute name."""
    wanted: dict[str, set[str]] = {}
    for row in rows:
        for attribute in layer.attributes:
            if attribute.kind == "ref" and row.get(attribute.name) is not None:
                wanted.setdefault(attribute.name, set()).add(row[attribute.name])
    found: dict[str, dict[str, int]] = {}
    for name, public_ids in wanted.items():
        target = get_layer(layer.attribute_index[name].ref_layer or "").table
        result = session.execute(
            sa.select(target.c.public_id, target.c.id).where(
                target.c.public_id.in_(sorted(public_ids))
            )
        )
        found[name] = {str(row[0]): int(row[1]) for row in result}
    return found


def column_values(
    layer: Layer, properties: Mapping[str, Any], references: Mapping[str, Mapping[str, int]]
) -> dict[str, Any]:
    """Map public attribute names to columns; an unknown reference is an InvalidField."""
    values: dict[str, Any] = {}
    for name, value in properties.items():
        attribute = layer.attribute_index[name]
        if attribute.kind == "ref" and value is not None:
            try:
                value = references[name][value]
            except KeyError:
                raise InvalidField(
                    f"properties.{name}", f"no {attribute.ref_layer} asset with id {value!r}"
                ) from None
        values[attribute.column] = value
    return values


def geometry_value(geometry: BaseGeometry) -> Any:
    return from_shape(geometry, srid=SRID)


def _integrity_detail(exc: IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    detail = getattr(diag, "message_detail", None) or str(exc.orig).splitlines()[0]
    return f"{constraint}: {detail}" if constraint else detail


def read_feature(
    session: Session, layer: Layer, public_id: str, crs: Crs | None = None
) -> Mapping[Any, Any]:
    query = FeatureQuery(public_id=public_id)
    if crs is not None:
        query.out_crs = crs
    row = session.execute(*select_features(layer, query)).mappings().first()
    if row is None:
        raise NotFound(f"no {layer.name} asset with id {public_id!r}")
    return row


def read_document(session: Session, layer: Layer, public_id: str, crs: Crs | None = None) -> str:
    """One asset as a GeoJSON Feature text."""
    query = FeatureQuery(public_id=public_id)
    if crs is not None:
        query.out_crs = crs
    row = session.execute(*select_documents(layer, query)).one_or_none()
    if row is None:
        raise NotFound(f"no {layer.name} asset with id {public_id!r}")
    document: str = row._feature
    return document


def create_asset(
    session: Session,
    layer: Layer,
    geometry: BaseGeometry,
    properties: Mapping[str, Any],
    actor: str,
    source: str = "api",
) -> str:
    references = resolve_references(session, layer, [properties])
    values = column_values(layer, properties, references)
    values["geom"] = geometry_value(geometry)
    table = layer.table
    try:
        with session.begin_nested():
            public_id: str = session.execute(
                sa.insert(table).values(values).returning(table.c.public_id)
            ).scalar_one()
            session.add(
                AssetEdit(
                    layer=layer.name,
                    asset_id=public_id,
                    action="create",
                    actor=actor,
                    source=source,
                    new_value={k: json_value(v) for k, v in properties.items()}
                    | {"geometry": shapely.geometry.mapping(geometry)},
                )
            )
    except IntegrityError as exc:
        raise Conflict(f"not stored: {_integrity_detail(exc)}") from None
    return public_id


def update_asset(
    session: Session,
    layer: Layer,
    public_id: str,
    geometry: BaseGeometry | None,
    properties: Mapping[str, Any],
    actor: str,
    source: str = "api",
) -> list[str]:
    """Apply the changed values only; returns the names of the fields that changed."""
    table = layer.table
    current = read_feature(session, layer, public_id)
    changed = {
        name: value
        for name, value in properties.items()
        if json_value(value) != json_value(current[name])
    }
    edits = [
        AssetEdit(
            layer=layer.name,
            asset_id=public_id,
            action="update",
            field=name,
            actor=actor,
            source=source,
            old_value=json_value(current[name]),
            new_value=json_value(value),
        )
        for name, value in changed.items()
    ]
    values = column_values(layer, changed, resolve_references(session, layer, [changed]))
    if geometry is not None:
        old_geometry = json.loads(current["_geometry"])
        if not shapely.geometry.shape(old_geometry).equals_exact(geometry, 1e-9):
            values["geom"] = geometry_value(geometry)
            edits.append(
                AssetEdit(
                    layer=layer.name,
                    asset_id=public_id,
                    action="update",
                    field="geometry",
                    actor=actor,
                    source=source,
                    old_value=old_geometry,
                    new_value=shapely.geometry.mapping(geometry),
                )
            )
    if not edits:
        return []
    try:
        with session.begin_nested():
            session.execute(
                sa.update(table)
                .where(table.c.public_id == public_id)
                .values(values | {"updated_at": sa.func.now()})
            )
            session.add_all(edits)
    except IntegrityError as exc:
        raise Conflict(f"not changed: {_integrity_detail(exc)}") from None
    return [edit.field or "" for edit in edits]


def replace_asset(
    session: Session,
    layer: Layer,
    public_id: str,
    geometry: BaseGeometry,
    properties: Mapping[str, Any],
    actor: str,
    source: str = "api",
) -> list[str]:
    """Replace every attribute of an asset: those `properties` leave out take their default
    (`Attribute.default`, as an import stores for an empty value) or become null. Only what
    differs is written and recorded, as in update_asset."""
    whole = {
        a.name: list(a.default) if isinstance(a.default, tuple) else a.default
        for a in layer.attributes
        if not a.read_only
    } | dict(properties)
    return update_asset(session, layer, public_id, geometry, whole, actor, source)


def delete_asset(
    session: Session, layer: Layer, public_id: str, actor: str, source: str = "api"
) -> None:
    current = read_feature(session, layer, public_id)
    table = layer.table
    try:
        with session.begin_nested():
            session.execute(sa.delete(table).where(table.c.public_id == public_id))
            session.add(
                AssetEdit(
                    layer=layer.name,
                    asset_id=public_id,
                    action="delete",
                    actor=actor,
                    source=source,
                    old_value={
                        k: json_value(v) for k, v in feature_properties(layer, current).items()
                    }
                    | {"geometry": json.loads(current["_geometry"])},
                )
            )
    except IntegrityError:
        raise Conflict(
            f"{public_id} is still referred to by other assets; reassign or delete those first"
        ) from None


def asset_history(session: Session, layer: Layer, public_id: str) -> list[AssetEdit]:
    edits = session.scalars(
        sa.select(AssetEdit)
        .where(AssetEdit.layer == layer.name, AssetEdit.asset_id == public_id)
        .order_by(AssetEdit.at, AssetEdit.id)
    ).all()
    if not edits:
        read_feature(session, layer, public_id)  # a NotFound for an unknown asset
    return list(edits)
