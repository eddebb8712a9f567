"""asset registry

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:08:33.388059
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


ASSET_TABLES = (
    "nodes",
    "pipes",
    "valves",
    "hydrants",
    "meters",
    "service_connections",
    "stations",
    "markers",
    "roads",
)


PUBLIC_ID_FUNCTION = """
CREATE FUNCTION fieldline_public_id(prefix text, sequence regclass) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT prefix || '-' || lpad(n::text, greatest(6, length(n::text)), '0')
    FROM nextval(sequence) AS n
$$
"""


def upgrade() -> None:
    # Public ids (`P-000123`) come from one sequence per layer; the number is zero-padded to
    # six digits and grows beyond them rather than being cut.
    for table in ASSET_TABLES:
        op.execute(f"CREATE SEQUENCE {table}_public_seq")
    op.execute(PUBLIC_ID_FUNCTION)
    op.create_table(
        "asset_edits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("asset_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("old_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), server_default="api", nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "action IN ('create', 'update', 'delete')", name=op.f("ck_asset_edits_action_choice")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_edits")),
    )
    op.create_index(
        "ix_asset_edits_layer_asset", "asset_edits", ["layer", "asset_id", "at"], unique=False
    )
    op.create_table(
        "nodes",
        sa.Column("kind", sa.Text(), server_default="junction", nullable=False),
        sa.Column("elevation_m", sa.Float(), nullable=True),
        sa.Column("pressure_zone", sa.Text(), nullable=True),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('N', 'nodes_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('junction', 'tank', 'reservoir')", name=op.f("ck_nodes_kind_choice")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("public_id", name=op.f("uq_nodes_public_id")),
    )
    op.create_index(op.f("ix_nodes_district"), "nodes", ["district"], unique=False)
    op.create_index(
        "ix_nodes_geog",
        "nodes",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_nodes_pressure_zone"), "nodes", ["pressure_zone"], unique=False)
    op.create_table(
        "roads",
        sa.Column("osm_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("highway", sa.Text(), nullable=False),
        sa.Column("oneway", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("maxspeed_kph", sa.Float(), nullable=False),
        sa.Column("source", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.BigInteger(), nullable=False),
        sa.Column(
            "length_m",
            sa.Float(),
            sa.Computed("ST_Length(geom::geography, true)", persisted=True),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('R', 'roads_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("maxspeed_kph > 0", name=op.f("ck_roads_maxspeed_kph_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roads")),
        sa.UniqueConstraint("public_id", name=op.f("uq_roads_public_id")),
    )
    op.create_index(
        "ix_roads_geog",
        "roads",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_roads_source"), "roads", ["source"], unique=False)
    op.create_index(op.f("ix_roads_target"), "roads", ["target"], unique=False)
    op.create_table(
        "pipes",
        sa.Column("from_node_id", sa.BigInteger(), nullable=True),
        sa.Column("to_node_id", sa.BigInteger(), nullable=True),
        sa.Column("diameter_mm", sa.Float(), nullable=True),
        sa.Column("material", sa.Text(), nullable=True),
        sa.Column("install_year", sa.SmallInteger(), nullable=True),
        sa.Column("depth_m", sa.Float(), nullable=True),
        sa.Column(
            "length_m",
            sa.Float(),
            sa.Computed("ST_Length(geom::geography, true)", persisted=True),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="in_service", nullable=False),
        sa.Column("pressure_zone", sa.Text(), nullable=True),
        sa.Column("district", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('P', 'pipes_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "material IN ('PVC', 'PE', 'ductile_iron', 'cast_iron', 'steel', 'asbestos_cement')",
            name=op.f("ck_pipes_material_choice"),
        ),
        sa.CheckConstraint(
            "status IN ('in_service', 'abandoned', 'planned')", name=op.f("ck_pipes_status_choice")
        ),
        sa.CheckConstraint("depth_m > 0", name=op.f("ck_pipes_depth_m_positive")),
        sa.CheckConstraint("diameter_mm > 0", name=op.f("ck_pipes_diameter_mm_positive")),
        sa.ForeignKeyConstraint(["from_node_id"], ["nodes.id"], name=op.f("fk_pipes_from_node_id")),
        sa.ForeignKeyConstraint(["to_node_id"], ["nodes.id"], name=op.f("fk_pipes_to_node_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipes")),
        sa.UniqueConstraint("public_id", name=op.f("uq_pipes_public_id")),
    )
    op.create_index(op.f("ix_pipes_diameter_mm"), "pipes", ["diameter_mm"], unique=False)
    op.create_index(op.f("ix_pipes_district"), "pipes", ["district"], unique=False)
    op.create_index(op.f("ix_pipes_from_node_id"), "pipes", ["from_node_id"], unique=False)
    op.create_index(
        "ix_pipes_geog",
        "pipes",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_pipes_install_year"), "pipes", ["install_year"], unique=False)
    op.create_index(op.f("ix_pipes_material"), "pipes", ["material"], unique=False)
    op.create_index(op.f("ix_pipes_pressure_zone"), "pipes", ["pressure_zone"], unique=False)
    op.create_index(op.f("ix_pipes_to_node_id"), "pipes", ["to_node_id"], unique=False)
    op.create_table(
        "hydrants",
        sa.Column("condition", sa.Text(), server_default="good", nullable=False),
        sa.Column("last_inspected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pipe_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('H', 'hydrants_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "condition IN ('good', 'fair', 'poor', 'out_of_service')",
            name=op.f("ck_hydrants_condition_choice"),
        ),
        sa.ForeignKeyConstraint(["pipe_id"], ["pipes.id"], name=op.f("fk_hydrants_pipe_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hydrants")),
        sa.UniqueConstraint("public_id", name=op.f("uq_hydrants_public_id")),
    )
    op.create_index(
        "ix_hydrants_geog",
        "hydrants",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_hydrants_pipe_id"), "hydrants", ["pipe_id"], unique=False)
    op.create_table(
        "markers",
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("pipe_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('PM', 'markers_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["pipe_id"], ["pipes.id"], name=op.f("fk_markers_pipe_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_markers")),
        sa.UniqueConstraint("public_id", name=op.f("uq_markers_public_id")),
    )
    op.create_index(
        "ix_markers_geog",
        "markers",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_markers_pipe_id"), "markers", ["pipe_id"], unique=False)
    op.create_table(
        "meters",
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("customer_account", sa.Text(), nullable=True),
        sa.Column("service_address", sa.Text(), nullable=True),
        sa.Column("size_mm", sa.Float(), nullable=True),
        sa.Column("pipe_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('M', 'meters_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("size_mm > 0", name=op.f("ck_meters_size_mm_positive")),
        sa.ForeignKeyConstraint(["pipe_id"], ["pipes.id"], name=op.f("fk_meters_pipe_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meters")),
        sa.UniqueConstraint("public_id", name=op.f("uq_meters_public_id")),
        sa.UniqueConstraint("serial", name=op.f("uq_meters_serial")),
    )
    op.create_index(
        op.f("ix_meters_customer_account"), "meters", ["customer_account"], unique=False
    )
    op.create_index(
        "ix_meters_geog",
        "meters",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_meters_pipe_id"), "meters", ["pipe_id"], unique=False)
    op.create_table(
        "stations",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("metrics", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("pipe_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('S', 'stations_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('pressure', 'flow', 'quality')", name=op.f("ck_stations_kind_choice")
        ),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_stations_node_id")),
        sa.ForeignKeyConstraint(["pipe_id"], ["pipes.id"], name=op.f("fk_stations_pipe_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("public_id", name=op.f("uq_stations_public_id")),
    )
    op.create_index(
        "ix_stations_geog",
        "stations",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_stations_node_id"), "stations", ["node_id"], unique=False)
    op.create_index(op.f("ix_stations_pipe_id"), "stations", ["pipe_id"], unique=False)
    op.create_table(
        "valves",
        sa.Column("kind", sa.Text(), server_default="gate", nullable=False),
        sa.Column("diameter_mm", sa.Float(), nullable=True),
        sa.Column("normal_position", sa.Text(), server_default="open", nullable=False),
        sa.Column("operable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("pipe_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('V', 'valves_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('gate', 'butterfly', 'check', 'prv', 'air_release')",
            name=op.f("ck_valves_kind_choice"),
        ),
        sa.CheckConstraint(
            "normal_position IN ('open', 'closed')", name=op.f("ck_valves_normal_position_choice")
        ),
        sa.CheckConstraint("diameter_mm > 0", name=op.f("ck_valves_diameter_mm_positive")),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_valves_node_id")),
        sa.ForeignKeyConstraint(["pipe_id"], ["pipes.id"], name=op.f("fk_valves_pipe_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_valves")),
        sa.UniqueConstraint("public_id", name=op.f("uq_valves_public_id")),
    )
    op.create_index(
        "ix_valves_geog",
        "valves",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_valves_node_id"), "valves", ["node_id"], unique=False)
    op.create_index(op.f("ix_valves_pipe_id"), "valves", ["pipe_id"], unique=False)
    op.create_table(
        "service_connections",
        sa.Column("meter_id", sa.BigInteger(), nullable=True),
        sa.Column("pipe_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('SC', 'service_connections_public_seq')"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"],
            ["meters.id"],
            name=op.f("fk_service_connections_meter_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipe_id"], ["pipes.id"], name=op.f("fk_service_connections_pipe_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_connections")),
        sa.UniqueConstraint("public_id", name=op.f("uq_service_connections_public_id")),
    )
    op.create_index(
        "ix_service_connections_geog",
        "service_connections",
        [sa.literal_column("CAST(geom AS geography(GEOMETRY,4326))")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(
        op.f("ix_service_connections_meter_id"), "service_connections", ["meter_id"], unique=False
    )
    op.create_index(
        op.f("ix_service_connections_pipe_id"), "service_connections", ["pipe_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_service_connections_pipe_id"), table_name="service_connections")
    op.drop_index(op.f("ix_service_connections_meter_id"), table_name="service_connections")
    op.drop_index(
        "ix_service_connections_geog", table_name="service_connections", postgresql_using="gist"
    )
    op.drop_table("service_connections")
    op.drop_index(op.f("ix_valves_pipe_id"), table_name="valves")
    op.drop_index(op.f("ix_valves_node_id"), table_name="valves")
    op.drop_index("ix_valves_geog", table_name="valves", postgresql_using="gist")
    op.drop_table("valves")
    op.drop_index(op.f("ix_stations_pipe_id"), table_name="stations")
    op.drop_index(op.f("ix_stations_node_id"), table_name="stations")
    op.drop_index("ix_stations_geog", table_name="stations", postgresql_using="gist")
    op.drop_table("stations")
    op.drop_index(op.f("ix_meters_pipe_id"), table_name="meters")
    op.drop_index("ix_meters_geog", table_name="meters", postgresql_using="gist")
    op.drop_index(op.f("ix_meters_customer_account"), table_name="meters")
    op.drop_table("meters")
    op.drop_index(op.f("ix_markers_pipe_id"), table_name="markers")
    op.drop_index("ix_markers_geog", table_name="markers", postgresql_using="gist")
    op.drop_table("markers")
    op.drop_index(op.f("ix_hydrants_pipe_id"), table_name="hydrants")
    op.drop_index("ix_hydrants_geog", table_name="hydrants", postgresql_using="gist")
    op.drop_table("hydrants")
    op.drop_index(op.f("ix_pipes_to_node_id"), table_name="pipes")
    op.drop_index(op.f("ix_pipes_pressure_zone"), table_name="pipes")
    op.drop_index(op.f("ix_pipes_material"), table_name="pipes")
    op.drop_index(op.f("ix_pipes_install_year"), table_name="pipes")
    op.drop_index("ix_pipes_geog", table_name="pipes", postgresql_using="gist")
    op.drop_index(op.f("ix_pipes_from_node_id"), table_name="pipes")
    op.drop_index(op.f("ix_pipes_district"), table_name="pipes")
    op.drop_index(op.f("ix_pipes_diameter_mm"), table_name="pipes")
    op.drop_table("pipes")
    op.drop_index(op.f("ix_roads_target"), table_name="roads")
    op.drop_index(op.f("ix_roads_source"), table_name="roads")
    op.drop_index("ix_roads_geog", table_name="roads", postgresql_using="gist")
    op.drop_table("roads")
    op.drop_index(op.f("ix_nodes_pressure_zone"), table_name="nodes")
    op.drop_index("ix_nodes_geog", table_name="nodes", postgresql_using="gist")
    op.drop_index(op.f("ix_nodes_district"), table_name="nodes")
    op.drop_table("nodes")
    op.drop_index("ix_asset_edits_layer_asset", table_name="asset_edits")
    op.drop_table("asset_edits")
    for table in ASSET_TABLES:
        op.execute(f"DROP SEQUENCE {table}_public_seq")
    op.execute("DROP FUNCTION IF EXISTS fieldline_public_id(text, regclass)")
