"""SCADA alarms: rules, alarms with their steps, the evaluation's state

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
KINDS = "'low', 'high', 'rate', 'stale'"
SEVERITIES = "'critical', 'high', 'medium', 'low'"
STATES = "'active', 'acknowledged', 'cleared'"


def upgrade() -> None:
    op.execute("CREATE SEQUENCE alarm_rules_public_seq")
    op.execute("CREATE SEQUENCE alarms_public_seq")
    op.create_table(
        "alarm_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "public_id",
            sa.Text(),
            nullable=False,
            server_default=sa.text("fieldline_public_id('AR', 'alarm_rules_public_seq')"),
        ),
        sa.Column("station_id", sa.Text()),
        sa.Column("station_kind", sa.Text()),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Float()),
        sa.Column("deadband", sa.Float(), nullable=False, server_default="0"),
        sa.Column("window_s", sa.Float()),
        sa.Column("stale_after_s", sa.Float()),
        sa.Column("delay_s", sa.Float(), nullable=False, server_default="0"),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("origin", sa.Text(), nullable=False, server_default="api"),
        sa.Column("setting_term", sa.Text()),
        sa.Column("watch_from", TS, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(f"kind IN ({KINDS})", name="kind_choice"),
        sa.CheckConstraint(f"severity IN ({SEVERITIES})", name="severity_choice"),
        sa.CheckConstraint("origin IN ('api', 'setting')", name="origin_choice"),
        sa.CheckConstraint(
            "station_kind IS NULL OR station_kind IN ('pressure', 'flow', 'quality')",
            name="station_kind_choice",
        ),
        sa.CheckConstraint("station_id IS NULL OR station_kind IS NULL", name="one_scope"),
        sa.CheckConstraint(
            "(kind = 'stale') = (stale_after_s IS NOT NULL) "
            "AND (kind = 'stale') = (threshold IS NULL) "
            "AND (kind = 'rate') = (window_s IS NOT NULL)",
            name="kind_fields",
        ),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("setting_term"),
    )
    op.create_index("ix_alarm_rules_station_id", "alarm_rules", ["station_id"])
    op.create_table(
        "alarm_states",
        sa.Column(
            "rule_id",
            sa.BigInteger(),
            sa.ForeignKey("alarm_rules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("station_id", sa.Text(), primary_key=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("judged_to", TS, nullable=False),
        sa.Column("alive_at", TS),
        sa.Column("dead", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("since", TS),
        sa.Column("open", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("recent", postgresql.JSONB(), nullable=False, server_default="[]"),
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "public_id",
            sa.Text(),
            nullable=False,
            server_default=sa.text("fieldline_public_id('AL', 'alarms_public_seq')"),
        ),
        sa.Column("rule_id", sa.BigInteger(), sa.ForeignKey("alarm_rules.id", ondelete="SET NULL")),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("condition", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default="active"),
        sa.Column("value", sa.Float()),
        sa.Column("measured", sa.Float()),
        sa.Column("since", TS, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS),
        sa.Column("acknowledged_by", sa.Text()),
        sa.Column("cleared_at", TS),
        sa.Column("cleared_by", sa.Text()),
        sa.Column("cleared_value", sa.Float()),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(f"kind IN ({KINDS})", name="kind_choice"),
        sa.CheckConstraint(f"severity IN ({SEVERITIES})", name="severity_choice"),
        sa.CheckConstraint(f"state IN ({STATES})", name="state_choice"),
        sa.UniqueConstraint("public_id"),
    )
    # One open alarm per rule, station and metric: the evaluation's idempotence rests on it.
    op.create_index(
        "uq_alarms_open",
        "alarms",
        ["rule_id", "station_id", "metric"],
        unique=True,
        postgresql_where=sa.text("state IN ('active', 'acknowledged')"),
    )
    op.create_index("ix_alarms_state_raised_at", "alarms", ["state", "raised_at"])
    op.create_index("ix_alarms_station_id_raised_at", "alarms", ["station_id", "raised_at"])
    op.create_table(
        "alarm_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "alarm_id",
            sa.BigInteger(),
            sa.ForeignKey("alarms.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text()),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("value", sa.Float()),
        sa.Column("note", sa.Text()),
        sa.Column("announced_at", TS),
        sa.CheckConstraint("action IN ('raise', 'acknowledge', 'clear')", name="action_choice"),
        sa.CheckConstraint(
            f"from_state IS NULL OR from_state IN ({STATES})", name="from_state_choice"
        ),
        sa.CheckConstraint(f"to_state IN ({STATES})", name="to_state_choice"),
        sa.CheckConstraint("actor_kind IN ('system', 'user')", name="actor_kind_choice"),
    )
    op.create_index("ix_alarm_transitions_alarm_id_at", "alarm_transitions", ["alarm_id", "at"])
    op.create_index(
        "ix_alarm_transitions_unannounced",
        "alarm_transitions",
        ["id"],
        postgresql_where=sa.text("announced_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("alarm_transitions")
    op.drop_table("alarms")
    op.drop_table("alarm_states")
    op.drop_table("alarm_rules")
    op.execute("DROP SEQUENCE alarms_public_seq")
    op.execute("DROP SEQUENCE alarm_rules_public_seq")
