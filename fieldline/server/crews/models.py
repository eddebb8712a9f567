"""Crews and the devices that report for them.

A later part adds skills, shifts and members; this is what the device gateway needs to bind a
message to a crew: the crew's public id (`C-000001`), its travel mode (which bounds a plausible
speed) and its devices.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import Base

CREW_MODES = ("vehicle", "foot")
# own: the crew's Fieldline handheld, publishing on fieldline/crews/{crew_id}/...;
# owntracks: an OwnTracks app publishing on owntracks/{user}/{device}, identifier "user/device".
DEVICE_KINDS = ("own", "owntracks")


class Crew(Base):
    __tablename__ = "crews"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    public_id: Mapped[str] = mapped_column(
        sa.Text,
        nullable=False,
        unique=True,
        server_default=sa.text("fieldline_public_id('C', 'crews_public_seq')"),
    )
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    mode: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="vehicle")
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )
    __table_args__ = (sa.CheckConstraint("mode IN ('vehicle', 'foot')", name="mode_choice"),)


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    crew_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("crews.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    identifier: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )
    __table_args__ = (
        sa.CheckConstraint("kind IN ('own', 'owntracks')", name="kind_choice"),
        # A device reports for one crew at a time.
        sa.UniqueConstraint("kind", "identifier", name="uq_devices_kind_identifier"),
    )
