"""crews' members, skills, depots and shifts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
# The vocabulary as it stood at this revision; a later change of CREW_SKILLS needs its own
# migration of the check.
SKILLS = (
    "valve_operation",
    "leak_detection",
    "pipe_repair",
    "welding",
    "excavation",
    "meter",
    "hydrant",
    "water_quality",
    "inspection",
    "survey",
    "patrol",
)


def upgrade() -> None:
    # btree_gist lets one exclusion constraint compare the crew (=) and the time range (&&).
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.add_column(
        "crews",
        sa.Column("skills", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column(
        "crews",
        sa.Column(
            "depot",
            geoalchemy2.types.Geometry(
                geometry_type="POINT", srid=4326, spatial_index=False, from_text="ST_GeomFromEWKT"
            ),
            nullable=True,
        ),
    )
    op.add_column("crews", sa.Column("phone", sa.Text(), nullable=True))
    skills = ", ".join(f"'{skill}'" for skill in SKILLS)
    op.create_check_constraint(
        op.f("ck_crews_skills_choice"), "crews", f"skills <@ ARRAY[{skills}]"
    )
    op.create_index("idx_crews_depot", "crews", ["depot"], postgresql_using="gist")

    op.create_table(
        "crew_members",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("crew_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), server_default="member", nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.CheckConstraint("role IN ('lead', 'member')", name=op.f("ck_crew_members_role_choice")),
        sa.ForeignKeyConstraint(
            ["crew_id"], ["crews.id"], name=op.f("fk_crew_members_crew_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crew_members")),
    )
    op.create_index(op.f("ix_crew_members_crew_id"), "crew_members", ["crew_id"])

    op.create_table(
        "crew_shifts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("crew_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_crew_shifts_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["crew_id"], ["crews.id"], name=op.f("fk_crew_shifts_crew_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crew_shifts")),
        postgresql.ExcludeConstraint(
            (sa.column("crew_id"), "="),
            (sa.text("tstzrange(starts_at, ends_at)"), "&&"),
            name="ex_crew_shifts_no_overlap",
            using="gist",
        ),
    )


def downgrade() -> None:
    # IF EXISTS: a database may have reached this revision before it held these objects.
    op.execute("DROP TABLE IF EXISTS crew_shifts")
    op.execute("DROP TABLE IF EXISTS crew_members")
    op.execute("DROP INDEX IF EXISTS idx_crews_depot")
    op.execute("ALTER TABLE crews DROP CONSTRAINT IF EXISTS ck_crews_skills_choice")
    op.execute("ALTER TABLE crews DROP COLUMN IF EXISTS phone")
    op.execute("ALTER TABLE crews DROP COLUMN IF EXISTS depot")
    op.execute("ALTER TABLE crews DROP COLUMN IF EXISTS skills")
    # btree_gist stays: dropping an extension could break objects made after this revision.
