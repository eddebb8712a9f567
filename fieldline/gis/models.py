"""The water network as tables: nodes and pipes form the graph, point assets hang off them.

Every asset has a stable public id (`P-000123`) that users, files and other systems use; the
bigint primary key stays internal. Enumerations are kept as text with CHECK constraints, which
are simpler to migrate than PostgreSQL ENUM types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

SRID = 4326

NODE_KINDS = ("junction", "tank", "reservoir")
PIPE_MATERIALS = ("PVC", "PE", "ductile_iron", "cast_iron", "steel", "asbestos_cement")
PIPE_STATUSES = ("in_service", "abandoned", "planned")
VALVE_KINDS = ("gate", "butterfly", "check", "prv", "air_release")
VALVE_POSITIONS = ("open", "closed")
HYDRANT_CONDITIONS = ("good", "fair", "poor", "out_of_service")
STATION_KINDS = ("pressure", "flow", "quality")


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def choice_check(column: str, choices: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{c}'" for c in choices)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_choice")


def _positive(column: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} > 0", name=f"{column}_positive")


class Asset(Base):
    """Columns every layer shares. `id_prefix` makes the public ids of a layer."""

    __abstract__ = True
    id_prefix: str = ""
    geometry_type: str = "POINT"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)

    @declared_attr
    def public_id(cls) -> Mapped[str]:
        return mapped_column(
            sa.Text,
            nullable=False,
            unique=True,
            server_default=sa.text(
                f"fieldline_public_id('{cls.id_prefix}', '{cls.__tablename__}_public_seq')"
            ),
        )

    @declared_attr
    def geom(cls) -> Mapped[Any]:
        return mapped_column(
            Geometry(cls.geometry_type, srid=SRID, spatial_index=True), nullable=False
        )

    # The asset's id in the file or system it was imported from (`Net3:J-17`), so that importing
    # the same file again updates it in place; NULL for assets created in Fieldline.
    source_id: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _asset_ref(table: str) -> Mapped[int | None]:
    return mapped_column(sa.BigInteger, sa.ForeignKey(f"{table}.id"), nullable=True, index=True)


class Node(Asset):
    __tablename__ = "nodes"
    id_prefix = "N"
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="junction")
    elevation_m: Mapped[float | None] = mapped_column(sa.Float)
    pressure_zone: Mapped[str | None] = mapped_column(sa.Text, index=True)
    district: Mapped[str | None] = mapped_column(sa.Text, index=True)
    __table_args__ = (choice_check("kind", NODE_KINDS),)


class Pipe(Asset):
    __tablename__ = "pipes"
    id_prefix = "P"
    geometry_type = "LINESTRING"
    from_node_id: Mapped[int | None] = _asset_ref("nodes")
    to_node_id: Mapped[int | None] = _asset_ref("nodes")
    diameter_mm: Mapped[float | None] = mapped_column(sa.Float, index=True)
    material: Mapped[str | None] = mapped_column(sa.Text, index=True)
    install_year: Mapped[int | None] = mapped_column(sa.SmallInteger, index=True)
    depth_m: Mapped[float | None] = mapped_column(sa.Float)
    # Geodesic length on the WGS 84 ellipsoid, kept by the database so it never disagrees
    # with the geometry.
    length_m: Mapped[float] = mapped_column(
        sa.Float, sa.Computed("ST_Length(geom::geography, true)", persisted=True)
    )
    status: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="in_service")
    pressure_zone: Mapped[str | None] = mapped_column(sa.Text, index=True)
    district: Mapped[str | None] = mapped_column(sa.Text, index=True)
    __table_args__ = (
        choice_check("material", PIPE_MATERIALS),
        choice_check("status", PIPE_STATUSES),
        _positive("diameter_mm"),
        _positive("depth_m"),
    )


class Valve(Asset):
    __tablename__ = "valves"
    id_prefix = "V"
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="gate")
    diameter_mm: Mapped[float | None] = mapped_column(sa.Float)
    normal_position: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="open")
    operable: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.true())
    pipe_id: Mapped[int | None] = _asset_ref("pipes")
    node_id: Mapped[int | None] = _asset_ref("nodes")
    __table_args__ = (
        choice_check("kind", VALVE_KINDS),
        choice_check("normal_position", VALVE_POSITIONS),
        _positive("diameter_mm"),
    )


class Hydrant(Asset):
    __tablename__ = "hydrants"
    id_prefix = "H"
    condition: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="good")
    last_inspected_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    pipe_id: Mapped[int | None] = _asset_ref("pipes")
    __table_args__ = (choice_check("condition", HYDRANT_CONDITIONS),)


class Meter(Asset):
    __tablename__ = "meters"
    id_prefix = "M"
    serial: Mapped[str] = mapped_column(sa.Text, nullable=False, unique=True)
    customer_account: Mapped[str | None] = mapped_column(sa.Text, index=True)
    service_address: Mapped[str | None] = mapped_column(sa.Text)
    size_mm: Mapped[float | None] = mapped_column(sa.Float)
    pipe_id: Mapped[int | None] = _asset_ref("pipes")
    __table_args__ = (_positive("size_mm"),)


class ServiceConnection(Asset):
    __tablename__ = "service_connections"
    id_prefix = "SC"
    geometry_type = "LINESTRING"
    meter_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("meters.id", ondelete="CASCADE"), index=True
    )
    pipe_id: Mapped[int | None] = _asset_ref("pipes")


class Station(Asset):
    __tablename__ = "stations"
    id_prefix = "S"
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    metrics: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), nullable=False, server_default="{}")
    pipe_id: Mapped[int | None] = _asset_ref("pipes")
    node_id: Mapped[int | None] = _asset_ref("nodes")
    __table_args__ = (choice_check("kind", STATION_KINDS),)


class Marker(Asset):
    __tablename__ = "markers"
    id_prefix = "PM"
    label: Mapped[str | None] = mapped_column(sa.Text)
    pipe_id: Mapped[int | None] = _asset_ref("pipes")


class Road(Asset):
    """The drivable street network crews are routed on; `source`/`target` number its nodes."""

    __tablename__ = "roads"
    id_prefix = "R"
    geometry_type = "LINESTRING"
    osm_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    name: Mapped[str | None] = mapped_column(sa.Text)
    highway: Mapped[str] = mapped_column(sa.Text, nullable=False)
    oneway: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.false())
    maxspeed_kph: Mapped[float] = mapped_column(sa.Float, nullable=False)
    source: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, index=True)
    target: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, index=True)
    length_m: Mapped[float] = mapped_column(
        sa.Float, sa.Computed("ST_Length(geom::geography, true)", persisted=True)
    )
    __table_args__ = (_positive("maxspeed_kph"),)


class AssetEdit(Base):
    """One changed attribute of one asset: who changed it, when, from what to what."""

    __tablename__ = "asset_edits"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    layer: Mapped[str] = mapped_column(sa.Text, nullable=False)
    asset_id: Mapped[str] = mapped_column(sa.Text, nullable=False)
    action: Mapped[str] = mapped_column(sa.Text, nullable=False)
    field: Mapped[str | None] = mapped_column(sa.Text)
    old_value: Mapped[Any | None] = mapped_column(JSONB)
    new_value: Mapped[Any | None] = mapped_column(JSONB)
    actor: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="api")
    at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )
    __table_args__ = (
        sa.Index("ix_asset_edits_layer_asset", "layer", "asset_id", "at"),
        choice_check("action", ("create", "update", "delete")),
    )


ASSET_MODELS: tuple[type[Asset], ...] = (
    Node,
    Pipe,
    Valve,
    Hydrant,
    Meter,
    ServiceConnection,
    Station,
    Marker,
    Road,
)


def _add_geography_indexes() -> None:
    # Distances and radii are asked in metres, so `near` and `nearest` run on geography;
    # an expression index lets those queries use an index instead of scanning the layer.
    from geoalchemy2 import Geography

    for model in ASSET_MODELS:
        table: sa.Table = model.__table__  # type: ignore[assignment]
        sa.Index(
            f"ix_{table.name}_geog",
            sa.cast(table.c.geom, Geography(srid=SRID)),
            postgresql_using="gist",
        )
        sa.Sequence(f"{table.name}_public_seq", metadata=Base.metadata)


_add_geography_indexes()
