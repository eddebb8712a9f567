"""Warnings raised by the service-level timers and the escalations of overdue ones.

A warning exists at most once per task, timer and level (the unique constraint), so the
evaluation can run as often as it likes, from any number of processes, and never raises the
same warning twice.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import Base, choice_check

# arrival: until the crew is on site (the promised arrival time); completion: until the work
# is done (the promised completion time).
TIMERS = ("arrival", "completion")
# due_soon: FIELDLINE_SLA_DUE_SOON_MINUTES before the promise; overdue: past it.
LEVELS = ("due_soon", "overdue")

_TS = sa.DateTime(timezone=True)


class SlaWarning(Base):
    __tablename__ = "sla_warnings"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
    )
    timer: Mapped[str] = mapped_column(sa.Text, nullable=False)
    level: Mapped[str] = mapped_column(sa.Text, nullable=False)
    due_at: Mapped[datetime] = mapped_column(_TS, nullable=False)  # the promise it is about
    raised_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    # When it went out on the live stream and to the crew's inbox; null until then, so a
    # warning whose announcement failed goes out on the next run.
    announced_at: Mapped[datetime | None] = mapped_column(_TS)
    acknowledged_at: Mapped[datetime | None] = mapped_column(_TS)
    acknowledged_by: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (
        choice_check("timer", TIMERS),
        choice_check("level", LEVELS),
        sa.UniqueConstraint("task_id", "timer", "level", name="uq_sla_warnings_task_timer_level"),
    )


class SlaEscalation(Base):
    """An overdue warning handed to the supervisor."""

    __tablename__ = "sla_escalations"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    warning_id: Mapped[int] = mapped_column(
        sa.BigInteger,
        sa.ForeignKey("sla_warnings.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    )
    task_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # FIELDLINE_SUPERVISOR_CONTACT when it was escalated; null when none is set (the
    # escalation is then only on the live stream and in the warnings list).
    contact: Mapped[str | None] = mapped_column(sa.Text)
    escalated_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
