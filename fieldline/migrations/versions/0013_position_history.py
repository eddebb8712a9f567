"""position history: crews' tracks thinned to a fix a minute, partitioned by month

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "position_history",
        sa.Column("crew_id", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("minute", TS, nullable=False),
        sa.Column("fix_time", TS, nullable=False),
        sa.Column("fixes", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("acc_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("alt_m", sa.Float(), nullable=True),
        sa.Column("batt_pct", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("crew_id", "device", "minute", name=op.f("pk_position_history")),
        postgresql_partition_by="RANGE (minute)",
    )
    # Monthly partitions (position_history_pYYYYMM01) are made by the roll-up before it writes
    # a month; DEFAULT stays empty, there for fieldline_drop_partitions.
    op.execute("CREATE TABLE position_history_default PARTITION OF position_history DEFAULT")
    op.create_table(
        "position_rollups",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("fixes", sa.BigInteger(), nullable=False),
        sa.Column("minutes", sa.BigInteger(), nullable=False),
        sa.Column("rolled_up_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_position_rollups")),
    )


def downgrade() -> None:
    op.drop_table("position_rollups")
    op.drop_table("position_history")  # partitions go with their parent
