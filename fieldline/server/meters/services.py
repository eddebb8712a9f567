"""Meter anomalies: the window to judge, the findings over it, and the meters they concern."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.models import Meter
from fieldline.server.meters import consumption
from fieldline.server.meters.findings import Finding, Judge, silent
from fieldline.settings import Settings

# The latest days may reach this far back (each one more is a day of readings to read).
MAX_RECENT_DAYS = 31


@dataclass(frozen=True)
class AnomalyQuery:
    since: date | None = None  # the first of the latest days; None: the last `recent_days`
    kinds: tuple[str, ...] = ()
    min_score: float = 0.0
    limit: int = 100


@dataclass(frozen=True)
class MeterPlace:
    serial: str | None
    customer_account: str | None
    service_address: str | None
    lon: float | None
    lat: float | None


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def find_anomalies(
    session: Session, query: AnomalyQuery, settings: Settings, now: datetime
) -> list[Finding]:
    """Every finding over the latest whole local days (and, for silence and roll-backs, up
    to `now`), worst first."""
    timezone = settings.timezone
    today = local_today(now, timezone)
    last_day = today - timedelta(days=1)
    first_recent = query.since or today - timedelta(days=settings.meter_recent_days)
    first_day = first_recent - timedelta(days=settings.meter_baseline_days)
    max_interval = timedelta(hours=settings.meter_max_interval_h)

    # One read of the readings serves every finding: from the interval before the first
    # midnight on, up to now.
    start = consumption.midnight(first_day, timezone) - max_interval
    readings = consumption.load(session, start, now)
    daily = consumption.daily(readings, first_day, last_day, timezone, max_interval)
    judge = Judge(daily, settings.meter_baseline_days, settings)
    quiet = silent(consumption.last_readings(session), now, settings)
    found = [*quiet, *judge.spikes(), *judge.drops()]
    found += judge.short_history({finding.meter_id for finding in quiet})
    first_night = last_day - timedelta(days=settings.meter_leak_nights - 1)
    night_gap = timedelta(minutes=settings.meter_night_max_interval_min)
    nights = consumption.nights(
        readings, first_night, last_day, timezone, settings.meter_night, night_gap
    )
    found += judge.continuous_flow(nights)
    since = consumption.midnight(first_recent, timezone)
    rollbacks = consumption.rollbacks(readings, since, settings.meter_rollback_tolerance_m3)
    found += judge.rollbacks(rollbacks, timezone)

    chosen = [
        finding
        for finding in found
        if (not query.kinds or finding.kind in query.kinds) and finding.score >= query.min_score
    ]
    chosen.sort(key=lambda finding: (-finding.score, finding.meter_id, finding.kind))
    return chosen[: query.limit]


def meter_places(session: Session, meter_ids: Iterable[str]) -> dict[str, MeterPlace]:
    """The meter assets behind the readings' meter ids (a reading of an unknown id has none)."""
    rows = session.execute(
        sa.select(
            Meter.public_id,
            Meter.serial,
            Meter.customer_account,
            Meter.service_address,
            sa.func.ST_X(Meter.geom),
            sa.func.ST_Y(Meter.geom),
        ).where(Meter.public_id.in_(set(meter_ids)))
    ).all()
    return {row[0]: MeterPlace(*row[1:]) for row in rows}
