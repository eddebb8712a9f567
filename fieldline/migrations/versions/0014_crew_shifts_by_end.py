"""crew shifts by end time: who is on shift now, and the shifts around now, without a scan of
every past shift

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 07:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Shifts that end after a moment are today's and the planned ones, a thin slice of a history
    # that grows by a shift per crew and day. crew_id and starts_at ride along so that "on
    # shift now" reads the index alone.
    op.create_index(
        "ix_crew_shifts_ends_at",
        "crew_shifts",
        ["ends_at"],
        postgresql_include=["crew_id", "starts_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_crew_shifts_ends_at", table_name="crew_shifts")
