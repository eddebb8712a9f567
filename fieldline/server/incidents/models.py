"""Incidents as tables: the incident, the reports that make it up (its sources), every step
of its life, and the tasks it sent out.

A source is unique by (kind, ref): the same SCADA alarm or field report joins one incident
once, however often the intake runs. A call has no reference of its own (each call is news).
The tasks are the tasks domain's; `incident_tasks` says which are the incident's and what
each is for (close a valve, repair the pipe, open a valve again), in the trace's order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import SRID, Base, choice_check
from fieldline.server.incidents.states import ACTIONS, ACTOR_KINDS, STATES

SOURCE_KINDS = ("alarm", "call", "field_report")
TASK_ROLES = ("close_valve", "repair", "open_valve")

_TS = sa.DateTime(timezone=True)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    public_id: Mapped[str] = mapped_column(
        sa.Text,
        nullable=False,
        unique=True,
        server_default=sa.text("fieldline_public_id('IN', 'incidents_public_seq')"),
    )
    state: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="open")
    title: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # The first report's point: where the map shows the incident.
    site: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=False
    )
    # The broken pipe a dispatcher confirmed, and the isolation trace's answer for it.
    pipe_id: Mapped[str | None] = mapped_column(sa.Text)
    isolation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    isolated_at: Mapped[datetime | None] = mapped_column(_TS)
    estimated_restoration: Mapped[datetime | None] = mapped_column(_TS)
    opened_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(_TS)
    updated_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    __table_args__ = (
        choice_check("state", STATES),
        sa.Index("ix_incidents_state_opened_at", "state", "opened_at"),
    )


class IncidentSource(Base):
    """One report that is part of an incident: an alarm, a call, a crew's field report."""

    __tablename__ = "incident_sources"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # The alarm's or the field report's public id; null for a call.
    ref: Mapped[str | None] = mapped_column(sa.Text)
    # Where it was reported: the call's point or the meter's, the station's, the crew's.
    position: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=False
    )
    reported_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    caller: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # a call's {name, phone, email}
    meter_id: Mapped[str | None] = mapped_column(sa.Text)  # a call about a customer's meter
    station_id: Mapped[str | None] = mapped_column(sa.Text)  # an alarm's station
    asset_id: Mapped[str | None] = mapped_column(sa.Text)  # the asset a crew's report names
    linked_by: Mapped[str] = mapped_column(sa.Text, nullable=False)
    linked_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    __table_args__ = (
        choice_check("kind", SOURCE_KINDS),
        sa.UniqueConstraint("kind", "ref", name="uq_incident_sources_kind_ref"),
        sa.Index("ix_incident_sources_incident_id", "incident_id"),
        sa.Index("ix_incident_sources_position", "position", postgresql_using="gist"),
        sa.Index("ix_incident_sources_reported_at", "reported_at"),
    )


class IncidentStep(Base):
    """One step in an incident's life: who did what, when; announced live after the commit."""

    __tablename__ = "incident_steps"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
    )
    action: Mapped[str] = mapped_column(sa.Text, nullable=False)
    from_state: Mapped[str | None] = mapped_column(sa.Text)  # null: opened
    to_state: Mapped[str] = mapped_column(sa.Text, nullable=False)
    actor: Mapped[str] = mapped_column(sa.Text, nullable=False)
    actor_kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    note: Mapped[str | None] = mapped_column(sa.Text)
    # When it went out on the live stream; null until then (the next run sends it).
    announced_at: Mapped[datetime | None] = mapped_column(_TS)
    __table_args__ = (
        choice_check("action", ACTIONS),
        choice_check("to_state", STATES),
        choice_check("actor_kind", ACTOR_KINDS),
        sa.Index("ix_incident_steps_incident_id_at", "incident_id", "at"),
        sa.Index(
            "ix_incident_steps_unannounced", "id", postgresql_where=sa.text("announced_at IS NULL")
        ),
    )


class IncidentTask(Base):
    """A task the incident sent out, what for, and its place in the trace's order."""

    __tablename__ = "incident_tasks"

    task_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    incident_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(sa.Text, nullable=False)
    valve_id: Mapped[str | None] = mapped_column(sa.Text)
    ordinal: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    __table_args__ = (
        choice_check("role", TASK_ROLES),
        # One task per valve and direction: isolating twice cannot close a valve twice.
        sa.UniqueConstraint("incident_id", "role", "valve_id", name="uq_incident_tasks_role_valve"),
        sa.Index("ix_incident_tasks_incident_id", "incident_id"),
    )
