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
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import requests
from common import (
    BENCH_DB,
    BENCH_DSN,
    BENCH_URL,
    Extent,
    bbox_positions,
    bbox_size,
    count_pipes,
    exit_on_sigterm,
    ms,
    percentile,
    pipe_extent,
    prepare_database,
    running_fieldline,
)
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

from fieldline.gis.layers import LAYERS
from fieldline.gis.queries import select_features
from fieldline.server.assets.params import parse_feature_query
from fieldline.settings import Settings, load_settings

BBOX_TARGET = 1000
BBOX_ACCEPT = (900, 1100)
BBOX_LIMIT = 2000
BBOX_POSITIONS = 20
NEAREST_K = 5
NEAREST_WARMUP = 10
MIN_ITERATIONS = 20
GOAL_RATIO = 1.5
PIPES = LAYERS["pipes"]


# --- workloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    warmup: list[dict[str, str]]  # query strings run before timing, once on each side
    timed: list[dict[str, str]]  # query strings in rotation while timing
    iterations: int


def bbox_workload(
    conn: psycopg.Connection[Any], extent: Extent, pipes: int, iterations: int
) -> Workload:
    size = bbox_size(conn, extent, pipes, BBOX_TARGET, BBOX_POSITIONS)
    boxes = bbox_positions(conn, extent, size, BBOX_ACCEPT, BBOX_POSITIONS)
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


# --- report -------------------------------------------------------------------------------


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
        with running_fieldline(env) as base, requests.Session() as http:
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
    exit_on_sigterm()
    args = parse_args(argv)
    start = time.perf_counter()
    prepare_database(args.pipes, args.reuse)
    benchmark(args)
    print(f"total: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
