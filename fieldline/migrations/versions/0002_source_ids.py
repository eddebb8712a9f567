"""source ids: the id an asset has in the file or system it was imported from

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
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


def upgrade() -> None:
    # A re-import of the same foreign file finds its rows again by this id. NULLs are distinct
    # in a unique constraint, so assets created in Fieldline need none.
    for table in ASSET_TABLES:
        op.add_column(table, sa.Column("source_id", sa.Text(), nullable=True))
        op.create_unique_constraint(op.f(f"uq_{table}_source_id"), table, ["source_id"])


def downgrade() -> None:
    for table in ASSET_TABLES:
        op.drop_constraint(op.f(f"uq_{table}_source_id"), table, type_="unique")
        op.drop_column(table, "source_id")
