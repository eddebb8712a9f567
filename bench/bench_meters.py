"""Meter anomalies over 100,000 meters x 60 days: the time of `find_anomalies` (what
`GET /api/v1/meters/anomalies` runs) and of each of its steps, on a scratch database.

The scratch database (`fieldline_meters_bench`) gets the migrations, `--meters` meter assets and
their register readings, `--every-min` apart (default one a day, at a time of day of the
meter's own), over `--days` days up to now, made by one INSERT from generate_series: about
0.3 m3 a day, none at night, with a weekly swing, and one meter in a hundred with a spike, one
in a hundred stuck. The baseline is set to `--days` minus the latest three, so every day is read.
It is dropped afterwards unless `--keep`.

  ours      `consumption.load` (each meter's readings as two arrays, one GROUP BY) and
            `consumption.daily` (numpy: the registers at the midnights), then the whole
            `find_anomalies`, twice.
  baseline  the same interpolation in SQL with window functions, one row per midnight
            aggregated into arrays; its days must equal ours (an independent check of both).

Usage: python bench/bench_meters.py [--meters N] [--days N] [--every-min N] [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from fieldline.gis.db import make_engine, make_sessionmaker, upgrade
from fieldline.local_services import ensure_database
from fieldline.server.meters import consumption
from fieldline.server.meters.findings import Judge, silent
from fieldline.server.meters.services import AnomalyQuery, find_anomalies, local_today
from fieldline.settings import load_settings

DB = "fieldline_meters_bench"
URL = f"postgresql+psycopg://localhost/{DB}"
ADMIN = "postgresql://localhost/postgres"

METERS = """
INSERT INTO meters (geom, serial, customer_account, service_address)
SELECT ST_SetSRID(ST_MakePoint(24.8 + (g %% 1000) * 0.0004, 60.13 + (g / 1000) * 0.0017), 4326),
       'BENCH' || g, 'CA-' || g, 'Benchmark street ' || g
FROM generate_series(1, %(meters)s) AS g
"""

# A household's register: 0.3 m3 a day, nothing from midnight to six (UTC+2), a weekly swing;
# meters numbered 0 mod 100 use 2 m3 more in the last two days, 1 mod 100 stop three days ago.
READINGS = """
INSERT INTO meter_readings (meter_id, ts, volume_m3)
SELECT m.public_id, r.at, 1000 + m.id + 0.3 * r.used + 0.03 * sin(r.used * 2 * pi() / 7)
       + CASE WHEN m.id %% 100 = 0 AND r.at > now() - interval '2 days' THEN 2 ELSE 0 END
FROM meters AS m
CROSS JOIN LATERAL (
    SELECT a.at, floor(l.u) + greatest(0, (l.u - floor(l.u) - 0.25) / 0.75) AS used
    FROM generate_series(0, %(days)s * 1440 / %(every_min)s) AS k,
    LATERAL (
        SELECT %(start)s + make_interval(
            mins => (k * %(every_min)s + (m.id * 37) %% %(every_min)s)::int) AS at
    ) AS a,
    LATERAL (
        SELECT (extract(epoch FROM CASE WHEN m.id %% 100 = 1
                                        THEN least(a.at, now() - interval '3 days')
                                        ELSE a.at END) + 7200) / 86400 AS u
    ) AS l
) AS r
WHERE r.at < now()
"""


def prepare(meters: int, days: int, every_min: int) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    ensure_database(URL, report=lambda line: None)
    upgrade(URL)
    start = datetime.now(UTC) - timedelta(days=days + 1)
    with psycopg.connect(f"postgresql://localhost/{DB}", autocommit=True) as conn:
        began = time.perf_counter()
        conn.execute(METERS, {"meters": meters})
        conn.execute(READINGS, {"start": start, "days": days + 1, "every_min": every_min})
        conn.execute("VACUUM ANALYZE meter_readings")
        conn.execute("VACUUM ANALYZE meters")
        (rows,) = conn.execute("SELECT count(*) FROM meter_readings").fetchone() or (0,)
        print(f"{meters} meters, {rows} readings made in {time.perf_counter() - began:.1f} s")


# The baseline: the same interpolation in SQL, with window functions (the running sum of the
# rises), `width_bucket` to find the midnights an interval holds, one row per midnight.
IN_SQL = """
WITH steps AS (
    SELECT meter_id, ts, volume_m3,
           lag(ts) OVER w AS prev_ts, lag(volume_m3) OVER w AS prev_m3
    FROM meter_readings
    WHERE ts >= %(start)s AND ts < %(end)s
    WINDOW w AS (PARTITION BY meter_id ORDER BY ts)
),
used AS (
    SELECT meter_id, ts, prev_ts, greatest(volume_m3 - prev_m3, 0) AS step_m3,
           sum(greatest(volume_m3 - prev_m3, 0)) OVER (PARTITION BY meter_id ORDER BY ts)
             AS used_m3,
           width_bucket(prev_ts, %(midnights)s::timestamptz[]) AS before,
           width_bucket(ts, %(midnights)s::timestamptz[]) AS after
    FROM steps
    WHERE prev_ts IS NOT NULL
)
SELECT u.meter_id,
       array_agg(u.before + k.k - 1) AS idx,
       array_agg(
           u.used_m3 - u.step_m3
             * extract(epoch FROM u.ts - (%(midnights)s::timestamptz[])[u.before + k.k])
             / extract(epoch FROM u.ts - u.prev_ts)
       ) AS used_m3
FROM used AS u
JOIN generate_series(1, %(most)s) AS k (k) ON k.k <= u.after - u.before
WHERE u.after > u.before AND u.ts - u.prev_ts <= %(gap)s
GROUP BY u.meter_id
"""


def in_sql(first_day, last_day, timezone: str, gap: timedelta) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """The baseline's daily consumption per meter id."""
    midnights = [
        consumption.midnight(first_day + timedelta(days=n), timezone)
        for n in range((last_day - first_day).days + 2)
    ]
    params = {
        "start": midnights[0] - gap,
        "end": midnights[-1] + gap,
        "midnights": midnights,
        "gap": gap,
        "most": math.ceil(gap / timedelta(hours=23)) + 1,
    }
    options = "-c timezone=UTC -c max_parallel_workers_per_gather=0"
    with psycopg.connect(f"postgresql://localhost/{DB}", options=options) as conn:
        rows = conn.execute(IN_SQL, params).fetchall()
    days: dict[str, np.ndarray] = {}
    for meter_id, idx, values in rows:
        register = np.full(len(midnights), np.nan)
        register[idx] = values
        days[meter_id] = np.diff(register)
    return days


def measure(days: int) -> None:
    settings = load_settings(database_url=URL, meter_baseline_days=days - 3, max_page_size=100_000)
    engine = make_engine(URL)
    now = datetime.now(UTC)
    today = local_today(now, settings.timezone)
    first_recent = today - timedelta(days=settings.meter_recent_days)
    first_day = first_recent - timedelta(days=settings.meter_baseline_days)
    last_day = today - timedelta(days=1)
    gap = timedelta(hours=settings.meter_max_interval_h)
    with make_sessionmaker(engine)() as session:
        steps: list[tuple[str, float]] = []

        def timed(name: str, call):  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            value = call()
            steps.append((name, time.perf_counter() - began))
            return value

        start = consumption.midnight(first_day, settings.timezone) - gap
        readings = timed("readings as arrays (SQL)", lambda: consumption.load(session, start, now))
        daily = timed(
            "daily consumption (numpy)",
            lambda: consumption.daily(readings, first_day, last_day, settings.timezone, gap),
        )
        judge = timed("baseline and z (numpy)", lambda: Judge(daily, days - 3, settings))
        timed("spike, drop, zero (numpy)", lambda: judge.spikes() + judge.drops())
        last = timed("last reading per meter (SQL)", lambda: consumption.last_readings(session))
        timed("no_readings", lambda: silent(last, now, settings))
        timed(
            "night flow (numpy)",
            lambda: consumption.nights(
                readings,
                last_day - timedelta(days=2),
                last_day,
                settings.timezone,
                settings.meter_night,
                timedelta(minutes=settings.meter_night_max_interval_min),
            ),
        )
        began = time.perf_counter()
        theirs = in_sql(first_day, last_day, settings.timezone, gap)
        baseline_s = time.perf_counter() - began
        nan = np.full(daily.used_m3.shape[1], np.nan)
        expected = np.array([theirs.get(meter_id, nan) for meter_id in daily.meter_ids])
        same = set(theirs) <= set(daily.meter_ids) and np.allclose(
            daily.used_m3, expected, atol=1e-6, equal_nan=True
        )
        ours_s = sum(seconds for name, seconds in steps[:2])
        print(
            f"meters daily consumption {len(daily.meter_ids)}x{days}: ours {ours_s:.2f} s, "
            f"baseline {baseline_s:.2f} s, ratio {ours_s / baseline_s:.2f} (same days: {same})"
        )
        for name, seconds in steps:
            print(f"  {name:32s} {seconds:7.2f} s")
        for attempt in (1, 2):
            began = time.perf_counter()
            found = find_anomalies(session, AnomalyQuery(limit=100_000), settings, now)
            took = time.perf_counter() - began
            kinds: dict[str, int] = {}
            for finding in found:
                kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
            print(f"find_anomalies run {attempt}: {took:.2f} s, {len(found)} findings {kinds}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--every-min", type=int, default=1440)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="the database a --keep run left")
    args = parser.parse_args()
    if not args.reuse:
        prepare(args.meters, args.days, args.every_min)
    try:
        measure(args.days)
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
