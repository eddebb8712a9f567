"""Incidents: their reports, steps and tasks; outage notices; customer contacts

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
STATES = "'open', 'isolating', 'repairing', 'restoring', 'closed', 'cancelled'"
ACTIONS = "'open', 'link', 'isolate', 'valves_closed', 'repaired', 'restored', 'estimate', 'cancel'"
NOTICE_KINDS = "'crew_assigned', 'crew_arriving', 'job_done', 'follow_up', 'escalation'"
OUTAGE_KINDS = "'water_off', 'water_update', 'water_restored'"


def _point() -> Geometry:
    return Geometry("POINT", srid=4326, spatial_index=False)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE incidents_public_seq")
    op.create_table(
        "incidents",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "public_id",
            sa.Text(),
            nullable=False,
            server_default=sa.text("fieldline_public_id('IN', 'incidents_public_seq')"),
        ),
        sa.Column("state", sa.Text(), nullable=False, server_default="open"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("site", _point(), nullable=False),
        sa.Column("pipe_id", sa.Text()),
        sa.Column("isolation", postgresql.JSONB()),
        sa.Column("isolated_at", TS),
        sa.Column("estimated_restoration", TS),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(f"state IN ({STATES})", name="state_choice"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_incidents_state_opened_at", "incidents", ["state", "opened_at"])
    op.create_table(
        "incident_sources",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.BigInteger(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ref", sa.Text()),
        sa.Column("position", _point(), nullable=False),
        sa.Column("reported_at", TS, nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("caller", postgresql.JSONB()),
        sa.Column("meter_id", sa.Text()),
        sa.Column("station_id", sa.Text()),
        sa.Column("asset_id", sa.Text()),
        sa.Column("linked_by", sa.Text(), nullable=False),
        sa.Column("linked_at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('alarm', 'call', 'field_report')", name="kind_choice"),
        sa.UniqueConstraint("kind", "ref", name="uq_incident_sources_kind_ref"),
    )
    op.create_index("ix_incident_sources_incident_id", "incident_sources", ["incident_id"])
    op.create_index(
        "ix_incident_sources_position", "incident_sources", ["position"], postgresql_using="gist"
    )
    op.create_index("ix_incident_sources_reported_at", "incident_sources", ["reported_at"])
    op.create_table(
        "incident_steps",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.BigInteger(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text()),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("announced_at", TS),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name="action_choice"),
        sa.CheckConstraint(f"to_state IN ({STATES})", name="to_state_choice"),
        sa.CheckConstraint("actor_kind IN ('system', 'user')", name="actor_kind_choice"),
    )
    op.create_index("ix_incident_steps_incident_id_at", "incident_steps", ["incident_id", "at"])
    op.create_index(
        "ix_incident_steps_unannounced",
        "incident_steps",
        ["id"],
        postgresql_where=sa.text("announced_at IS NULL"),
    )
    op.create_table(
        "incident_tasks",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "incident_id",
            sa.BigInteger(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("valve_id", sa.Text()),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.CheckConstraint("role IN ('close_valve', 'repair', 'open_valve')", name="role_choice"),
        sa.UniqueConstraint("incident_id", "role", "valve_id", name="uq_incident_tasks_role_valve"),
    )
    op.create_index("ix_incident_tasks_incident_id", "incident_tasks", ["incident_id"])
    op.create_table(
        "customer_contacts",
        sa.Column("customer_account", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text()),
        sa.Column("phone", sa.Text()),
        sa.Column("email", sa.Text()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.drop_constraint("kind_choice", "notices", type_="check")
    op.create_check_constraint(
        "kind_choice", "notices", f"kind IN ({NOTICE_KINDS}, {OUTAGE_KINDS})"
    )


def downgrade() -> None:
    op.execute(f"DELETE FROM notices WHERE kind IN ({OUTAGE_KINDS})")  # noqa: S608 constants
    op.drop_constraint("kind_choice", "notices", type_="check")
    op.create_check_constraint("kind_choice", "notices", f"kind IN ({NOTICE_KINDS})")
    op.drop_table("customer_contacts")
    op.drop_table("incident_tasks")
    op.drop_table("incident_steps")
    op.drop_table("incident_sources")
    op.drop_table("incidents")
    op.execute("DROP SEQUENCE incidents_public_seq")
