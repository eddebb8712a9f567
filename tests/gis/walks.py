"""Cases with the truth known by construction on the fixture city, for the trace-check tests.

The generator itself (tracks, the simulated receiver, the tricks, patrol planning over the
pipes) is fieldline/device_gateway/simulator/walks.py, so that the benchmark can use it
without importing tests; this module picks the fixture cases and says what a pass is.

The patrol area is the pipes around a point in Kaisaniemi, by the bay; the street left out is
Kaisaniemenranta, the pipes of the area within a street's width of that road. Where a case's
truth depends on how far a fix can count, REACH_M stands for it: the largest radius the
receiver's accuracy gives (2 x 15 m) plus three standard deviations of its error at a typical
accuracy of 7-8 m.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import shapely
from shapely import LineString

from fieldline.device_gateway.simulator.simulator import FIXTURE_CITY, LOCAL_SRID
from fieldline.device_gateway.simulator.walks import (
    PipeNetwork,
    Track,
    fling,
    record,
    shift,
    switch_off,
    walk_legs,
)
from fieldline.gis.coverage import PipeCoverage
from fieldline.gis.crs import crs_from_srid, from_wgs84, point_to_wgs84
from fieldline.gis.trace import Trace, TraceFix, TraceRules

__all__ = [
    "FOOT",
    "REACH_M",
    "SRID",
    "START",
    "VEHICLE",
    "WALK_MPS",
    "Patrol",
    "Track",
    "fling",
    "lonlat",
    "metres",
    "network",
    "passes",
    "patrol_case",
    "record",
    "shift",
    "switch_off",
    "walk",
    "walk_legs",
]

SRID = LOCAL_SRID
START = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
WALK_MPS = 1.4
FOOT = TraceRules(max_speed_mps=2.5)
VEHICLE = TraceRules(max_speed_mps=14.0)
REACH_M = 45.0
PASS_RATIO = 0.9

AREA_CENTRE = (24.9465, 60.1767)  # Kaisaniemi, by the bay
AREA_RADIUS_M = 220.0
STREET = "Kaisaniemenranta"
STREET_HALF_WIDTH_M = 25.0


@lru_cache(maxsize=1)
def network() -> PipeNetwork:
    return PipeNetwork.read(FIXTURE_CITY / "pipes.geojson", SRID)


def lonlat(x: float, y: float) -> tuple[float, float]:
    return point_to_wgs84(x, y, crs_from_srid(SRID))


def metres(lon: float, lat: float) -> tuple[float, float]:
    point = from_wgs84(shapely.Point(lon, lat), crs_from_srid(SRID))
    return point.x, point.y  # type: ignore[attr-defined]


@lru_cache(maxsize=8)
def road(name: str) -> LineString:
    """All stretches of the fixture road called `name`, in metres."""
    features = json.loads((FIXTURE_CITY / "roads.geojson").read_text())["features"]
    crs = crs_from_srid(SRID)
    lines = [
        from_wgs84(LineString(f["geometry"]["coordinates"]), crs)
        for f in features
        if f["properties"]["name"] == name
    ]
    return shapely.union_all(lines)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Patrol:
    """A patrol area, and the street of it that a crew may leave out."""

    area: frozenset[str]
    street: frozenset[str]

    def legs(self, skip_street: bool = False) -> list[tuple[str, LineString]]:
        """Every pipe of the area walked; with `skip_street` every one but the street's,
        never setting foot on it (the walker goes around)."""
        if skip_street:
            return list(_patrol(self.area - self.street, self.street))
        return list(_patrol(self.area, frozenset()))

    def street_legs(self) -> list[tuple[str, LineString]]:
        """The street's pipes alone, end to end (and back along its stubs)."""
        return list(_patrol(self.street, frozenset()))

    def out_of_reach(self, legs: Sequence[tuple[str, LineString]]) -> set[str]:
        """The street's pipes that walking `legs` never brings within REACH_M of most of
        their length: what a check must report as missed, whatever the noise."""
        net = network()
        near = shapely.union_all([line for _, line in legs]).buffer(REACH_M)
        return {
            i
            for i in self.street
            if net.lines[i].intersection(near).length < 0.5 * net.lines[i].length
        }


@lru_cache(maxsize=8)
def _patrol(ids: frozenset[str], avoid: frozenset[str]) -> tuple[tuple[str, LineString], ...]:
    return tuple(network().patrol(ids, avoid=avoid))


@lru_cache(maxsize=1)
def patrol_case() -> Patrol:
    net = network()
    cx, cy = metres(*AREA_CENTRE)
    centre = shapely.Point(cx, cy)
    area = frozenset(
        i
        for i, line in net.lines.items()
        if line.interpolate(0.5, normalized=True).distance(centre) <= AREA_RADIUS_M
    )
    corridor = road(STREET).buffer(STREET_HALF_WIDTH_M)
    street = frozenset(
        i for i in area if net.lines[i].intersection(corridor).length >= 0.8 * net.lines[i].length
    )
    return Patrol(area, street)


def walk(
    legs: Iterable[tuple[str, LineString]],
    seed: int,
    speed_mps: float = WALK_MPS,
    period_s: float = 1.0,
    stand_s: float = 0.0,
) -> tuple[Track, list[TraceFix]]:
    """The legs walked (or driven) at `speed_mps` from START, standing `stand_s` at the first
    leg's start before setting off, recorded once per `period_s`."""
    legs = list(legs)
    x, y = legs[0][1].coords[0][:2]
    track = walk_legs(Track(x, y).stand(stand_s), legs, speed_mps)
    return track, record(track, START, random.Random(seed), SRID, period_s)


def passes(trace: Trace, coverage: Sequence[PipeCoverage]) -> bool:
    """What a patrol check accepts: every pipe covered, and no sign of a spoofed position."""
    return not trace.jumps and all(c.ratio >= PASS_RATIO for c in coverage)
