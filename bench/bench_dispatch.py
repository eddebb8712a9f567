"""Road routing and batch dispatch on the fixture city, each against its simple baseline.

Builds a scratch database (`fieldline_bench_dispatch`) holding the fixture city (imported with
`fieldline import fixtures/city`), then:

  travel_to_200   one destination, 200 crews at random places on the roads, vehicle mode:
                  `routing.travel_to` and the crews ranked by it, against ranking them by
                  straight-line distance (ST_Distance on geography, one query); p50 and p95,
                  and how often the nearest crew by road is not the nearest in a straight
                  line (and the seconds that choosing by straight line then costs)
  batch_300x60    300 open tasks (10 of them in progress, pinned to a crew) for 60 crews of
                  at most 8 tasks and 8 hours each, on the roads' travel-time matrix
                  (`routing.travel_seconds`): the solver (`server/dispatch/batch.solve`)
                  against `greedy_nearest_first`, total travel and solve time (the goal is
                  at least 15 % less travel than greedy), the latest arrival at an urgent
                  task and when the last task is done

Places are drawn, seeded, on roads inside the largest part of the one-way road graph where
every junction can reach every other: the fixture's clipped edges leave a few one-way dead
ends from which no vehicle can leave, which would measure the clipping, not the routing.

Usage: python bench/bench_dispatch.py [--reuse] [--destinations N] [--exploration-level L]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import psycopg
import sqlalchemy as sa
from common import exit_on_sigterm, ms, percentile
from psycopg import sql
from shapely import LineString, from_wkb

from fieldline.gis import routing
from fieldline.gis.db import make_engine, upgrade
from fieldline.local_services import ensure_database
from fieldline.server.dispatch.batch import Crew, Plan, Task, greedy_nearest_first, solve

DB = "fieldline_bench_dispatch"
ADMIN_DSN = "postgresql://localhost/postgres"
DSN = f"postgresql://localhost/{DB}"
URL = f"postgresql+psycopg://localhost/{DB}"
CITY = Path(__file__).resolve().parent.parent / "fixtures" / "city"

CREWS = 200
BATCH_CREWS, BATCH_TASKS, PINNED = 60, 300, 10
MAX_TASKS = 8  # per crew in the batch
SHIFT_S = 8 * 3600  # and all done within 8 hours
PRIORITIES = ([1, 2, 3, 4], [10, 20, 30, 40])  # P1 .. P4 and their weights
SERVICE_MIN = [15, 30, 45, 60, 90]
GOAL_LESS_TRAVEL = 0.15
Point = tuple[float, float]


# --- scratch database ---------------------------------------------------------------------


def prepare_database(reuse: bool) -> None:
    if reuse and road_count() > 0:
        upgrade(URL)
        print(f"load: skipped, {DB} already holds the fixture city (reused)", flush=True)
        return
    start = time.perf_counter()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
    ensure_database(URL, report=lambda line: None)  # creates it with PostGIS and pgRouting
    upgrade(URL)
    env = os.environ | {"FIELDLINE_DATABASE_URL": URL}
    done = subprocess.run(
        [sys.executable, "-m", "fieldline.cli", "import", str(CITY)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"fieldline import failed:\n{done.stdout}{done.stderr}")
    print(f"load: fixture city into {DB} in {time.perf_counter() - start:.1f} s", flush=True)


def road_count() -> int:
    try:
        with psycopg.connect(DSN) as conn:
            row = conn.execute("SELECT count(*) FROM roads").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


# --- places on the roads ------------------------------------------------------------------


class Roads:
    """Roads a vehicle can leave again, to draw places on, weighted by length."""

    def __init__(self, conn: sa.Connection) -> None:
        rows = conn.execute(
            sa.text("SELECT source, target, oneway, length_m, ST_AsBinary(geom) FROM roads")
        ).all()
        graph = nx.DiGraph()
        for source, target, oneway, _, _ in rows:
            graph.add_edge(source, target)
            if not oneway:
                graph.add_edge(target, source)
        part = max(nx.strongly_connected_components(graph), key=len)
        kept = [r for r in rows if r[0] in part and r[1] in part]
        self.lines = [LineString(from_wkb(r[4]).coords) for r in kept]
        self.weights = [r[3] for r in kept]
        self.summary = (
            f"roads: {len(rows)}, {len(kept)} inside the largest strongly connected part "
            f"({len(part)} of {graph.number_of_nodes()} junctions)"
        )

    def places(self, rng: random.Random, count: int) -> list[Point]:
        lines = rng.choices(self.lines, weights=self.weights, k=count)
        points = [line.interpolate(rng.random(), normalized=True) for line in lines]
        return [(p.x, p.y) for p in points]


# --- travel_to against straight-line ranking ----------------------------------------------

STRAIGHT_RANKING = sa.text(
    "SELECT p.i - 1 FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]))"
    " WITH ORDINALITY AS p(lon, lat, i)"
    " ORDER BY ST_Distance(ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography,"
    "   ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)"
)


def by_road(conn: sa.Connection, crews: Sequence[Point], site: Point) -> list[int]:
    legs = routing.travel_to(conn, crews, site, "vehicle")
    seconds = {i: leg.seconds for i, leg in enumerate(legs) if leg is not None}
    return sorted(seconds, key=seconds.__getitem__)


def by_straight_line(conn: sa.Connection, crews: Sequence[Point], site: Point) -> list[int]:
    params = {
        "lons": [c[0] for c in crews],
        "lats": [c[1] for c in crews],
        "lon": site[0],
        "lat": site[1],
    }
    return [row[0] for row in conn.execute(STRAIGHT_RANKING, params)]


def bench_travel_to(conn: sa.Connection, roads: Roads, destinations: int) -> None:
    rng = random.Random(1)
    cases = [(roads.places(rng, CREWS), roads.places(rng, 1)[0]) for _ in range(destinations)]
    for crews, site in cases[:5]:  # warm-up
        by_road(conn, crews, site)
        by_straight_line(conn, crews, site)
    ours: list[float] = []
    baseline: list[float] = []
    differs, extra_s = 0, []
    for n, (crews, site) in enumerate(cases):
        sides = [(by_road, ours), (by_straight_line, baseline)]
        for rank, times in sides if n % 2 == 0 else sides[::-1]:
            start = time.perf_counter()
            rank(conn, crews, site)
            times.append((time.perf_counter() - start) * 1000)
        road_order, straight_order = by_road(conn, crews, site), by_straight_line(conn, crews, site)
        if road_order[0] != straight_order[0]:
            differs += 1
            legs = routing.travel_to(
                conn, [crews[road_order[0]], crews[straight_order[0]]], site, "vehicle"
            )
            best, chosen = legs
            if best is not None and chosen is not None:
                extra_s.append(chosen.seconds - best.seconds)
    for pct in (50, 95):
        mine, theirs = percentile(ours, pct), percentile(baseline, pct)
        print(
            f"travel_to_{CREWS}_p{pct}_ms: ours {ms(mine)}, baseline {ms(theirs)}, "
            f"ratio {mine / theirs:.2f}",
            flush=True,
        )
    mean_extra = statistics.fmean(extra_s) if extra_s else 0.0
    print(
        f"travel_to_{CREWS}_top1: nearest by road is not the nearest in a straight line for "
        f"{differs} of {len(cases)} destinations ({100 * differs / len(cases):.0f} %); the "
        f"straight-line pick then arrives {mean_extra:.0f} s later on average "
        f"(max {max(extra_s, default=0.0):.0f} s)",
        flush=True,
    )


# --- batch dispatch against greedy --------------------------------------------------------


def batch_problem(roads: Roads) -> tuple[list[Point], list[Crew], list[Task], dict[Any, list[Any]]]:
    rng = random.Random(2)
    places = roads.places(rng, BATCH_CREWS + BATCH_TASKS)
    crews = [Crew(f"crew-{c}", c, MAX_TASKS, SHIFT_S) for c in range(BATCH_CREWS)]
    tasks = [
        Task(
            f"task-{t}",
            BATCH_CREWS + t,
            rng.choice(SERVICE_MIN),
            rng.choices(*PRIORITIES)[0],
        )
        for t in range(BATCH_TASKS)
    ]
    pinned = {crews[i].id: [tasks[i].id] for i in range(PINNED)}
    return places, crews, tasks, pinned


def p1_arrivals(plan: Plan, tasks: Sequence[Task]) -> list[float]:
    return [plan.arrival_s[t.id] for t in tasks if t.priority == 1 and t.id in plan.arrival_s]


def finish_h(plan: Plan, tasks: Sequence[Task]) -> float:
    service = {t.id: t.service_min * 60 for t in tasks}
    return max(plan.arrival_s[t] + service[t] for t in plan.arrival_s) / 3600


def bench_batch(conn: sa.Connection, roads: Roads, exploration_level: int | None) -> None:
    places, crews, tasks, pinned = batch_problem(roads)
    start = time.perf_counter()
    matrix = routing.travel_seconds(conn, places, places, "vehicle")
    matrix_s = time.perf_counter() - start
    missing = sum(v is None for row in matrix for v in row)
    print(
        f"batch matrix: {len(places)} x {len(places)} road travel times in {matrix_s:.1f} s "
        f"({missing} pairs without a way)",
        flush=True,
    )
    start = time.perf_counter()
    options = {} if exploration_level is None else {"exploration_level": exploration_level}
    ours = solve(crews, tasks, matrix, pinned, **options)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    greedy = greedy_nearest_first(crews, tasks, matrix, pinned)
    greedy_s = time.perf_counter() - start
    for plan in (ours, greedy):
        if plan.unassigned:
            raise RuntimeError(f"{len(plan.unassigned)} tasks left unassigned")
    ratio = ours.travel_s / greedy.travel_s
    name = f"batch_{BATCH_TASKS}x{BATCH_CREWS}"
    print(
        f"{name}_travel_h: ours {ours.travel_s / 3600:.2f}, baseline "
        f"{greedy.travel_s / 3600:.2f}, ratio {ratio:.2f}",
        flush=True,
    )
    print(
        f"{name}_solve_s: ours {ours_s:.2f}, baseline {greedy_s:.3f}, "
        f"ratio {ours_s / greedy_s:.0f}",
        flush=True,
    )
    ours_p1, greedy_p1 = p1_arrivals(ours, tasks), p1_arrivals(greedy, tasks)
    print(
        f"{name}_p1_arrival_max_min: ours {max(ours_p1) / 60:.1f}, baseline "
        f"{max(greedy_p1) / 60:.1f}, ratio {max(ours_p1) / max(greedy_p1):.2f} "
        f"({len(ours_p1)} urgent tasks)",
        flush=True,
    )
    ours_h, greedy_h = finish_h(ours, tasks), finish_h(greedy, tasks)
    print(
        f"{name}_last_task_done_h: ours {ours_h:.2f}, baseline {greedy_h:.2f}, "
        f"ratio {ours_h / greedy_h:.2f}",
        flush=True,
    )
    verdict = "met" if ratio <= 1 - GOAL_LESS_TRAVEL else "NOT met"
    print(
        f"goal: at least {GOAL_LESS_TRAVEL:.0%} less travel than greedy: "
        f"{1 - ratio:.0%} less, {verdict}",
        flush=True,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help=f"keep {DB} if it holds the city")
    parser.add_argument("--destinations", type=int, default=200)
    parser.add_argument(
        "--exploration-level", type=int, default=None, help="VROOM's (0-5); default: solve's"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    exit_on_sigterm()
    args = parse_args(argv)
    start = time.perf_counter()
    prepare_database(args.reuse)
    engine = make_engine(URL)
    try:
        with engine.connect() as conn:
            roads = Roads(conn)
            print(f"machine: {os.cpu_count()} cores; {roads.summary}", flush=True)
            bench_travel_to(conn, roads, args.destinations)
            bench_batch(conn, roads, args.exploration_level)
    finally:
        engine.dispose()
    print(f"total: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
