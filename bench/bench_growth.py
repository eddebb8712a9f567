"""A crew's day of positions as the table grows: `crew_track` (what GET
/api/v1/crews/{id}/positions runs) against the raw SQL of the same rows, on a scratch database.

The scratch database (`fieldline_growth_bench`) gets the migrations, `--crews` crews and
`--rows` positions written straight into the daily partitions by INSERT ... SELECT from
generate_series, in batches: each crew on an 8-hour shift a day with a fix every 5 s (5,760
fixes a crew-day), every column filled as a handheld fills it, in arrival order (every crew's
fix of one moment, then the next moment's), day after day for as many days as the rows need.
Then ANALYZE, and crew-days picked at random from the whole days are read:

  ours      `crew_track(session, crew, day start, day end)`: the GeoJSON the API returns.
  baseline  the same rows by one SQL statement through psycopg (no objects, no GeoJSON).

Each crew-day is read once unmeasured (the cache warm for both), then three times each,
alternating; the median of all reads is printed, with the plan of the statement crew_track
sends (partitions scanned out of all, the index used).

With `--then M` the table is then filled on to M rows (further days) and measured again:
`crew_day_track_growth_ms` compares ours at M with ours at `--rows`. The database is dropped at
the end unless `--reuse`, which keeps it and starts the next run from it (filling on when it
holds fewer rows than asked).

Usage: python bench/bench_growth.py [--rows N] [--then M] [--crews N] [--samples N] [--reuse]
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from fieldline.gis.db import make_engine, make_sessionmaker, upgrade
from fieldline.local_services import ensure_database
from fieldline.server.telemetry.history import roll_up_day
from fieldline.server.telemetry.services import crew_track

DB = "fieldline_growth_bench"
URL = f"postgresql+psycopg://localhost/{DB}"
DSN = f"postgresql://localhost/{DB}"
ADMIN = "postgresql://localhost/postgres"

FIRST_DAY = date(2026, 1, 5)
SHIFT_START_H = 6
FIX_EVERY_S = 5
FIXES_PER_SHIFT = 8 * 3600 // FIX_EVERY_S  # 5,760
BATCH_ROWS = 1_000_000
# Measured on this machine (docs/scaling.md): table, key and GiST index, per row; the load
# needs room for WAL and the index rebuild on top.
BYTES_PER_ROW = 272
ROOM_FACTOR = 1.5

# Row i is crew i % crews at moment i / crews of the shifts laid end to end; a crew walks a
# loop of a few hundred metres around its own spot in the city.
FILL = """
INSERT INTO positions (crew_id, device, fix_time, lat, lon, acc_m, speed_mps, heading_deg,
                       alt_m, batt_pct, device_time, received_at)
SELECT crew_id, 'handheld', t, 60.15 + 0.13 * home_lat + 0.002 * sin(phase),
       24.82 + 0.36 * home_lon + 0.004 * cos(phase), 3 + (i %% 17), 1.2 + (i %% 7) * 0.5,
       (moment * 7 + k * 31) %% 360, 12 + (i %% 5), 100 - (moment %% %(per_shift)s) / 64.0,
       t + interval '1 second', t + interval '2 seconds'
FROM (
    SELECT i, k, moment, (%(crews)s::text[])[k + 1] AS crew_id,
           ((k * 0.6180339887) - floor(k * 0.6180339887)) AS home_lat,
           ((k * 0.3819660113) - floor(k * 0.3819660113)) AS home_lon,
           moment / 120.0 + k AS phase,
           %(first)s::timestamptz + make_interval(
               days => (moment / %(per_shift)s)::int,
               secs => %(shift_s)s + (moment %% %(per_shift)s) * %(every)s + k %% %(every)s
           ) AS t
    FROM (
        SELECT i, (i %% %(n)s)::int AS k, i / %(n)s AS moment
        FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS i
    ) AS slot
) AS fix
"""

BASELINE = """
SELECT device, fix_time, lat, lon, acc_m, speed_mps, heading_deg, alt_m, batt_pct,
       received_at, device_time
FROM positions
WHERE crew_id = %s AND fix_time >= %s AND fix_time < %s
ORDER BY fix_time, device
"""


def day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def days_for(rows: int, crews: int) -> int:
    return math.ceil(rows / (crews * FIXES_PER_SHIFT))


def stored(conn: psycopg.Connection[Any]) -> tuple[int, int] | None:
    """(crews, rows) the scratch database was filled with, from the comment it keeps."""
    row = conn.execute("SELECT obj_description('positions'::regclass, 'pg_class')").fetchone()
    if not row or not row[0] or not row[0].startswith("bench "):
        return None
    crews, rows = (int(part.split("=")[1]) for part in row[0].split()[1:])
    return crews, rows


def prepare(crews: int, reuse: bool) -> int:
    """A migrated scratch database with its crews; returns the positions it holds already."""
    if reuse:
        try:
            with psycopg.connect(DSN) as conn:
                found = stored(conn)
            if found and found[0] == crews:
                print(f"reusing {DB}: {found[1]:,} positions of {crews} crews")
                return found[1]
        except psycopg.Error:
            pass
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
    ensure_database(URL, report=lambda line: None)
    upgrade(URL)
    with psycopg.connect(DSN) as conn:
        conn.execute(
            "INSERT INTO crews (name) SELECT 'Growth crew ' || g FROM generate_series(1, %s) g",
            (crews,),
        )
        conn.execute(f"COMMENT ON TABLE positions IS 'bench crews={crews} rows=0'")
    return 0


def free_bytes() -> int:
    with psycopg.connect(ADMIN) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    path = Path(row[0]) if row else Path("/")
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_room(rows_to_add: int) -> None:
    """Stop, saying why, when the database's disk cannot take the rows."""
    need = int(rows_to_add * BYTES_PER_ROW * ROOM_FACTOR)
    free = free_bytes()
    if need > free:
        print(
            f"not enough disk for {rows_to_add:,} more positions: they need about "
            f"{need / 1e9:.1f} GB ({BYTES_PER_ROW} bytes a row, and room to build), and the "
            f"database's disk has {free / 1e9:.1f} GB free. Try fewer --rows.",
            file=sys.stderr,
        )
        sys.exit(1)


def fill(crews: int, have: int, want: int) -> float:
    """Positions `have` to `want`; returns rows per second, the index rebuild included."""
    if want <= have:
        return 0.0
    check_room(want - have)
    with psycopg.connect(DSN) as conn:
        names = [r[0] for r in conn.execute("SELECT public_id FROM crews ORDER BY id")]
        conn.execute(
            "SELECT fieldline_create_partitions('positions', %s, %s)",
            (FIRST_DAY, days_for(want, crews)),
        )
        conn.commit()
        began = time.perf_counter()
        # The GiST index is built once at the end, several times faster than row by row.
        conn.execute("DROP INDEX IF EXISTS ix_positions_geom")
        conn.commit()
        parameters = {
            "crews": names,
            "n": crews,
            "first": day_start(FIRST_DAY),
            "per_shift": FIXES_PER_SHIFT,
            "shift_s": SHIFT_START_H * 3600,
            "every": FIX_EVERY_S,
        }
        for lo in range(have, want, BATCH_ROWS):
            hi = min(lo + BATCH_ROWS, want)
            conn.execute(FILL, {**parameters, "lo": lo, "hi": hi})
            conn.execute(f"COMMENT ON TABLE positions IS 'bench crews={crews} rows={hi}'")
            conn.commit()
            rate = (hi - have) / (time.perf_counter() - began)
            print(f"  {hi:,} positions ({rate:,.0f} rows/s)", flush=True)
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("CREATE INDEX ix_positions_geom ON positions USING gist (geom)")
        conn.commit()
        seconds = time.perf_counter() - began
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("ANALYZE positions")
    return (want - have) / seconds


def table_size() -> tuple[int, int, int]:
    """Bytes of every positions partition with its indexes, rows, partitions."""
    with psycopg.connect(DSN) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(relid)), sum(c.reltuples)::bigint, count(*) "
            "FROM pg_partition_tree('positions') JOIN pg_class c ON c.oid = relid "
            "WHERE isleaf"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


@contextmanager
def statements_of(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM positions" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)


def plan_of(engine: sa.Engine, crew: str, day: date) -> str:
    """Which partitions and indexes crew_track's statement reads, from EXPLAIN ANALYZE."""
    sessions = make_sessionmaker(engine)
    with statements_of(engine) as seen, sessions() as session:
        crew_track(session, crew, day_start(day), day_start(day + timedelta(days=1)))
    statement, parameters = seen[0]
    with engine.connect() as connection:
        plan: Any = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
        ).scalar_one()
    scans: list[str] = []
    relations: set[str] = set()
    indexes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            relations.add(node["Relation Name"])
            scans.append(f"{node['Node Type']} on {node['Relation Name']}")
        if "Index Name" in node:
            indexes.append(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    _, _, partitions = table_size()
    return (
        f"{len(relations)} of {partitions} partitions read, {partitions - len(relations)} "
        f"pruned: {', '.join(scans)}; index {', '.join(indexes) or 'none'}; "
        f"{plan[0]['Execution Time']:.1f} ms in the server"
    )


def measure(crews: int, rows: int, samples: int, seed: int) -> float:
    """Median milliseconds of ours and the baseline over `samples` crew-days; prints them."""
    size, estimated, partitions = table_size()
    whole_days = rows // (crews * FIXES_PER_SHIFT)
    engine = make_engine(URL)
    sessions = make_sessionmaker(engine)
    with psycopg.connect(DSN) as conn:
        names = [r[0] for r in conn.execute("SELECT public_id FROM crews ORDER BY id")]
    pick = random.Random(seed)
    picked = [
        (pick.choice(names), FIRST_DAY + timedelta(pick.randrange(whole_days)))
        for _ in range(samples)
    ]
    ours: list[float] = []
    theirs: list[float] = []
    counts = set()
    with psycopg.connect(DSN) as raw:

        def run_ours(crew: str, day: date) -> int:
            with sessions() as session:
                body = crew_track(session, crew, day_start(day), day_start(day + timedelta(1)))
            return len(body["features"]) - 1  # the line first

        def run_baseline(crew: str, day: date) -> int:
            span = (day_start(day), day_start(day + timedelta(1)))
            return len(raw.execute(BASELINE, (crew, *span)).fetchall())

        for crew, day in picked:
            counts.add(run_baseline(crew, day))
            counts.add(run_ours(crew, day))
            for turn in range(6):
                first, second = (run_ours, ours), (run_baseline, theirs)
                call, into = first if turn % 2 == 0 else second
                began = time.perf_counter()
                call(crew, day)
                into.append((time.perf_counter() - began) * 1000)
    ours_ms, theirs_ms = statistics.median(ours), statistics.median(theirs)
    print(
        f"positions: {rows:,} rows ({estimated:,} by the planner's count) in {partitions} "
        f"partitions, {size / 1e9:.2f} GB with indexes ({size / max(rows, 1):.0f} bytes a row); "
        f"{crews} crews, {whole_days} whole days"
    )
    print(f"fixes in a crew-day: {sorted(counts)} (ours and baseline must agree)")
    print(f"plan: {plan_of(engine, picked[0][0], picked[0][1])}")
    print(
        f"crew_day_track_ms: ours {ours_ms:.1f}, baseline {theirs_ms:.1f}, ratio "
        f"{ours_ms / theirs_ms:.2f} ({rows:,} rows, median of {len(ours)} reads)",
        flush=True,
    )
    engine.dispose()
    return ours_ms


def time_rollup(crews: int) -> None:
    """One day thinned into the history, rolled back so that tracks stay detailed."""
    engine = make_engine(URL)
    with engine.connect() as connection:
        began = time.perf_counter()
        done = roll_up_day(connection, FIRST_DAY)
        seconds = time.perf_counter() - began
        connection.rollback()
    engine.dispose()
    print(
        f"note: rolling up one day ({done.fixes:,} fixes of {crews} crews into "
        f"{done.minutes:,} minutes) took {seconds:.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--then", type=int, default=None, help="fill on to this many, again")
    parser.add_argument("--crews", type=int, default=200)
    parser.add_argument("--samples", type=int, default=20, help="crew-days read")
    parser.add_argument("--reuse", action="store_true", help="keep the database, start from it")
    args = parser.parse_args()
    if args.rows < args.crews * FIXES_PER_SHIFT:
        parser.error(f"--rows must hold a whole day: at least {args.crews * FIXES_PER_SHIFT:,}")
    if args.then is not None and args.then <= args.rows:
        parser.error("--then must be more than --rows")
    have = prepare(args.crews, args.reuse)
    try:
        if have > args.rows:
            print(f"{DB} holds {have:,} positions, more than --rows: starting again")
            have = prepare(args.crews, reuse=False)
        check_room((args.then or args.rows) - have)  # before anything is written
        rate = fill(args.crews, have, args.rows)
        if rate:
            print(f"insert rate: {rate:,.0f} rows/s (GiST index rebuilt and ANALYZE included)")
        small = measure(args.crews, args.rows, args.samples, seed=1)
        time_rollup(args.crews)
        if args.then is not None:
            rate = fill(args.crews, args.rows, args.then)
            print(f"insert rate: {rate:,.0f} rows/s (GiST index rebuilt and ANALYZE included)")
            large = measure(args.crews, args.then, args.samples, seed=2)
            print(
                f"crew_day_track_growth_ms: ours {large:.1f}, baseline {small:.1f}, ratio "
                f"{large / small:.2f} (ours at {args.then:,} rows against ours at "
                f"{args.rows:,})"
            )
    finally:
        if not args.reuse:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB))
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
