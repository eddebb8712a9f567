"""crews, devices, positions, telemetry and the dead letter

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:30:00.000000
"""

from __future__ import annotations

from typing import Any

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

# Daily partitions are named <table>_pYYYYMMDD and cover a UTC day whatever the session's time
# zone. A day whose rows already sit in the DEFAULT partition (an old backlog) cannot get a
# partition of its own: it is skipped and its rows stay in DEFAULT, where pruning deletes them.
PARTITION_FUNCTIONS = """
CREATE FUNCTION fieldline_create_partitions(parent regclass, first_day date, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    name text;
    created integer := 0;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        day := first_day + i;
        name := parent::text || '_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                    name, parent,
                    day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC'
                );
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'partition % skipped: its rows are in the default partition', name;
            END;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

CREATE FUNCTION fieldline_drop_partitions(parent regclass, time_column text, before date)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    child record;
BEGIN
    FOR child IN
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
          AND c.relname ~ '_p[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < before
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', child.relname);
        RETURN NEXT child.relname;
    END LOOP;
    EXECUTE format(
        'DELETE FROM %I WHERE %I < %L',
        parent::text || '_default', time_column, before::timestamp AT TIME ZONE 'UTC'
    );
END
$$;
"""


def _fix_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("crew_id", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("fix_time", TS, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
    ]


def _fix_extras() -> list[sa.Column[Any]]:
    return [
        sa.Column("acc_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("alt_m", sa.Float(), nullable=True),
        sa.Column("batt_pct", sa.Float(), nullable=True),
        sa.Column("device_time", TS, nullable=True),
        sa.Column("received_at", TS, server_default=sa.text("now()"), nullable=False),
    ]


def upgrade() -> None:
    op.execute("CREATE SEQUENCE crews_public_seq")
    op.create_table(
        "crews",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column(
            "public_id",
            sa.Text(),
            server_default=sa.text("fieldline_public_id('C', 'crews_public_seq')"),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), server_default="vehicle", nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("mode IN ('vehicle', 'foot')", name=op.f("ck_crews_mode_choice")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crews")),
        sa.UniqueConstraint("public_id", name=op.f("uq_crews_public_id")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("crew_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('own', 'owntracks')", name=op.f("ck_devices_kind_choice")),
        sa.ForeignKeyConstraint(
            ["crew_id"], ["crews.id"], name=op.f("fk_devices_crew_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("kind", "identifier", name="uq_devices_kind_identifier"),
    )
    op.create_index(op.f("ix_devices_crew_id"), "devices", ["crew_id"])
    op.create_table(
        "station_bindings",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_station_bindings_station_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_station_bindings")),
    )

    op.create_table(
        "positions",
        *_fix_columns(),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT", srid=4326, spatial_index=False, from_text="ST_GeomFromEWKT"
            ),
            sa.Computed("ST_SetSRID(ST_MakePoint(lon, lat), 4326)", persisted=True),
        ),
        *_fix_extras(),
        sa.PrimaryKeyConstraint("crew_id", "device", "fix_time", name=op.f("pk_positions")),
        postgresql_partition_by="RANGE (fix_time)",
    )
    op.create_index("ix_positions_geom", "positions", ["geom"], postgresql_using="gist")
    op.create_table(
        "quarantined_fixes",
        *_fix_columns(),
        sa.Column("reason", sa.Text(), nullable=False),
        *_fix_extras(),
        sa.PrimaryKeyConstraint(
            "crew_id", "device", "fix_time", "reason", name=op.f("pk_quarantined_fixes")
        ),
    )
    op.create_table(
        "telemetry",
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("received_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("station_id", "metric", "ts", name=op.f("pk_telemetry")),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_table(
        "meter_readings",
        sa.Column("meter_id", sa.Text(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("volume_m3", sa.Float(), nullable=False),
        sa.Column("received_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "ts", name=op.f("pk_meter_readings")),
    )
    op.create_table(
        "task_status_events",
        sa.Column("crew_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("received_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint(
            "crew_id", "task_id", "status", "ts", name=op.f("pk_task_status_events")
        ),
    )
    op.create_table(
        "field_reports",
        sa.Column("crew_id", sa.Text(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("asset_id", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "changes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("photos", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("received_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("crew_id", "ts", "kind", name=op.f("pk_field_reports")),
    )
    op.create_table(
        "device_events",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column(
            "detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("received_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("source", "kind", "ts", name=op.f("pk_device_events")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_bytes", sa.Integer(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("digest", name=op.f("uq_dead_letters_digest")),
    )
    op.create_index(op.f("ix_dead_letters_received_at"), "dead_letters", ["received_at"])
    op.create_index(op.f("ix_dead_letters_reason"), "dead_letters", ["reason"])

    op.execute(PARTITION_FUNCTIONS)
    for table in ("positions", "telemetry"):
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        today = "(now() AT TIME ZONE 'UTC')::date"
        op.execute(f"SELECT fieldline_create_partitions('{table}', {today} - 1, 9)")


def downgrade() -> None:
    op.execute("DROP FUNCTION fieldline_drop_partitions(regclass, text, date)")
    op.execute("DROP FUNCTION fieldline_create_partitions(regclass, date, integer)")
    for table in (
        "dead_letters",
        "device_events",
        "field_reports",
        "task_status_events",
        "meter_readings",
        "telemetry",
        "quarantined_fixes",
        "positions",
        "station_bindings",
        "devices",
        "crews",
    ):
        op.drop_table(table)  # partitions go with their parent
    op.execute("DROP SEQUENCE crews_public_seq")
