"""proof-of-work verification runs, the arrival found in the trace, the approve action

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ACTIONS_0005 = (
    "'assign', 'accept', 'decline', 'start', 'arrive', 'complete', 'verify', 'reject', "
    "'transfer', 'cancel'"
)
ACTIONS = (
    "'assign', 'accept', 'decline', 'start', 'arrive', 'complete', 'verify', 'reject', "
    "'approve', 'transfer', 'cancel'"
)


def _action_check(actions: str) -> None:
    op.execute(
        "ALTER TABLE task_transitions DROP CONSTRAINT ck_task_transitions_action_choice, "
        f"ADD CONSTRAINT ck_task_transitions_action_choice CHECK (action IN ({actions}))"
    )


def upgrade() -> None:
    op.create_table(
        "task_verifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("window_from", TS, nullable=False),
        sa.Column("window_to", TS, nullable=False),
        sa.Column("result", sa.Text()),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("summary", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("evidence", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("checked_at", TS),
        sa.Column("error", sa.Text()),
        sa.Column("override_result", sa.Text()),
        sa.Column("override_reason", sa.Text()),
        sa.Column("overridden_by", sa.Text()),
        sa.Column("overridden_at", TS),
        sa.CheckConstraint("status IN ('pending', 'done', 'error')", name="status_choice"),
        sa.CheckConstraint("result IS NULL OR result IN ('pass', 'fail')", name="result_choice"),
        sa.CheckConstraint(
            "override_result IS NULL OR override_result IN ('pass', 'fail')",
            name="override_result_choice",
        ),
        sa.UniqueConstraint("task_id", "run", name="uq_task_verifications_task_id_run"),
    )
    op.create_index(
        "ix_task_verifications_status_due_at", "task_verifications", ["status", "due_at"]
    )
    op.add_column("tasks", sa.Column("trace_arrived_at", TS, nullable=True))
    _action_check(ACTIONS)


def downgrade() -> None:
    # Before 0007 a task reached `verified` only by `verify`: an approval is kept as that.
    op.execute("UPDATE task_transitions SET action = 'verify' WHERE action = 'approve'")
    _action_check(ACTIONS_0005)
    op.drop_column("tasks", "trace_arrived_at")
    op.drop_table("task_verifications")
