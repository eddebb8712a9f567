"""field reports get a stable id and a supervisor's review; photos uploaded by handhelds

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
REVIEW_STATUSES = "'pending', 'accepted', 'rejected'"
CONTENT_TYPES = "'image/jpeg', 'image/png', 'image/webp'"


def upgrade() -> None:
    op.execute("CREATE SEQUENCE field_reports_public_seq")
    # Reports stored before get their ids in the order they came in.
    op.add_column("field_reports", sa.Column("public_id", sa.Text(), nullable=True))
    op.execute(
        "UPDATE field_reports f SET public_id = fieldline_public_id('FR', "
        "'field_reports_public_seq') FROM (SELECT crew_id, ts, kind FROM field_reports "
        "ORDER BY received_at, crew_id, ts, kind) o "
        "WHERE (f.crew_id, f.ts, f.kind) = (o.crew_id, o.ts, o.kind)"
    )
    op.alter_column(
        "field_reports",
        "public_id",
        nullable=False,
        server_default=sa.text("fieldline_public_id('FR', 'field_reports_public_seq')"),
    )
    op.create_unique_constraint(op.f("uq_field_reports_public_id"), "field_reports", ["public_id"])
    op.add_column(
        "field_reports",
        sa.Column("review_status", sa.Text(), nullable=False, server_default="pending"),
    )
    op.add_column("field_reports", sa.Column("reviewed_by", sa.Text(), nullable=True))
    op.add_column("field_reports", sa.Column("reviewed_at", TS, nullable=True))
    op.add_column("field_reports", sa.Column("review_reason", sa.Text(), nullable=True))
    op.add_column(
        "field_reports",
        sa.Column(
            "applied_fields", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"
        ),
    )
    op.create_check_constraint(
        op.f("ck_field_reports_review_status_choice"),
        "field_reports",
        f"review_status IN ({REVIEW_STATUSES})",
    )
    op.create_index(
        op.f("ix_field_reports_review_status_received_at"),
        "field_reports",
        ["review_status", "received_at"],
    )

    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.CheckConstraint(
            f"content_type IN ({CONTENT_TYPES})", name=op.f("ck_uploads_content_type_choice")
        ),
    )


def downgrade() -> None:
    op.drop_table("uploads")
    op.drop_index(op.f("ix_field_reports_review_status_received_at"), "field_reports")
    op.drop_constraint(op.f("ck_field_reports_review_status_choice"), "field_reports")
    op.drop_constraint(op.f("uq_field_reports_public_id"), "field_reports")
    for column in (
        "applied_fields",
        "review_reason",
        "reviewed_at",
        "reviewed_by",
        "review_status",
        "public_id",
    ):
        op.drop_column("field_reports", column)
    op.execute("DROP SEQUENCE field_reports_public_seq")
