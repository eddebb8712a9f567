"""service-level warnings and escalations, the notices outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _task_id() -> sa.Column:
    return sa.Column(
        "task_id", sa.BigInteger(), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "sla_warnings",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        _task_id(),
        sa.Column("timer", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("announced_at", TS),
        sa.Column("acknowledged_at", TS),
        sa.Column("acknowledged_by", sa.Text()),
        sa.CheckConstraint("timer IN ('arrival', 'completion')", name="timer_choice"),
        sa.CheckConstraint("level IN ('due_soon', 'overdue')", name="level_choice"),
        sa.UniqueConstraint("task_id", "timer", "level", name="uq_sla_warnings_task_timer_level"),
    )
    op.create_table(
        "sla_escalations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "warning_id",
            sa.BigInteger(),
            sa.ForeignKey("sla_warnings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _task_id(),
        sa.Column("contact", sa.Text()),
        sa.Column("escalated_at", TS, nullable=False),
        sa.UniqueConstraint("warning_id"),
    )
    op.create_index("ix_sla_escalations_task_id", "sla_escalations", ["task_id"])
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        _task_id(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("occasion", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("next_attempt_at", TS),
        sa.Column("sent_at", TS),
        sa.CheckConstraint(
            "kind IN ('crew_assigned', 'crew_arriving', 'job_done', 'follow_up', 'escalation')",
            name="kind_choice",
        ),
        sa.CheckConstraint("channel IN ('webhook', 'sms', 'recording')", name="channel_choice"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_choice"),
        sa.UniqueConstraint(
            "task_id", "kind", "channel", "occasion", name="uq_notices_task_kind_channel_occasion"
        ),
    )
    op.create_index("ix_notices_task_id", "notices", ["task_id"])
    op.create_index("ix_notices_status_next_attempt_at", "notices", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_table("sla_escalations")
    op.drop_table("sla_warnings")
