"""The asset API against the raw SQL it runs, on a network of one million pipes.

Builds a scratch database (`fieldline_bench`), loads pipes over a Helsinki-sized area, starts
`fieldline serve` on it and times two workloads, each through HTTP (GeoJSON out) and, as the
baseline, the same query run directly with psycopg returning plain rows (ST_AsGeoJSON for the
geometry, the attributes as columns):

  assets_bbox_1000    GET /api/v1/assets/pipes?bbox=...&limit=2000, a box holding ~1,000 pipes
  assets_nearest_k5   GET /api/v1/assets/pipes?nearest=lon,lat&k=5

Usage: python bench/bench_assets_api.py [--reuse]

`--reuse` keeps the scratch database when it already holds the requested number of pipes.
The database is left in place afterwards; the server is always stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import requests
from psycopg import sql
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

from fieldline.gis.db import upgrade
from fieldline.gis.layers import LAYERS
from fieldline.gis.models import PIPE_MATERIALS
from fieldline.gis.queries import select_features
from fieldline.server.assets.params import parse_feature_query
from fieldline.settings import Settings, load_settings

BENCH_DB = "fieldline_bench"
ADMIN_DSN = "postgresql://localhost/postgres"
BENCH_DSN = f"postgresql://localhost/{BENCH_DB}"
BENCH_URL = f"postgresql+psycopg://localhost/{BENCH_DB}"

# The area pipes are spread over: roughly the city of Helsinki.
AREA = (24.80, 60.13, 25.20, 60.30)  # min lon, min lat, max lon, max lat
LENGTH_M = (20.0, 150.0)
YEARS = (1900, 2024)
DIAMETERS_MM = [110, 160, 200, 225, 250, 315, 400, 500, 630]
# Materials by the era a pipe was laid in: cast iron early, plastics late.
ERA_MATERIALS = {
    "early": ["cast_iron", "cast_iron", "steel"],  # before 1965
    "middle": ["ductile_iron", "asbestos_cement", "PVC"],  # 1965-1989
    "late": ["PE", "PE", "PVC", "ductile_iron"],  # 1990 on
}
DISTRICT_GRID = (4, 3)  # columns west to east, rows south to north
DISTRICTS = [
    "Lauttasaari",
    "Kamppi",
    "Kallio",
    "Herttoniemi",
    "Munkkiniemi",
    "Pasila",
    "Vallila",
    "Vuosaari",
    "Pitäjänmäki",
    "Käpylä",
    "Malmi",
    "Viikki",
]
assert all(m in PIPE_MATERIALS for era in ERA_MATERIALS.values() for m in era)
assert len(DISTRICTS) == DISTRICT_GRID[0] * DISTRICT_GRID[1]

# One statement builds every pipe; each u_k is a uniform draw in [0, 1) hashed from the row
# number, so the network is the same on every run and the insert needs no client round trips.
INSERT_PIPES = """
INSERT INTO pipes (geom, diameter_mm, material, install_year, depth_m, status, district)
SELECT
  ST_SetSRID(ST_MakeLine((ARRAY[
    ST_MakePoint(x0, y0),
    ST_MakePoint(x0 + step * sin(h1) / m_lon, y0 + step * cos(h1) / m_lat),
    ST_MakePoint(x0 + step * (sin(h1) + sin(h2)) / m_lon,
                 y0 + step * (cos(h1) + cos(h2)) / m_lat),
    ST_MakePoint(x0 + step * (sin(h1) + sin(h2) + sin(h3)) / m_lon,
                 y0 + step * (cos(h1) + cos(h2) + cos(h3)) / m_lat)
  ])[1:vertices]), 4326),
  (%(diameters)s::float8[])[1 + floor(u6 * cardinality(%(diameters)s::float8[]))::int],
  CASE
    WHEN year < 1965 THEN (%(early)s::text[])[1 + floor(u7 * cardinality(%(early)s::text[]))::int]
    WHEN year < 1990 THEN (%(middle)s::text[])[1 + floor(u7 * cardinality(%(middle)s::text[]))::int]
    ELSE (%(late)s::text[])[1 + floor(u7 * cardinality(%(late)s::text[]))::int]
  END,
  year,
  round((1.2 + 1.8 * u8)::numeric, 2)::float8,
  'in_service',
  (%(districts)s::text[])[1
    + least(floor((x0 - %(min_lon)s) / %(lon_span)s * %(columns)s), %(columns)s - 1)::int
    + %(columns)s * least(floor((y0 - %(min_lat)s) / %(lat_span)s * %(rows)s), %(rows)s - 1)::int]
FROM (
  SELECT
    %(min_lon)s + %(lon_span)s * u1 AS x0,
    %(min_lat)s + %(lat_span)s * u2 AS y0,
    %(m_per_deg_lon_eq)s * cos(radians(%(min_lat)s + %(lat_span)s * u2)) AS m_lon,
    %(m_per_deg_lat)s AS m_lat,
    2 + floor(3 * u3)::int AS vertices,
    (%(min_length)s + (%(max_length)s - %(min_length)s) * u4) / (1 + floor(3 * u3)) AS step,
    2 * pi() * u5 AS h1,
    2 * pi() * u5 + (u9 - 0.5) AS h2,
    2 * pi() * u5 + (u9 - 0.5) + (u10 - 0.5) AS h3,
    u6, u7, u8,
    %(first_year)s + floor((%(last_year)s - %(first_year)s) * sqrt(u11))::int AS year
  FROM (
    SELECT
      (hashint8extended(i, 1) & 2147483647) / 2147483648.0::float8 AS u1,
      (hashint8extended(i, 2) & 2147483647) / 2147483648.0::float8 AS u2,
      (hashint8extended(i, 3) & 2147483647) / 2147483648.0::float8 AS u3,
      (hashint8extended(i, 4) & 2147483647) / 2147483648.0::float8 AS u4,
      (hashint8extended(i, 5) & 2147483647) / 2147483648.0::float8 AS u5,
      (hashint8extended(i, 6) & 2147483647) / 2147483648.0::float8 AS u6,
      (hashint8extended(i, 7) & 2147483647) / 2147483648.0::float8 AS u7,
      (hashint8extended(i, 8) & 2147483647) / 2147483648.0::float8 AS u8,
      (hashint8extended(i, 9) & 2147483647) / 2147483648.0::float8 AS u9,
      (hashint8extended(i, 10) & 2147483647) / 2147483648.0::float8 AS u10,
      (hashint8extended(i, 11) & 2147483647) / 2147483648.0::float8 AS u11
    FROM generate_series(1, %(count)s::bigint) AS i
  ) AS uniform
) AS drawn
"""

# Indexes that back no constraint; dropped during the load and rebuilt from their own
# definitions, which is several times faster than maintaining them row by row.
SECONDARY_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = 'pipes'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""

BBOX_TARGET = 1000
BBOX_ACCEPT = (900, 1100)
BBOX_LIMIT = 2000
BBOX_POSITIONS = 20
NEAREST_K = 5
NEAREST_WARMUP = 10
MIN_ITERATIONS = 20
GOAL_RATIO = 1.5
PIPES = LAYERS["pipes"]


# --- scratch database ---------------------------------------------------------------------


def wgs84_metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of latitude, and of longitude at the equator's radius of curvature."""
    a, e2 = 6_378_137.0, 0.006_694_379_990_14
    sin2 = math.sin(math.radians(lat)) ** 2
    meridian = a * (1 - e2) / (1 - e2 * sin2) ** 1.5
    prime_vertical = a / math.sqrt(1 - e2 * sin2)
    return math.radians(meridian), math.radians(prime_vertical)


def load_parameters(count: int) -> dict[str, Any]:
    min_lon, min_lat, max_lon, max_lat = AREA
    m_lat, m_lon_eq = wgs84_metres_per_degree((min_lat + max_lat) / 2)
    return {
        "count": count,
        "min_lon": min_lon,
        "min_lat": min_lat,
        "lon_span": max_lon - min_lon,
        "lat_span": max_lat - min_lat,
        "m_per_deg_lat": m_lat,
        "m_per_deg_lon_eq": m_lon_eq,
        "min_length": LENGTH_M[0],
        "max_length": LENGTH_M[1],
        "first_year": YEARS[0],
        "last_year": YEARS[1] - 1,
        "diameters": [float(d) for d in DIAMETERS_MM],
        **ERA_MATERIALS,
        "districts": DISTRICTS,
        "columns": DISTRICT_GRID[0],
        "rows": DISTRICT_GRID[1],
    }


def count_pipes(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM pipes").fetchone()
    return int(row[0]) if row else 0


def existing_pipes() -> int | None:
    """Pipes in the scratch database, or None when it does not exist or is not migrated."""
    try:
        with psycopg.connect(BENCH_DSN) as conn:
            return count_pipes(conn)
    except psycopg.Error:
        return None


def create_database() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        name = sql.Identifier(BENCH_DB)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    upgrade(BENCH_URL)


def load_pipes(count: int) -> dict[str, float]:
    """Insert `count` pipes in one transaction; returns seconds per phase."""
    phases: dict[str, float] = {}
    with psycopg.connect(BENCH_DSN) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = conn.execute(SECONDARY_INDEXES).fetchall()
        with conn.transaction():
            for name, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            start = time.perf_counter()
            conn.execute(INSERT_PIPES, load_parameters(count))
            phases["insert"] = time.perf_counter() - start
            start = time.perf_counter()
            for _, definition in indexes:
                conn.execute(definition)
            phases["indexes"] = time.perf_counter() - start
        if conn.execute(SECONDARY_INDEXES).fetchall() != indexes:
            raise RuntimeError("rebuilt indexes differ from the migrated schema")
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        phases["vacuum analyze"] = time.perf_counter() - start
    return phases


def prepare_database(count: int, reuse: bool) -> None:
    if reuse and existing_pipes() == count:
        print(f"load: skipped, {BENCH_DB} already holds {count:,} pipes (--reuse)", flush=True)
        return
    start = time.perf_counter()
    create_database()
    phases = load_pipes(count)
    detail = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
    print(f"load: {count:,} pipes in {time.perf_counter() - start:.1f} s ({detail})", flush=True)


# --- workloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Extent:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @property
    def area(self) -> float:
        return (self.max_lon - self.min_lon) * (self.max_lat - self.min_lat)

    def random_point(self, rng: random.Random, margin: tuple[float, float]) -> tuple[float, float]:
        return (
            rng.uniform(self.min_lon + margin[0], self.max_lon - margin[0]),
            rng.uniform(self.min_lat + margin[1], self.max_lat - margin[1]),
        )


def pipe_extent(conn: psycopg.Connection[Any]) -> Extent:
    row = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
        " FROM (SELECT ST_Extent(geom) AS e FROM pipes) AS extent"
    ).fetchone()
    assert row is not None
    return Extent(*row)


def bbox_text(centre: tuple[float, float], size: tuple[float, float]) -> str:
    (lon, lat), (half_width, half_height) = centre, (size[0] / 2, size[1] / 2)
    corners = (lon - half_width, lat - half_height, lon + half_width, lat + half_height)
    return ",".join(f"{value:.6f}" for value in corners)


def count_in_bbox(conn: psycopg.Connection[Any], bbox: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pipes WHERE ST_Intersects(geom, ST_MakeEnvelope("
        "%s, %s, %s, %s, 4326))",
        [float(v) for v in bbox.split(",")],
    ).fetchone()
    return int(row[0]) if row else 0


def bbox_size(conn: psycopg.Connection[Any], extent: Extent, pipes: int) -> tuple[float, float]:
    """A box square on the ground that holds about BBOX_TARGET pipes on average.

    Sized from the mean density first; pipes crossing the edges add to that, so the size is
    then corrected against actual counts at sample positions.
    """
    m_lat, m_lon_eq = wgs84_metres_per_degree((extent.min_lat + extent.max_lat) / 2)
    m_lon = m_lon_eq * math.cos(math.radians((extent.min_lat + extent.max_lat) / 2))
    side_m = math.sqrt(BBOX_TARGET / (pipes / extent.area) * m_lat * m_lon)
    size = (side_m / m_lon, side_m / m_lat)
    rng = random.Random(1)
    centres = [extent.random_point(rng, size) for _ in range(BBOX_POSITIONS)]
    for _ in range(5):
        mean = statistics.fmean(count_in_bbox(conn, bbox_text(c, size)) for c in centres)
        if abs(mean - BBOX_TARGET) < 0.01 * BBOX_TARGET:
            break
        scale = math.sqrt(BBOX_TARGET / mean)
        size = (size[0] * scale, size[1] * scale)
    return size


def bbox_positions(
    conn: psycopg.Connection[Any], extent: Extent, size: tuple[float, float]
) -> list[str]:
    """BBOX_POSITIONS boxes, each holding a count within BBOX_ACCEPT."""
    rng = random.Random(2)
    boxes: list[str] = []
    for _ in range(50 * BBOX_POSITIONS):
        candidate = bbox_text(extent.random_point(rng, size), size)
        if BBOX_ACCEPT[0] <= count_in_bbox(conn, candidate) <= BBOX_ACCEPT[1]:
            boxes.append(candidate)
            if len(boxes) == BBOX_POSITIONS:
                return boxes
    raise RuntimeError(f"too few boxes hold {BBOX_ACCEPT[0]}-{BBOX_ACCEPT[1]} pipes")


@dataclass(frozen=True)
class Workload:
    name: str
    warmup: list[dict[str, str]]  # query strings run before timing, once on each side
    timed: list[dict[str, str]]  # query strings in rotation while timing
    iterations: int


def bbox_workload(
    conn: psycopg.Connection[Any], extent: Extent, pipes: int, iterations: int
) -> Workload:
    boxes = bbox_positions(conn, extent, bbox_size(conn, extent, pipes))
    params = [{"bbox": bbox, "limit": str(BBOX_LIMIT)} for bbox in boxes]
    return Workload(f"assets_bbox_{BBOX_TARGET}", params, params, iterations)


def nearest_workload(extent: Extent, iterations: int) -> Workload:
    rng = random.Random(3)
    points = [extent.random_point(rng, (0.0, 0.0)) for _ in range(NEAREST_WARMUP + iterations)]
    params = [{"nearest": f"{lon:.6f},{lat:.6f}", "k": str(NEAREST_K)} for lon, lat in points]
    return Workload(
        f"assets_nearest_k{NEAREST_K}", params[:NEAREST_WARMUP], params[NEAREST_WARMUP:], iterations
    )


# --- the two sides ------------------------------------------------------------------------


def api_url(base: str, params: dict[str, str]) -> str:
    # Built once per query string so the client's own URL encoding stays out of the timing.
    return f"{base}/api/v1/assets/pipes?" + "&".join(f"{k}={v}" for k, v in params.items())


def api_get(http: requests.Session, url: str) -> bytes:
    response = http.get(url)
    response.raise_for_status()
    return response.content


def api_statement(params: dict[str, str], settings: Settings) -> tuple[str, dict[str, Any]]:
    """The API's query for this query string as plain rows: the geometry as GeoJSON text
    (ST_AsGeoJSON), every attribute as a column. The API returns the same data, encoded."""
    query = parse_feature_query(PIPES, params, settings)
    statement, values = select_features(PIPES, query)
    compiled = statement.compile(dialect=psycopg_dialect())
    return str(compiled), compiled.construct_params(values)


def sql_fetch(conn: psycopg.Connection[Any], statement: tuple[str, dict[str, Any]]) -> list[Any]:
    return conn.execute(statement[0], statement[1]).fetchall()  # type: ignore[arg-type]


@dataclass
class Sides:
    """One callable per side, each taking the index of a query string in a list."""

    ours: Callable[[int], object]
    baseline: Callable[[int], object]


def make_sides(
    http: requests.Session,
    base: str,
    conn: psycopg.Connection[Any],
    params: Sequence[dict[str, str]],
    settings: Settings,
) -> Sides:
    urls = [api_url(base, p) for p in params]
    statements = [api_statement(p, settings) for p in params]
    return Sides(lambda i: api_get(http, urls[i]), lambda i: sql_fetch(conn, statements[i]))


def elapsed_ms(call: Callable[[int], object], index: int) -> float:
    start = time.perf_counter()
    call(index)
    return (time.perf_counter() - start) * 1000


def verify_bbox(
    http: requests.Session,
    base: str,
    conn: psycopg.Connection[Any],
    workload: Workload,
    settings: Settings,
) -> list[int]:
    """Features per response at every position; both sides must return the same rows."""
    counts = []
    for params in workload.timed:
        returned = json.loads(api_get(http, api_url(base, params)))["numberReturned"]
        rows = len(sql_fetch(conn, api_statement(params, settings)))
        if rows != returned:
            raise RuntimeError(f"bbox {params['bbox']}: API returned {returned}, SQL {rows}")
        if not BBOX_ACCEPT[0] <= returned <= BBOX_ACCEPT[1]:
            raise RuntimeError(
                f"bbox {params['bbox']} returned {returned} features, "
                f"outside {BBOX_ACCEPT[0]}-{BBOX_ACCEPT[1]}"
            )
        counts.append(returned)
    return counts


def warm_up(sides: Sides, count: int) -> float:
    """Run every warm-up query on both sides; returns the mean ms of one pair."""
    pairs = [elapsed_ms(sides.ours, i) + elapsed_ms(sides.baseline, i) for i in range(count)]
    return statistics.fmean(pairs)


def measure(sides: Sides, rotation: int, iterations: int) -> tuple[list[float], list[float]]:
    """Sequential pairs on the same query; which side goes first alternates, so neither
    always meets the cache state the other left behind."""
    ours: list[float] = []
    baseline: list[float] = []
    for n in range(iterations):
        index = n % rotation
        if n % 2:
            baseline.append(elapsed_ms(sides.baseline, index))
            ours.append(elapsed_ms(sides.ours, index))
        else:
            ours.append(elapsed_ms(sides.ours, index))
            baseline.append(elapsed_ms(sides.baseline, index))
    return ours, baseline


def affordable(requested: int, pair_ms: float, budget_s: float) -> int:
    return max(MIN_ITERATIONS, min(requested, int(budget_s * 1000 / pair_ms)))


def run_workload(
    http: requests.Session,
    base: str,
    conn: psycopg.Connection[Any],
    workload: Workload,
    settings: Settings,
    budget_s: float,
) -> tuple[list[float], list[float]]:
    warm = make_sides(http, base, conn, workload.warmup, settings)
    pair_ms = warm_up(warm, len(workload.warmup))
    iterations = affordable(workload.iterations, pair_ms, budget_s)
    if iterations < workload.iterations:
        print(
            f"{workload.name}: {iterations} of {workload.iterations} iterations fit the "
            f"{budget_s:.0f} s budget ({pair_ms:.0f} ms per pair)",
            flush=True,
        )
    timed = workload.timed[: min(iterations, len(workload.timed))]
    sides = make_sides(http, base, conn, timed, settings)
    return measure(sides, len(timed), iterations)


# --- server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(base: str, server: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"fieldline serve exited with code {server.returncode}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"{base}/healthz", timeout=1).ok:
                return
        time.sleep(0.2)
    raise RuntimeError(f"fieldline serve not healthy after {timeout_s:.0f} s")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    # The server runs in its own process group: make sure no worker outlives the master.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_server(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "fieldline.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # Own session: a Ctrl-C reaches only this script, which then stops the server itself.
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base, server, timeout_s=60)
        yield base
    finally:
        stop(server)


# --- report -------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def report(name: str, ours: Sequence[float], baseline: Sequence[float]) -> float:
    """Print p50 and p95 lines; returns the p50 ratio."""
    ratios = {}
    for pct in (50, 95):
        mine, theirs = percentile(ours, pct), percentile(baseline, pct)
        ratios[pct] = mine / theirs
        print(
            f"{name}_p{pct}_ms: ours {ms(mine)}, baseline {ms(theirs)}, ratio {ratios[pct]:.2f}",
            flush=True,
        )
    return ratios[50]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reuse", action="store_true", help=f"keep {BENCH_DB} if it already holds --pipes pipes"
    )
    parser.add_argument("--pipes", type=int, default=1_000_000)
    parser.add_argument("--bbox-iterations", type=int, default=200)
    parser.add_argument("--nearest-iterations", type=int, default=500)
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="timing budget per workload; fewer iterations if exceeded",
    )
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace) -> None:
    env = os.environ | {"FIELDLINE_DATABASE_URL": BENCH_URL, "FIELDLINE_LOG_LEVEL": "WARNING"}
    settings = load_settings(database_url=BENCH_URL, log_level="WARNING")
    with psycopg.connect(BENCH_DSN, autocommit=True) as conn:
        pipes = count_pipes(conn)
        extent = pipe_extent(conn)
        bbox = bbox_workload(conn, extent, pipes, args.bbox_iterations)
        nearest = nearest_workload(extent, args.nearest_iterations)
        with running_server(env) as base, requests.Session() as http:
            counts = verify_bbox(http, base, conn, bbox, settings)
            print(
                f"machine: {os.cpu_count()} cores; pipes loaded: {pipes:,}; features per bbox "
                f"response: {statistics.fmean(counts):.0f} mean ({min(counts)}-{max(counts)}) "
                f"over {len(counts)} positions; server: {settings.web_workers} workers x "
                f"{settings.web_threads} threads",
                flush=True,
            )
            ratios = {}
            for workload in (bbox, nearest):
                ours, baseline = run_workload(http, base, conn, workload, settings, args.budget)
                ratios[workload.name] = report(workload.name, ours, baseline)
    verdicts = ", ".join(
        f"{name} {ratio:.2f}x {'met' if ratio <= GOAL_RATIO else 'NOT met'}"
        for name, ratio in ratios.items()
    )
    print(f"goal: API p50 within {GOAL_RATIO}x of raw SQL: {verdicts}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    # Let a SIGTERM unwind through the finally blocks, so the server is stopped with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    args = parse_args(argv)
    start = time.perf_counter()
    prepare_database(args.pipes, args.reuse)
    benchmark(args)
    print(f"total: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
