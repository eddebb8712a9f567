"""Work orders as tables: the task, the assets it covers, and every transition it went through.

A task's current state and crew live on the row for fast reads; `task_transitions` is the
history (who, when, where), from which KPIs and audits are computed. The times of the first
arrival and of completion are kept on the row as well because service levels and KPIs read them
for thousands of tasks at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import SRID, Base, choice_check
from fieldline.server.tasks.states import ACTIONS, STATES

TASK_KINDS = ("repair", "patrol", "inspection", "meter_reading", "valve_operation")
PRIORITIES = ("P1", "P2", "P3", "P4")
TASK_SOURCES = ("call_centre", "scada_alarm", "plan", "crew_report")
TRAVEL_MODES = ("vehicle", "foot")
# What a task asks of each asset it lists: pipes to cover (patrol), checkpoints to visit
# (valves and hydrants on a patrol), meters to read, the asset to repair or operate.
ASSET_ROLES = ("target", "pipe", "checkpoint", "meter")
ACTOR_KINDS = ("dispatcher", "crew", "system")

_TS = sa.DateTime(timezone=True)


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    public_id: Mapped[str] = mapped_column(
        sa.Text,
        nullable=False,
        unique=True,
        server_default=sa.text("fieldline_public_id('T', 'tasks_public_seq')"),
    )
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    priority: Mapped[str] = mapped_column(sa.Text, nullable=False)
    state: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="created")
    source: Mapped[str] = mapped_column(sa.Text, nullable=False)
    title: Mapped[str] = mapped_column(sa.Text, nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    # The caller to keep informed ({name, phone, email}); customer notices go there.
    caller: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Where the crew must be: the asset's position or a reported point. A patrol has none (its
    # pipes and checkpoints say where) but may have an area.
    site: Mapped[Any | None] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    area: Mapped[Any | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False)
    )
    # Where a crew stood when it reported the problem (source `crew_report`).
    source_position: Mapped[Any | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False)
    )
    # How the crew travels on a patrol (foot patrols are slower and checked at walking speed).
    mode: Mapped[str | None] = mapped_column(sa.Text)
    required_skills: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), nullable=False, server_default="{}"
    )
    district: Mapped[str | None] = mapped_column(sa.Text)
    crew_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("crews.id", ondelete="RESTRICT"), index=True
    )
    # An offer to a crew expires unless accepted: the task is then offered again.
    offer_expires_at: Mapped[datetime | None] = mapped_column(_TS)
    promised_arrival_at: Mapped[datetime | None] = mapped_column(_TS)
    promised_completion_at: Mapped[datetime | None] = mapped_column(_TS)
    # The arrival time was agreed with the customer (an appointment), not derived from the
    # priority's service level: a change of priority keeps it.
    appointment: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default="false")
    arrived_at: Mapped[datetime | None] = mapped_column(_TS)
    # The first fix of the crew within reach of the site, found by the verification of its
    # trace; KPIs prefer it to the crew's own report (`arrived_at`).
    trace_arrived_at: Mapped[datetime | None] = mapped_column(_TS)
    completed_at: Mapped[datetime | None] = mapped_column(_TS)
    transfer_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, server_default="0")
    reopen_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, server_default="0")
    created_by: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())

    __table_args__ = (
        choice_check("kind", TASK_KINDS),
        choice_check("priority", PRIORITIES),
        choice_check("state", STATES),
        choice_check("source", TASK_SOURCES),
        sa.CheckConstraint("mode IS NULL OR mode IN ('vehicle', 'foot')", name="mode_choice"),
        # Anything past `created` (bar a cancelled open task) is with a crew.
        sa.CheckConstraint(
            "crew_id IS NOT NULL OR state IN ('created', 'cancelled')", name="crew_when_assigned"
        ),
        sa.Index("ix_tasks_state", "state"),
        sa.Index("ix_tasks_site", "site", postgresql_using="gist"),
    )


class TaskAsset(Base):
    """An asset a task names, with what the crew must do there."""

    __tablename__ = "task_assets"

    task_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    layer: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    asset_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)  # the asset's public id
    ordinal: Mapped[int] = mapped_column(sa.Integer, nullable=False)  # order given by the planner
    __table_args__ = (choice_check("role", ASSET_ROLES),)


class TaskTransition(Base):
    """One step in a task's life: who did what, when and where."""

    __tablename__ = "task_transitions"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
    )
    action: Mapped[str] = mapped_column(sa.Text, nullable=False)
    from_state: Mapped[str] = mapped_column(sa.Text, nullable=False)
    to_state: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # The crew the task is with after the step (before it, for decline and cancel).
    crew_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("crews.id", ondelete="RESTRICT")
    )
    actor: Mapped[str] = mapped_column(sa.Text, nullable=False)
    actor_kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # When it happened (a crew's report carries its own time) and when it was recorded.
    at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
    position: Mapped[Any | None] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    note: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (
        choice_check("action", ACTIONS),
        choice_check("from_state", STATES),
        choice_check("to_state", STATES),
        choice_check("actor_kind", ACTOR_KINDS),
        sa.Index("ix_task_transitions_task_id_at", "task_id", "at"),
    )
