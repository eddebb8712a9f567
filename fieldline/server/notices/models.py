"""The notices outbox: every text for a customer or the supervisor is a row, written in the
transaction of the event that causes it and delivered later by the scheduler.

A row is one text to one recipient over one channel (a backend of FIELDLINE_NOTICE_BACKENDS).
`occasion` says which event it answers (the crew it announces, the completion it reports), so
the unique constraint keeps a replayed event or a second run of a check from writing it twice.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import Base, choice_check

NOTICE_KINDS = (
    "crew_assigned",
    "crew_arriving",
    "job_done",
    "follow_up",
    "escalation",
    # An outage (server/incidents/): water off, a new restoration time, water back on.
    "water_off",
    "water_update",
    "water_restored",
)
CHANNELS = ("webhook", "sms", "recording")
NOTICE_STATUSES = ("pending", "sent", "failed")

_TS = sa.DateTime(timezone=True)


class Notice(Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    occasion: Mapped[str] = mapped_column(sa.Text, nullable=False)
    recipient: Mapped[str] = mapped_column(sa.Text, nullable=False)
    channel: Mapped[str] = mapped_column(sa.Text, nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
    # After a failed attempt, not before this (back-off); null: as soon as possible.
    next_attempt_at: Mapped[datetime | None] = mapped_column(_TS)
    sent_at: Mapped[datetime | None] = mapped_column(_TS)
    __table_args__ = (
        choice_check("kind", NOTICE_KINDS),
        choice_check("channel", CHANNELS),
        choice_check("status", NOTICE_STATUSES),
        sa.UniqueConstraint(
            "task_id", "kind", "channel", "occasion", name="uq_notices_task_kind_channel_occasion"
        ),
        sa.Index("ix_notices_status_next_attempt_at", "status", "next_attempt_at"),
    )


class CustomerContact(Base):
    """How to reach the holder of a customer account (meters name the account): kept from
    the billing system; an account without one gets no outage text."""

    __tablename__ = "customer_contacts"

    customer_account: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
