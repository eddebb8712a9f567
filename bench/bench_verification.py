"""Checking an 8-hour foot patrol against its pipes: the trace checks of gis/trace.py and
gis/coverage.py against a plain STRtree baseline, in the same run.

The patrol walks every pipe of the fixture city in service (989 pipes, ~28.5 km), in the
order a walker would (fieldline/device_gateway/simulator/walks.py: on along a pipe not yet
walked, else the shortest way to the nearest one), at the pace that takes 8 hours; the
simulated receiver records one fix a second (28,800 fixes) with its drifting error, reported
accuracy and rare wild fixes. No database: the fixes are handed over as columns, as a query
returns them.

  ours      `prepare` (project, drop wild fixes, flag jumps, gaps, speeding, stops) +
            `pipe_coverage` on every pipe (covered length, covered and missed parts as lines)
            + `visits` on 60 checkpoints (valves and hydrants on the pipes): the full evidence
  baseline  fixes projected to EPSG:3067, the route (the trace as a line) sampled every 5 m
            into a Shapely STRtree, each pipe sampled every 5 m, and the share of its samples
            within R of a route sample (`query(..., predicate="dwithin")`, all pipes' samples
            in one query): a coverage ratio per pipe and nothing else

Both are timed over several repetitions (median). Goal: ours under 300 ms and no slower than
1.5 times the baseline. Both coverages are printed; they should roughly agree.

Usage: python bench/bench_verification.py [--repeat N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from common import exit_on_sigterm, ms
from pyproj import Transformer

from fieldline.device_gateway.simulator.simulator import FIXTURE_CITY, LOCAL_SRID
from fieldline.device_gateway.simulator.walks import PipeNetwork, Track, record, walk_legs
from fieldline.gis.coverage import PipeCoverage, Visit, pipe_coverage, visits
from fieldline.gis.trace import Fixes, Trace, TraceRules, prepare

HOURS = 8
PERIOD_S = 1.0
CHECKPOINTS = 60
SAMPLE_M = 5.0  # the baseline's spacing along the route and along each pipe
RADIUS_M = 20.0  # the baseline's reach: what ours gives a fix of 10 m accuracy
FOOT = TraceRules(max_speed_mps=2.5)
GOAL_MS = 300.0
GOAL_RATIO = 1.5
SEED = 20261124
START = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)


@dataclass
class Patrol:
    fixes: Fixes
    pipes: dict[str, Any]  # WGS 84 lines
    checkpoints: dict[str, Any]  # WGS 84 points
    walked_m: float
    pace_mps: float


def build_patrol() -> Patrol:
    net = PipeNetwork.read(FIXTURE_CITY / "pipes.geojson", LOCAL_SRID)
    legs = net.patrol(net.lines)
    walked_m = sum(line.length for _, line in legs)
    pace = walked_m / (HOURS * 3600)
    x, y = legs[0][1].coords[0][:2]
    track = walk_legs(Track(x, y), legs, pace)
    fixes = record(track, START, random.Random(SEED), LOCAL_SRID, PERIOD_S, device="patrol")
    return Patrol(
        Fixes.of(fixes[: int(HOURS * 3600 / PERIOD_S)]),
        net.wgs84(sorted(net.lines)),
        checkpoints(set(net.lines)),
        walked_m,
        pace,
    )


def checkpoints(pipes: set[str]) -> dict[str, Any]:
    """Valves and hydrants on the patrolled pipes, evenly picked by id."""
    found = []
    for layer in ("valves", "hydrants"):
        collection = json.loads((FIXTURE_CITY / f"{layer}.geojson").read_text())
        for feature in collection["features"]:
            if feature["properties"].get("pipe") in pipes:
                found.append(
                    (str(feature["id"]), shapely.Point(feature["geometry"]["coordinates"]))
                )
    found.sort(key=lambda item: item[0])
    step = len(found) / CHECKPOINTS
    return dict(found[int(k * step)] for k in range(CHECKPOINTS))


# --- the two ways -------------------------------------------------------------------------


def ours(patrol: Patrol) -> tuple[Trace, list[PipeCoverage], list[Visit]]:
    trace = prepare(patrol.fixes, FOOT)
    return trace, pipe_coverage(trace, patrol.pipes), visits(trace, patrol.checkpoints)


_TO_METRES = Transformer.from_crs(4326, LOCAL_SRID, always_xy=True)


def baseline(patrol: Patrol) -> np.ndarray:
    """Per pipe, the share of its 5 m samples within RADIUS_M of a 5 m sample of the route."""
    order = np.argsort(patrol.fixes.t, kind="stable")
    x, y = _TO_METRES.transform(patrol.fixes.lon[order], patrol.fixes.lat[order])
    # Every 5 m along the route, by distance along it (shapely's line_interpolate_point walks
    # a line from its start for each point: quadratic on a line of 28,800 vertices).
    along_route = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))))
    at = np.arange(0.0, along_route[-1], SAMPLE_M)
    tree = shapely.STRtree(
        shapely.points(np.interp(at, along_route, x), np.interp(at, along_route, y))
    )

    lines = np.asarray(list(patrol.pipes.values()), dtype=object)
    coords = shapely.get_coordinates(lines)
    px, py = _TO_METRES.transform(coords[:, 0], coords[:, 1])
    lines = shapely.set_coordinates(lines.copy(), np.column_stack((px, py)))
    lengths = shapely.length(lines)
    counts = np.floor(lengths / SAMPLE_M).astype(int) + 1
    owner = np.repeat(np.arange(len(lines)), counts)
    along = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) * SAMPLE_M
    samples = shapely.line_interpolate_point(lines[owner], along)
    hit, _ = tree.query(samples, predicate="dwithin", distance=RADIUS_M)
    covered = np.zeros(len(samples), dtype=bool)
    covered[hit] = True
    return np.bincount(owner, weights=covered, minlength=len(lines)) / counts


# --- measuring ----------------------------------------------------------------------------


def timed(run: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    run()  # warm: transformers, caches
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def stages(patrol: Patrol, repeat: int) -> dict[str, float]:
    """Median milliseconds of each step of ours."""
    found: dict[str, list[float]] = {"prepare": [], "pipe_coverage": [], "visits": []}
    for _ in range(repeat):
        start = time.perf_counter()
        trace = prepare(patrol.fixes, FOOT)
        mid = time.perf_counter()
        pipe_coverage(trace, patrol.pipes)
        end = time.perf_counter()
        visits(trace, patrol.checkpoints)
        found["prepare"].append((mid - start) * 1000)
        found["pipe_coverage"].append((end - mid) * 1000)
        found["visits"].append((time.perf_counter() - end) * 1000)
    return {name: statistics.median(values) for name, values in found.items()}


def profile(patrol: Patrol, lines: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        ours(patrol)
    profiler.disable()
    print("profile of ours, 5 runs, by own time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeat", type=int, default=int(os.environ.get("BENCH_VERIFICATION_REPEAT", 9))
    )
    parser.add_argument("--profile", action="store_true", help="print cProfile's top lines")
    args = parser.parse_args(argv)
    exit_on_sigterm()

    start = time.perf_counter()
    patrol = build_patrol()
    print(
        f"patrol: {len(patrol.fixes.t):,} fixes ({HOURS} h at {PERIOD_S:.0f} s), "
        f"{patrol.walked_m / 1000:.1f} km walked at {patrol.pace_mps:.2f} m/s along "
        f"{len(patrol.pipes)} pipes, {len(patrol.checkpoints)} checkpoints; "
        f"built in {time.perf_counter() - start:.1f} s",
        flush=True,
    )

    ours_ms, (trace, coverage, found) = timed(lambda: ours(patrol), args.repeat)
    base_ms, ratios = timed(lambda: baseline(patrol), args.repeat)
    o, b = statistics.median(ours_ms), statistics.median(base_ms)
    print(f"verify_patrol_{HOURS}h_ms: ours {ms(o)}, baseline {ms(b)}, ratio {o / b:.2f}")
    detail = ", ".join(f"{name} {ms(v)}" for name, v in stages(patrol, args.repeat).items())
    print(f"ours by step (median ms): {detail}; repetitions: {args.repeat}")

    total = sum(c.length_m for c in coverage)
    ours_ratio = np.array([c.ratio for c in coverage])
    difference = np.abs(ours_ratio - ratios)
    print(
        f"coverage ours: {sum(c.covered_m for c in coverage) / total:.3f} of "
        f"{total / 1000:.1f} km, pipes >= 0.9: {(ours_ratio >= 0.9).sum()}/{len(coverage)}, "
        f"missed parts {sum(len(c.missed) for c in coverage)}"
    )
    print(
        f"coverage baseline: mean per pipe {ratios.mean():.3f}, "
        f"pipes >= 0.9: {(ratios >= 0.9).sum()}/{len(ratios)}; per pipe |ours - baseline| "
        f"median {np.median(difference):.3f}, max {difference.max():.3f}"
    )
    visited = sum(v.first_at is not None for v in found)
    print(
        f"trace: {trace.fixes:,} fixes kept, {trace.outliers} wild dropped, "
        f"{len(trace.jumps)} jumps, {len(trace.gaps)} gaps, {len(trace.stops)} stops; "
        f"checkpoints visited {visited}/{len(found)}"
    )
    print(f"goal ours < {GOAL_MS:.0f} ms: {'met' if o < GOAL_MS else 'MISSED'} ({ms(o)} ms)")
    verdict = "met" if o / b <= GOAL_RATIO else "MISSED"
    print(f"goal ratio <= {GOAL_RATIO}: {verdict} ({o / b:.2f})")
    if args.profile:
        profile(patrol, 25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
