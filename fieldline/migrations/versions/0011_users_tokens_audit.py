"""Users, API tokens, the security audit log and the server's generated secrets

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ROLES = "'admin', 'dispatcher', 'supervisor', 'crew_member', 'viewer', 'integration'"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("crew_id", sa.BigInteger(), sa.ForeignKey("crews.id", ondelete="RESTRICT")),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("last_login_at", TS),
        sa.CheckConstraint(f"role IN ({ROLES})", name="role_choice"),
        sa.CheckConstraint("role <> 'crew_member' OR crew_id IS NOT NULL", name="crew_member_crew"),
        sa.UniqueConstraint("username"),
    )
    op.create_index("ix_users_crew_id", "users", ["crew_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
        sa.Column("last_used_at", TS),
        sa.UniqueConstraint("prefix"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text()),
        sa.Column("subject", sa.Text()),
        sa.Column("remote_addr", sa.Text()),
        sa.Column(
            "detail",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
    )
    op.create_index("ix_security_events_at", "security_events", ["at"])
    op.create_index("ix_security_events_kind_at", "security_events", ["kind", "at"])
    op.create_index("ix_security_events_actor", "security_events", ["actor"])
    op.create_index("ix_security_events_subject", "security_events", ["subject"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_table("security_events")
    op.drop_table("api_tokens")
    op.drop_table("users")
