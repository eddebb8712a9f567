"""Alarms as tables: the rules, the alarms they raised with every step of each (who, when),
and what the evaluation remembers per rule and station between runs.

At most one alarm is open per rule, station and metric (a partial unique index): however often
the evaluation runs, and however many readings repeat the condition, it cannot open a second
one. The evaluation's state is written in the same transaction as the alarms it raised, so a
restart of the scheduler resumes where the last committed run ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import STATION_KINDS, Base, choice_check
from fieldline.server.alarms.rules import KINDS, SEVERITIES
from fieldline.server.alarms.states import ACTIONS, ACTOR_KINDS, OPEN_STATES, STATES

RULE_ORIGINS = ("api", "setting")  # FIELDLINE_ALARM_RULES_DEFAULT: `setting`

_TS = sa.DateTime(timezone=True)


class AlarmRule(Base):
    __tablename__ = "alarm_rules"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    public_id: Mapped[str] = mapped_column(
        sa.Text,
        nullable=False,
        unique=True,
        server_default=sa.text("fieldline_public_id('AR', 'alarm_rules_public_seq')"),
    )
    # The scope: one station (its public id), every station of a kind, or (both null) every
    # station that lists the metric.
    station_id: Mapped[str | None] = mapped_column(sa.Text, index=True)
    station_kind: Mapped[str | None] = mapped_column(sa.Text)
    metric: Mapped[str] = mapped_column(sa.Text, nullable=False)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    deadband: Mapped[float] = mapped_column(sa.Float, nullable=False, server_default="0")
    window_s: Mapped[float | None] = mapped_column(sa.Float)
    stale_after_s: Mapped[float | None] = mapped_column(sa.Float)
    delay_s: Mapped[float] = mapped_column(sa.Float, nullable=False, server_default="0")
    severity: Mapped[str] = mapped_column(sa.Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.true())
    origin: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="api")
    # The normalised term of FIELDLINE_ALARM_RULES_DEFAULT a `setting` rule came from.
    setting_term: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    # Readings measured from here on are judged: set when the rule is made, its condition
    # changes or it is enabled again (a new rule does not raise alarms about the past).
    watch_from: Mapped[datetime] = mapped_column(_TS, nullable=False)
    created_by: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    __table_args__ = (
        choice_check("kind", KINDS),
        choice_check("severity", SEVERITIES),
        choice_check("origin", RULE_ORIGINS),
        sa.CheckConstraint(
            "station_kind IS NULL OR station_kind IN ("
            + ", ".join(f"'{k}'" for k in STATION_KINDS)
            + ")",
            name="station_kind_choice",
        ),
        sa.CheckConstraint("station_id IS NULL OR station_kind IS NULL", name="one_scope"),
        sa.CheckConstraint(
            "(kind = 'stale') = (stale_after_s IS NOT NULL) "
            "AND (kind = 'stale') = (threshold IS NULL) "
            "AND (kind = 'rate') = (window_s IS NOT NULL)",
            name="kind_fields",
        ),
    )


class AlarmState(Base):
    """The evaluation's memory of one rule at one station (evaluation.State)."""

    __tablename__ = "alarm_states"

    rule_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("alarm_rules.id", ondelete="CASCADE"), primary_key=True
    )
    station_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    judged_to: Mapped[datetime] = mapped_column(_TS, nullable=False)
    alive_at: Mapped[datetime | None] = mapped_column(_TS)
    dead: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.false())
    since: Mapped[datetime | None] = mapped_column(_TS)
    open: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.false())
    # A rate rule's readings inside its window: [[iso time, value], ...].
    recent: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, server_default="[]")


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    public_id: Mapped[str] = mapped_column(
        sa.Text,
        nullable=False,
        unique=True,
        server_default=sa.text("fieldline_public_id('AL', 'alarms_public_seq')"),
    )
    # Kept when the rule is deleted; what the rule said is copied below.
    rule_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("alarm_rules.id", ondelete="SET NULL")
    )
    station_id: Mapped[str] = mapped_column(sa.Text, nullable=False)
    metric: Mapped[str] = mapped_column(sa.Text, nullable=False)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    severity: Mapped[str] = mapped_column(sa.Text, nullable=False)
    condition: Mapped[str] = mapped_column(sa.Text, nullable=False)  # the rule in words
    state: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="active")
    value: Mapped[float | None] = mapped_column(sa.Float)  # the reading that raised it
    measured: Mapped[float | None] = mapped_column(sa.Float)  # what was compared
    since: Mapped[datetime] = mapped_column(_TS, nullable=False)  # the condition began
    raised_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(_TS)
    acknowledged_by: Mapped[str | None] = mapped_column(sa.Text)
    cleared_at: Mapped[datetime | None] = mapped_column(_TS)
    cleared_by: Mapped[str | None] = mapped_column(sa.Text)
    cleared_value: Mapped[float | None] = mapped_column(sa.Float)
    updated_at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    __table_args__ = (
        choice_check("kind", KINDS),
        choice_check("severity", SEVERITIES),
        choice_check("state", STATES),
        sa.Index(
            "uq_alarms_open",
            "rule_id",
            "station_id",
            "metric",
            unique=True,
            postgresql_where=sa.text("state IN (" + ", ".join(f"'{s}'" for s in OPEN_STATES) + ")"),
        ),
        sa.Index("ix_alarms_state_raised_at", "state", "raised_at"),
        sa.Index("ix_alarms_station_id_raised_at", "station_id", "raised_at"),
    )


class AlarmTransition(Base):
    """One step in an alarm's life: who did what, when."""

    __tablename__ = "alarm_transitions"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    alarm_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False
    )
    action: Mapped[str] = mapped_column(sa.Text, nullable=False)
    from_state: Mapped[str | None] = mapped_column(sa.Text)  # null: raised
    to_state: Mapped[str] = mapped_column(sa.Text, nullable=False)
    actor: Mapped[str] = mapped_column(sa.Text, nullable=False)
    actor_kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    # When it happened (the reading's time for raise and clear) and when it was recorded.
    at: Mapped[datetime] = mapped_column(_TS, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(_TS, nullable=False, server_default=sa.func.now())
    value: Mapped[float | None] = mapped_column(sa.Float)
    note: Mapped[str | None] = mapped_column(sa.Text)
    # When it went out on the live stream; null until then, so that a step whose
    # announcement failed goes out on the next run.
    announced_at: Mapped[datetime | None] = mapped_column(_TS)
    __table_args__ = (
        choice_check("action", ACTIONS),
        sa.CheckConstraint(
            "from_state IS NULL OR from_state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")",
            name="from_state_choice",
        ),
        choice_check("to_state", STATES),
        choice_check("actor_kind", ACTOR_KINDS),
        sa.Index("ix_alarm_transitions_alarm_id_at", "alarm_id", "at"),
        sa.Index(
            "ix_alarm_transitions_unannounced",
            "id",
            postgresql_where=sa.text("announced_at IS NULL"),
        ),
    )
