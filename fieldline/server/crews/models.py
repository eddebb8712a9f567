"""Crews, their members, skills, depot and shifts, and the devices that report for them.

The device gateway reads crews and devices from here to bind a message to a crew: the crew's
public id (`C-000001`), its travel mode (which bounds a plausible speed) and its devices. The
dispatcher reads skills, shifts and the depot to choose a crew.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import SRID, Base

CREW_MODES = ("vehicle", "foot")
# The one vocabulary of crew skills; a task names the skills it needs from the same list.
CREW_SKILLS = (
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
MEMBER_ROLES = ("lead", "member")
# own: the crew's Fieldline handheld, publishing on fieldline/crews/{crew_id}/...;
# owntracks: an OwnTracks app publishing on owntracks/{user}/{device}, identifier "user/device".
DEVICE_KINDS = ("own", "owntracks")

_TS = sa.DateTime(timezone=True)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


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
    skills: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), nullable=False, server_default="{}")
    # Where the crew waits when it has no fix yet (start of a shift) and goes back to.
    depot: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=True), nullable=True
    )
    phone: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("mode IN ('vehicle', 'foot')", name="mode_choice"),
        sa.CheckConstraint(f"skills <@ ARRAY[{_quoted(CREW_SKILLS)}]", name="skills_choice"),
    )


class CrewMember(Base):
    __tablename__ = "crew_members"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    crew_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("crews.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    role: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="member")
    phone: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (sa.CheckConstraint(f"role IN ({_quoted(MEMBER_ROLES)})", name="role_choice"),)


class CrewShift(Base):
    """A crew is on shift from `starts_at` (included) to `ends_at` (excluded)."""

    __tablename__ = "crew_shifts"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    crew_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("crews.id", ondelete="CASCADE"), nullable=False
    )
    starts_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        # Two shifts of one crew never overlap, even when written at the same time; the GiST
        # index behind it also serves "who is on shift now".
        ExcludeConstraint(
            (sa.column("crew_id"), "="),
            (sa.func.tstzrange(sa.column("starts_at"), sa.column("ends_at")), "&&"),
            name="ex_crew_shifts_no_overlap",
            using="gist",
        ),
        # Who is on shift now and the shifts around now, across all crews (see 0014).
        sa.Index("ix_crew_shifts_ends_at", "ends_at", postgresql_include=["crew_id", "starts_at"]),
    )


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    crew_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("crews.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    identifier: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
    __table_args__ = (
        sa.CheckConstraint("kind IN ('own', 'owntracks')", name="kind_choice"),
        # A device reports for one crew at a time.
        sa.UniqueConstraint("kind", "identifier", name="uq_devices_kind_identifier"),
    )
