"""What the benchmarks share: the scratch database of synthetic pipes, boxes that hold a given
number of them, starting and stopping servers, and percentiles.

The scratch database (`fieldline_bench`) holds pipes spread over a Helsinki-sized area, built by
one INSERT from hashed row numbers, so the network is the same on every run.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import psycopg
import requests
from psycopg import sql

from fieldline.gis.db import upgrade
from fieldline.gis.models import PIPE_MATERIALS

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


def create_database(db: str = BENCH_DB) -> None:
    """`db` made afresh (dropped first if it exists), with PostGIS and the migrations."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        name = sql.Identifier(db)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    with psycopg.connect(f"postgresql://localhost/{db}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    upgrade(f"postgresql+psycopg://localhost/{db}")


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
        # Kept from an earlier run, perhaps of an older schema: bring it to the current one.
        upgrade(BENCH_URL)
        print(f"load: skipped, {BENCH_DB} already holds {count:,} pipes (reused)", flush=True)
        return
    start = time.perf_counter()
    create_database()
    phases = load_pipes(count)
    detail = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
    print(f"load: {count:,} pipes in {time.perf_counter() - start:.1f} s ({detail})", flush=True)


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


def bbox_size(
    conn: psycopg.Connection[Any], extent: Extent, pipes: int, target: int, samples: int = 20
) -> tuple[float, float]:
    """A box square on the ground that holds about `target` pipes on average.

    Sized from the mean density first; pipes crossing the edges add to that, so the size is
    then corrected against actual counts at `samples` positions.
    """
    m_lat, m_lon_eq = wgs84_metres_per_degree((extent.min_lat + extent.max_lat) / 2)
    m_lon = m_lon_eq * math.cos(math.radians((extent.min_lat + extent.max_lat) / 2))
    side_m = math.sqrt(target / (pipes / extent.area) * m_lat * m_lon)
    size = (side_m / m_lon, side_m / m_lat)
    rng = random.Random(1)
    centres = [extent.random_point(rng, size) for _ in range(samples)]
    for _ in range(5):
        mean = statistics.fmean(count_in_bbox(conn, bbox_text(c, size)) for c in centres)
        if abs(mean - target) < 0.01 * target:
            break
        scale = math.sqrt(target / mean)
        size = (size[0] * scale, size[1] * scale)
    return size


def bbox_positions(
    conn: psycopg.Connection[Any],
    extent: Extent,
    size: tuple[float, float],
    accept: tuple[int, int],
    count: int,
) -> list[str]:
    """`count` boxes of `size`, each holding a number of pipes within `accept`."""
    rng = random.Random(2)
    boxes: list[str] = []
    for _ in range(50 * count):
        candidate = bbox_text(extent.random_point(rng, size), size)
        if accept[0] <= count_in_bbox(conn, candidate) <= accept[1]:
            boxes.append(candidate)
            if len(boxes) == count:
                return boxes
    raise RuntimeError(f"too few boxes hold {accept[0]}-{accept[1]} pipes")


# --- server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(
    url: str, server: subprocess.Popen[bytes], timeout_s: float, name: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{name} exited with code {server.returncode}")
        # A worker may still be importing when it accepts the first connection.
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            if requests.get(url, timeout=5).ok:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready after {timeout_s:.0f} s")


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
def running(
    command: Sequence[str],
    env: dict[str, str],
    ready_path: str,
    port: int,
    name: str,
    stderr: IO[bytes] | None = None,
) -> Iterator[str]:
    """Start a server listening on 127.0.0.1:`port`; yields its base URL once `ready_path`
    answers, and always stops it (and its workers) on the way out."""
    # Own session: a Ctrl-C reaches only this script, which then stops the server itself.
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base + ready_path, server, timeout_s=60, name=name)
        yield base
    finally:
        stop(server)


@contextlib.contextmanager
def running_fieldline(env: dict[str, str]) -> Iterator[str]:
    """`fieldline serve` with `env` (FIELDLINE_DATABASE_URL and the like). Requests come as the
    local operator (FIELDLINE_ANONYMOUS_ROLE=admin unless `env` says otherwise)."""
    env = {"FIELDLINE_ANONYMOUS_ROLE": "admin", **env}
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
    with running(command, env, "/healthz", port, "fieldline serve") as base:
        yield base


def exit_on_sigterm() -> None:
    """Let a SIGTERM unwind through the finally blocks, so servers are stopped with us."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


# --- report -------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
