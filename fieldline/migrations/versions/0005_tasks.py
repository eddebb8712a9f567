"""work orders, their transitions and the assets they cover

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
STATES = (
    "'created', 'assigned', 'accepted', 'en_route', 'on_site', 'completed', 'verified', 'cancelled'"
)
ACTIONS = (
    "'assign', 'accept', 'decline', 'start', 'arrive', 'complete', 'verify', 'reject', "
    "'transfer', 'cancel'"
)


def _point(name: str) -> sa.Column:
    return sa.Column(
        name, geoalchemy2.types.Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )


def upgrade() -> None:
    op.execute("CREATE SEQUENCE tasks_public_seq")
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "public_id",
            sa.Text(),
            nullable=False,
            server_default=sa.text("fieldline_public_id('T', 'tasks_public_seq')"),
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default="created"),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("caller", postgresql.JSONB()),
        _point("site"),
        sa.Column(
            "area",
            geoalchemy2.types.Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=True,
        ),
        _point("source_position"),
        sa.Column("mode", sa.Text()),
        sa.Column(
            "required_skills", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"
        ),
        sa.Column("district", sa.Text()),
        sa.Column("crew_id", sa.BigInteger(), sa.ForeignKey("crews.id", ondelete="RESTRICT")),
        sa.Column("offer_expires_at", TS),
        sa.Column("promised_arrival_at", TS),
        sa.Column("promised_completion_at", TS),
        sa.Column("appointment", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("arrived_at", TS),
        sa.Column("completed_at", TS),
        sa.Column("transfer_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "kind IN ('repair', 'patrol', 'inspection', 'meter_reading', 'valve_operation')",
            name="kind_choice",
        ),
        sa.CheckConstraint("priority IN ('P1', 'P2', 'P3', 'P4')", name="priority_choice"),
        sa.CheckConstraint(f"state IN ({STATES})", name="state_choice"),
        sa.CheckConstraint(
            "source IN ('call_centre', 'scada_alarm', 'plan', 'crew_report')", name="source_choice"
        ),
        sa.CheckConstraint("mode IS NULL OR mode IN ('vehicle', 'foot')", name="mode_choice"),
        sa.CheckConstraint(
            "crew_id IS NOT NULL OR state IN ('created', 'cancelled')", name="crew_when_assigned"
        ),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_tasks_crew_id", "tasks", ["crew_id"])
    op.create_index("ix_tasks_state", "tasks", ["state"])
    op.create_index("ix_tasks_site", "tasks", ["site"], postgresql_using="gist")
    op.create_table(
        "task_assets",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.Text(), primary_key=True),
        sa.Column("layer", sa.Text(), primary_key=True),
        sa.Column("asset_id", sa.Text(), primary_key=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.CheckConstraint("role IN ('target', 'pipe', 'checkpoint', 'meter')", name="role_choice"),
    )
    op.create_table(
        "task_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=False),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("crew_id", sa.BigInteger(), sa.ForeignKey("crews.id", ondelete="RESTRICT")),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.func.now()),
        _point("position"),
        sa.Column("note", sa.Text()),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name="action_choice"),
        sa.CheckConstraint(f"from_state IN ({STATES})", name="from_state_choice"),
        sa.CheckConstraint(f"to_state IN ({STATES})", name="to_state_choice"),
        sa.CheckConstraint(
            "actor_kind IN ('dispatcher', 'crew', 'system')", name="actor_kind_choice"
        ),
    )
    op.create_index("ix_task_transitions_task_id_at", "task_transitions", ["task_id", "at"])
    # What the tasks domain made of each crew status the gateway stored: null until handed
    # over. Reports stored before tasks existed refer to none.
    op.add_column("task_status_events", sa.Column("outcome", sa.Text(), nullable=True))
    op.execute("UPDATE task_status_events SET outcome = 'unknown_task'")
    op.create_index(
        "ix_task_status_events_pending",
        "task_status_events",
        ["received_at"],
        postgresql_where=sa.text("outcome IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_task_status_events_pending", table_name="task_status_events")
    op.drop_column("task_status_events", "outcome")
    op.drop_table("task_transitions")
    op.drop_table("task_assets")
    op.drop_table("tasks")
    op.execute("DROP SEQUENCE tasks_public_seq")
