"""The checks of completed work against the crew's GPS trace, one row per run.

A run is written `pending` when a task is completed, due once late fixes had time to arrive
(FIELDLINE_VERIFICATION_GRACE_S); the scheduler then checks it and stores the outcome with its
evidence: `summary` holds the figures (fixes, gaps, jumps, coverage per pipe, visits), `evidence`
the GeoJSON layers the map and the printed report draw. A task completed again after a reopen
gets a new run; the earlier ones stay as they were, for the audit. A dispatcher's override is
recorded on the run it overrides, next to what the check found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import Base, choice_check

RUN_STATUSES = ("pending", "done", "error")
RESULTS = ("pass", "fail")

_TS = sa.DateTime(timezone=True)


class TaskVerification(Base):
    __tablename__ = "task_verifications"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
    )
    run: Mapped[int] = mapped_column(sa.Integer, nullable=False)  # 1, 2, ... per task
    status: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="pending")
    due_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    # The crew's fixes that count: from its acceptance to its completion.
    window_from: Mapped[datetime] = mapped_column(_TS, nullable=False)
    window_to: Mapped[datetime] = mapped_column(_TS, nullable=False)
    result: Mapped[str | None] = mapped_column(sa.Text)  # null until checked
    reasons: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), nullable=False, server_default="{}")
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    checked_at: Mapped[datetime | None] = mapped_column(_TS)
    error: Mapped[str | None] = mapped_column(sa.Text)  # status `error`: what went wrong
    override_result: Mapped[str | None] = mapped_column(sa.Text)
    override_reason: Mapped[str | None] = mapped_column(sa.Text)
    overridden_by: Mapped[str | None] = mapped_column(sa.Text)
    overridden_at: Mapped[datetime | None] = mapped_column(_TS)
    __table_args__ = (
        choice_check("status", RUN_STATUSES),
        sa.CheckConstraint("result IS NULL OR result IN ('pass', 'fail')", name="result_choice"),
        sa.CheckConstraint(
            "override_result IS NULL OR override_result IN ('pass', 'fail')",
            name="override_result_choice",
        ),
        sa.UniqueConstraint("task_id", "run", name="uq_task_verifications_task_id_run"),
        sa.Index("ix_task_verifications_status_due_at", "status", "due_at"),
    )

    @property
    def effective_result(self) -> str | None:
        """What counts: the dispatcher's override, else what the check found."""
        return self.override_result or self.result
