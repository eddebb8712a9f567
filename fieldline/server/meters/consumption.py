"""What the meters' cumulative registers say: daily consumption, the least flow of each night,
roll-backs and the last reading.

PostgreSQL hands over each meter's readings of the window as two arrays (one GROUP BY along
the (meter_id, ts) key, no sort); numpy does the rest over all meters at once. Measured on
100,000 meters x 60 days (`bench/bench_meters.py`), this is about 2.5 times faster than doing
the interpolation in SQL with window functions, which is kept there as the baseline and the
check of the figures.

Consumption between two readings is spread evenly over the time between them, so a day's
consumption is the register interpolated at its closing midnight minus the one at its opening
midnight (local days, in FIELDLINE_TIMEZONE; a DST day has 23 or 25 hours); readings further
apart than FIELDLINE_METER_MAX_INTERVAL_H are not interpolated across, and a day without a
reading around each of its midnights is unknown. A register lower than the reading before (a
roll-back, a replaced meter) adds nothing: it is a finding of its own, never negative
consumption. So the register interpolated is the running sum of the rises between readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

_READINGS = """
SELECT meter_id,
       array_agg(extract(epoch FROM ts)::float8 ORDER BY ts) AS ts,
       array_agg(volume_m3 ORDER BY ts) AS volume_m3
FROM meter_readings
WHERE ts >= %(start)s AND ts < %(end)s
GROUP BY meter_id
"""

# One backward index step per meter (the key is meter_id, ts): no scan of the readings.
_LAST_READINGS = sa.text("""
SELECT m.public_id,
       (SELECT max(r.ts) FROM meter_readings AS r WHERE r.meter_id = m.public_id) AS last_ts
FROM meters AS m
""")

# Searching all meters' readings at once: (meter row << 42) + milliseconds since 1970 is one
# sorted int64 key (times to the year 2109, up to 2 million meters).
_SHIFT = 42


@dataclass(frozen=True)
class Readings:
    """Every meter's readings of a window, meter after meter, each meter's by time."""

    meter_ids: list[str]
    meter: np.ndarray  # the row (index in meter_ids) of each reading
    ts: np.ndarray  # seconds since 1970
    volume_m3: np.ndarray

    @property
    def key(self) -> np.ndarray:
        return (self.meter.astype(np.int64) << _SHIFT) + np.round(self.ts * 1000).astype(np.int64)

    @property
    def follows(self) -> np.ndarray:
        """Whether each reading has one before it of the same meter."""
        return np.r_[False, self.meter[1:] == self.meter[:-1]]

    def rise_m3(self) -> np.ndarray:
        """Each reading's rise over the one before; 0 for a meter's first and a roll-back."""
        rise = np.r_[0.0, np.diff(self.volume_m3)]
        rise[~self.follows] = 0.0
        return np.clip(rise, 0.0, None)


@dataclass(frozen=True)
class Daily:
    """Consumption per meter (rows) and local day (columns), NaN where unknown."""

    meter_ids: list[str]
    first_day: date
    used_m3: np.ndarray  # shape (meters, days)

    def day(self, column: int) -> date:
        return self.first_day + timedelta(days=column)


@dataclass(frozen=True)
class Nights:
    """Per meter and night, the least flow between two readings in the night hours (L/h) and
    the share of the night such readings cover; NaN where none."""

    meter_ids: list[str]
    first_day: date
    least_lph: np.ndarray
    covered: np.ndarray


@dataclass(frozen=True)
class Rollback:
    meter_id: str
    before_at: datetime
    before_m3: float
    at: datetime
    volume_m3: float


def midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, datetime.min.time(), ZoneInfo(timezone))


def load(session: Session, start: datetime, end: datetime) -> Readings:
    # psycopg's binary protocol: the arrays arrive as C doubles, not text to parse (2x).
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor(binary=True) as cursor:
        rows = cursor.execute(_READINGS, {"start": start, "end": end}).fetchall()
    counts = np.fromiter((len(row[1]) for row in rows), dtype=np.int64, count=len(rows))
    total = int(counts.sum())
    return Readings(
        meter_ids=[row[0] for row in rows],
        meter=np.repeat(np.arange(len(rows)), counts),
        ts=np.fromiter((t for row in rows for t in row[1]), dtype=float, count=total),
        volume_m3=np.fromiter((v for row in rows for v in row[2]), dtype=float, count=total),
    )


def registers_at(readings: Readings, times: np.ndarray, max_interval: timedelta) -> np.ndarray:
    """The register without roll-backs (the running sum of rises, from 0 at each meter's first
    reading of the window) of every meter at each of `times` (seconds since 1970), from the
    readings just before (prev_ts < time) and at or after it (time <= ts); NaN where there is
    no such pair or they are further apart than `max_interval`."""
    meters, n = len(readings.meter_ids), len(times)
    if not len(readings.ts):
        return np.full((meters, n), np.nan)
    rise = readings.rise_m3()
    used = np.cumsum(rise)
    key = readings.key
    rows = np.repeat(np.arange(meters), n)
    at = np.tile(times, meters)
    wanted = (rows.astype(np.int64) << _SHIFT) + np.round(at * 1000).astype(np.int64)
    after = np.searchsorted(key, wanted, side="left")
    inside = (after > 0) & (after < len(key))
    after = np.clip(after, 1, len(key) - 1)
    before = after - 1
    length = readings.ts[after] - readings.ts[before]
    inside &= (readings.meter[after] == rows) & (readings.meter[before] == rows)
    inside &= length <= max_interval.total_seconds()
    with np.errstate(invalid="ignore", divide="ignore"):
        value = used[after] - rise[after] * (readings.ts[after] - at) / length
    # A reading on the time itself is the register there, whatever came before it.
    on_time = np.searchsorted(key, wanted, side="left")
    exact = on_time < len(key)
    exact[exact] = key[on_time[exact]] == wanted[exact]
    value = np.where(exact, used[np.minimum(on_time, len(key) - 1)], value)
    return np.where(inside | exact, value, np.nan).reshape(meters, n)


def daily(
    readings: Readings, first_day: date, last_day: date, timezone: str, max_interval: timedelta
) -> Daily:
    """Consumption of each day from `first_day` to `last_day`: the register at its closing
    midnight minus the one at its opening midnight."""
    midnights = np.array(
        [
            midnight(first_day + timedelta(days=n), timezone).timestamp()
            for n in range((last_day - first_day).days + 2)
        ]
    )
    register = registers_at(readings, midnights, max_interval)
    return Daily(readings.meter_ids, first_day, np.diff(register, axis=1))


def nights(
    readings: Readings,
    first_day: date,
    last_day: date,
    timezone: str,
    hours: tuple[int, int],
    max_interval: timedelta,
) -> Nights:
    """For each night from `first_day` to `last_day` (the hours `hours` of that local day),
    the least flow of any interval between two readings inside it, at most `max_interval`
    long (a roll-back is no flow), and the share of the night those intervals cover."""
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    starts = np.array(
        [(midnight(d, timezone) + timedelta(hours=hours[0])).timestamp() for d in days]
    )
    ends = np.array([(midnight(d, timezone) + timedelta(hours=hours[1])).timestamp() for d in days])
    shape = (len(readings.meter_ids), len(days))
    least, covered = np.full(shape, np.inf), np.zeros(shape)
    i = np.flatnonzero(readings.follows)
    prev_ts, ts = readings.ts[i - 1], readings.ts[i]
    rise = readings.volume_m3[i] - readings.volume_m3[i - 1]
    night = np.searchsorted(starts, prev_ts, side="right") - 1
    ok = (night >= 0) & (ts - prev_ts <= max_interval.total_seconds()) & (rise >= 0)
    ok &= ts <= ends[np.clip(night, 0, None)]
    i, night, length = i[ok], night[ok], (ts - prev_ts)[ok]
    rows = readings.meter[i]
    np.minimum.at(least, (rows, night), rise[ok] * 1000 * 3600 / length)
    np.add.at(covered, (rows, night), length / (ends - starts)[night])
    seen = np.isfinite(least)
    return Nights(
        readings.meter_ids,
        first_day,
        np.where(seen, least, np.nan),
        np.where(seen, covered, np.nan),
    )


def rollbacks(readings: Readings, since: datetime, tolerance_m3: float) -> list[Rollback]:
    """Every reading from `since` on lower than the one before by more than the tolerance."""
    fall = np.r_[0.0, -np.diff(readings.volume_m3)]
    found = np.flatnonzero(
        readings.follows & (fall > tolerance_m3) & (readings.ts >= since.timestamp())
    )

    def at(index: int) -> datetime:
        return datetime.fromtimestamp(float(readings.ts[index]), UTC)

    return [
        Rollback(
            readings.meter_ids[readings.meter[i]],
            at(i - 1),
            float(readings.volume_m3[i - 1]),
            at(i),
            float(readings.volume_m3[i]),
        )
        for i in found.tolist()
    ]


def last_readings(session: Session) -> dict[str, datetime | None]:
    return {row.public_id: row.last_ts for row in session.execute(_LAST_READINGS)}
