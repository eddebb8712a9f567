"""The position history: crews' tracks kept for years at a fix a minute.

Each UTC day of positions older than FIELDLINE_POSITIONS_DETAIL_DAYS is rolled up, oldest first,
into `position_history` (one row per crew, device and minute: the minute's last fix and how many
fixes it stands for) and recorded in `position_rollups`. Prune drops a day's detailed positions
only once that day is recorded, and crews' tracks are read from the history for the days before
the newest recorded one. Rolling a day up again writes the same rows (an upsert that changes
nothing unless fixes of that day came in since), so every step may be repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

HISTORY = "position_history"

# Days that hold positions: a daily partition's, or a day an old backlog put into DEFAULT.
POSITION_DAYS = """
SELECT day FROM (
    SELECT to_date(right(c.relname, 8), 'YYYYMMDD') AS day
    FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
    WHERE i.inhparent = CAST('positions' AS regclass) AND c.relname ~ '_p[0-9]{8}$'
    UNION
    SELECT DISTINCT (fix_time AT TIME ZONE 'UTC')::date FROM positions_default
    WHERE fix_time < :before_ts
) AS days
WHERE day < :before AND day NOT IN (SELECT day FROM position_rollups)
ORDER BY day
"""

# The minute's last fix is kept, not an average: it is a real measurement with its own
# accuracy, speed and heading, and a line through such points never cuts a corner the crew did
# not take. `fixes` says how many fixes of that device it stands for.
ROLL_UP_DAY = """
WITH thinned AS (
    SELECT DISTINCT ON (crew_id, device, minute)
        crew_id, device, minute, fix_time, count(*) OVER same_minute AS fixes,
        lat, lon, acc_m, speed_mps, heading_deg, alt_m, batt_pct
    FROM (
        SELECT crew_id, device, date_trunc('minute', fix_time, 'UTC') AS minute, fix_time,
               lat, lon, acc_m, speed_mps, heading_deg, alt_m, batt_pct
        FROM positions
        WHERE fix_time >= :start AND fix_time < :end
    ) AS day
    WINDOW same_minute AS (PARTITION BY crew_id, device, minute)
    ORDER BY crew_id, device, minute, fix_time DESC
), written AS (
    INSERT INTO position_history AS h (crew_id, device, minute, fix_time, fixes, lat, lon,
                                       acc_m, speed_mps, heading_deg, alt_m, batt_pct)
    SELECT * FROM thinned
    ON CONFLICT (crew_id, device, minute) DO UPDATE
    SET fix_time = excluded.fix_time, fixes = excluded.fixes, lat = excluded.lat,
        lon = excluded.lon, acc_m = excluded.acc_m, speed_mps = excluded.speed_mps,
        heading_deg = excluded.heading_deg, alt_m = excluded.alt_m, batt_pct = excluded.batt_pct
    WHERE (h.fix_time, h.fixes) IS DISTINCT FROM (excluded.fix_time, excluded.fixes)
)
SELECT coalesce(sum(fixes), 0) AS fixes, count(*) AS minutes FROM thinned
"""


@dataclass(frozen=True)
class Rollup:
    day: date
    fixes: int
    minutes: int


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def month_partition(connection: sa.Connection, day: date) -> str:
    """The history's partition for the month of `day`, made when missing. Named after the
    month's first day, as daily partitions are, so fieldline_drop_partitions drops it."""
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    name = f"{HISTORY}_p{first:%Y%m%d}"
    bounds = (day_start(first).isoformat(), day_start(following).isoformat())
    connection.execute(
        sa.text(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {HISTORY} "
            f"FOR VALUES FROM ('{bounds[0]}') TO ('{bounds[1]}')"
        )
    )
    return name


def pending_days(connection: sa.Connection, before: date) -> list[date]:
    """Days before `before` that hold positions and are not rolled up yet, oldest first."""
    return list(
        connection.execute(
            sa.text(POSITION_DAYS), {"before": before, "before_ts": day_start(before)}
        ).scalars()
    )


def roll_up_day(connection: sa.Connection, day: date) -> Rollup:
    """Thin one UTC day into the history and record it (in the caller's transaction)."""
    month_partition(connection, day)
    # The day's fixes are sorted by crew, device and minute: in memory up to a few
    # million rows rather than in temporary files.
    connection.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    row = connection.execute(
        sa.text(ROLL_UP_DAY), {"start": day_start(day), "end": day_start(day + timedelta(days=1))}
    ).one()
    connection.execute(
        sa.text(
            "INSERT INTO position_rollups (day, fixes, minutes) VALUES (:day, :fixes, :minutes) "
            "ON CONFLICT (day) DO UPDATE SET fixes = excluded.fixes, minutes = excluded.minutes, "
            "rolled_up_at = now()"
        ),
        {"day": day, "fixes": row.fixes, "minutes": row.minutes},
    )
    return Rollup(day, int(row.fixes), int(row.minutes))


def detail_cutoff(detail_days: int, today: date) -> date:
    """The first day whose positions stay in full detail."""
    return today - timedelta(days=detail_days)


def roll_up(connection: sa.Connection, detail_days: int, today: date) -> list[Rollup]:
    """Every pending day older than the detail days, oldest first, in the caller's
    transaction (the scheduler's job commits each day on its own instead)."""
    days = pending_days(connection, detail_cutoff(detail_days, today))
    return [roll_up_day(connection, day) for day in days]


def prunable_before(connection: sa.Connection, before: date) -> date:
    """How far positions may be pruned: up to `before`, but never a day not rolled up."""
    pending = pending_days(connection, before)
    return min(before, pending[0]) if pending else before


def prune_history(connection: sa.Connection, history_days: int, today: date) -> list[str]:
    """Drop the history's months that ended before its retention began (whole months only)."""
    before = (today - timedelta(days=history_days)).replace(day=1)
    return list(
        connection.execute(
            sa.text("SELECT fieldline_drop_partitions(CAST(:t AS regclass), 'minute', :b)"),
            {"t": HISTORY, "b": before},
        ).scalars()
    )


def history_until(connection: sa.Connection | Session) -> datetime | None:
    """Where the history ends and the detailed positions take over: the end of the newest
    day rolled up (None: nothing is)."""
    newest = connection.execute(sa.text("SELECT max(day) FROM position_rollups")).scalar()
    return day_start(newest + timedelta(days=1)) if newest else None
