"""What devices report, as tables: positions, quarantined fixes, station telemetry, meter
readings, task status events, field reports, device events and the dead letter.

Positions and telemetry are range-partitioned by day on their measurement time, so retention is
`DROP TABLE` of old partitions instead of a slow DELETE; a DEFAULT partition takes what falls
outside the daily ones (an old offline backlog) so that nothing is ever refused. Primary keys
carry the measurement time and the identity of the source: a redelivered message is an
`ON CONFLICT DO NOTHING`. Three times are kept apart: when the fix was measured (`fix_time`),
what the device's clock said when it sent (`device_time`) and when the server got it
(`received_at`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldline.gis.models import SRID, Base

# The partitioned tables and their partition key, for partition upkeep and pruning.
PARTITIONED = {"positions": "fix_time", "telemetry": "ts"}

_TS = sa.DateTime(timezone=True)


def _received_at() -> Mapped[datetime]:
    return mapped_column(_TS, nullable=False, server_default=sa.func.now())


class Position(Base):
    __tablename__ = "positions"

    crew_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)  # crew public id
    device: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    fix_time: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    lat: Mapped[float] = mapped_column(sa.Float, nullable=False)
    lon: Mapped[float] = mapped_column(sa.Float, nullable=False)
    geom: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False),
        sa.Computed(f"ST_SetSRID(ST_MakePoint(lon, lat), {SRID})", persisted=True),
    )
    acc_m: Mapped[float | None] = mapped_column(sa.Float)
    speed_mps: Mapped[float | None] = mapped_column(sa.Float)
    heading_deg: Mapped[float | None] = mapped_column(sa.Float)
    alt_m: Mapped[float | None] = mapped_column(sa.Float)
    batt_pct: Mapped[float | None] = mapped_column(sa.Float)
    device_time: Mapped[datetime | None] = mapped_column(_TS)
    received_at: Mapped[datetime] = _received_at()
    __table_args__ = (
        sa.Index("ix_positions_geom", "geom", postgresql_using="gist"),
        {"postgresql_partition_by": "RANGE (fix_time)"},
    )


class PositionHistory(Base):
    """A crew's track thinned to one row per device and minute, kept for years after its day's
    detailed fixes are pruned (telemetry/history.py). The row is the minute's last fix, a real
    measurement (an average would draw the crew where it never was, across corners and
    through buildings), with the number of fixes it stands for. Partitioned by month on
    `minute`; no point column nor GiST index, to keep it small: tracks need lat and lon."""

    __tablename__ = "position_history"

    crew_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    device: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    minute: Mapped[datetime] = mapped_column(_TS, primary_key=True)  # the UTC minute's start
    fix_time: Mapped[datetime] = mapped_column(_TS, nullable=False)
    fixes: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    lat: Mapped[float] = mapped_column(sa.Float, nullable=False)
    lon: Mapped[float] = mapped_column(sa.Float, nullable=False)
    acc_m: Mapped[float | None] = mapped_column(sa.Float)
    speed_mps: Mapped[float | None] = mapped_column(sa.Float)
    heading_deg: Mapped[float | None] = mapped_column(sa.Float)
    alt_m: Mapped[float | None] = mapped_column(sa.Float)
    batt_pct: Mapped[float | None] = mapped_column(sa.Float)
    __table_args__ = ({"postgresql_partition_by": "RANGE (minute)"},)


class PositionRollup(Base):
    """A UTC day of positions copied into the history: its detailed partition may be dropped."""

    __tablename__ = "position_rollups"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    fixes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    minutes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)  # history rows
    rolled_up_at: Mapped[datetime] = mapped_column(
        _TS, nullable=False, server_default=sa.func.now()
    )


class QuarantinedFix(Base):
    """A fix a GPS filter rejected, kept with the filter's name instead of being dropped."""

    __tablename__ = "quarantined_fixes"

    crew_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    device: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    fix_time: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    reason: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    lat: Mapped[float] = mapped_column(sa.Float, nullable=False)
    lon: Mapped[float] = mapped_column(sa.Float, nullable=False)
    acc_m: Mapped[float | None] = mapped_column(sa.Float)
    speed_mps: Mapped[float | None] = mapped_column(sa.Float)
    heading_deg: Mapped[float | None] = mapped_column(sa.Float)
    alt_m: Mapped[float | None] = mapped_column(sa.Float)
    batt_pct: Mapped[float | None] = mapped_column(sa.Float)
    device_time: Mapped[datetime | None] = mapped_column(_TS)
    received_at: Mapped[datetime] = _received_at()


class TelemetryReading(Base):
    __tablename__ = "telemetry"

    station_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)  # station public id
    metric: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    ts: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    value: Mapped[float | None] = mapped_column(sa.Float)
    received_at: Mapped[datetime] = _received_at()
    __table_args__ = ({"postgresql_partition_by": "RANGE (ts)"},)


class MeterReading(Base):
    # Billing data: kept whole, not pruned with telemetry.
    __tablename__ = "meter_readings"

    meter_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)  # meter public id
    ts: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    volume_m3: Mapped[float] = mapped_column(sa.Float, nullable=False)
    received_at: Mapped[datetime] = _received_at()


class TaskStatusEvent(Base):
    __tablename__ = "task_status_events"

    crew_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    status: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    ts: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    note: Mapped[str | None] = mapped_column(sa.Text)
    lat: Mapped[float | None] = mapped_column(sa.Float)
    lon: Mapped[float | None] = mapped_column(sa.Float)
    received_at: Mapped[datetime] = _received_at()
    # What the tasks domain made of it (server/tasks/status_events.py): null until handed
    # over, then `applied`, `no_change` or the reason it was refused (`task_not_yours`, ...).
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (
        sa.Index(
            "ix_task_status_events_pending",
            "received_at",
            postgresql_where=sa.text("outcome IS NULL"),
        ),
    )


class FieldReportRow(Base):
    __tablename__ = "field_reports"

    crew_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    ts: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    lat: Mapped[float] = mapped_column(sa.Float, nullable=False)
    lon: Mapped[float] = mapped_column(sa.Float, nullable=False)
    asset_id: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    photos: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), nullable=False, server_default="{}")
    received_at: Mapped[datetime] = _received_at()
    # The id the API and the live stream name a report by (the key above is the device's).
    public_id: Mapped[str] = mapped_column(
        sa.Text,
        nullable=False,
        unique=True,
        server_default=sa.text("fieldline_public_id('FR', 'field_reports_public_seq')"),
    )
    # A supervisor's review (server/reports/): pending, accepted or rejected, by whom, when,
    # why (a rejection), and the asset attributes an accepted correction changed.
    review_status: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(sa.Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(_TS)
    review_reason: Mapped[str | None] = mapped_column(sa.Text)
    applied_fields: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), nullable=False, server_default="{}"
    )
    __table_args__ = (
        sa.CheckConstraint(
            "review_status IN ('pending', 'accepted', 'rejected')", name="review_status_choice"
        ),
        sa.Index("ix_field_reports_review_status_received_at", "review_status", "received_at"),
    )


class DeviceEventRow(Base):
    __tablename__ = "device_events"

    source: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    ts: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    received_at: Mapped[datetime] = _received_at()


class DeadLetter(Base):
    """A message the gateway could not use, with the reason and its first bytes."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(_TS, nullable=False, index=True)
    topic: Mapped[str] = mapped_column(sa.Text, nullable=False)
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False, index=True)
    detail: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="")
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)  # size-capped
    payload_bytes: Mapped[int] = mapped_column(sa.Integer, nullable=False)  # original size
    # sha256 of topic and whole payload: a redelivered message is stored once.
    digest: Mapped[str] = mapped_column(sa.Text, nullable=False, unique=True)


class StationBinding(Base):
    """A name a SCADA system or Sparkplug edge uses for a station (`PS-KAMPPI-1`), bound to the
    station asset; topics may also carry the station's public id itself."""

    __tablename__ = "station_bindings"

    source: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    station_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("stations.id", ondelete="CASCADE"), nullable=False
    )
