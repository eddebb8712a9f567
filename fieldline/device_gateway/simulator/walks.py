"""GPS traces with the truth known, to test and measure the checks of gis/trace.py and
gis/coverage.py: a device carried along given lines (on foot or driven) or left standing,
measured by the simulated receiver of gps.py, and the tricks the checks must see through
(the phone switched off, a teleport, single wild fixes).

A `Track` is where the device truly is over time, in a projected CRS (metres); `record`
measures it once per period into `TraceFix`es in WGS 84. The tricks work on any list of
fixes, recorded or real. `PipeNetwork` reads the fixture city's pipes as a graph and plans
patrols over them: every pipe of a set walked, optionally keeping off some (a street left out,
walked around).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from pyproj import Geod
from shapely import LineString

from fieldline.device_gateway.simulator.gps import GpsReceiver
from fieldline.device_gateway.simulator.motion import Pose
from fieldline.gis.crs import crs_from_srid, from_wgs84, to_wgs84
from fieldline.gis.trace import TraceFix

Array = NDArray[np.float64]
_GEOD = Geod(ellps="WGS84")


class Track:
    """True positions over time: keyframes (seconds from the start, x, y) joined by motion at
    constant speed in between."""

    def __init__(self, x: float, y: float) -> None:
        self._t = [0.0]
        self._x = [float(x)]
        self._y = [float(y)]

    @property
    def seconds(self) -> float:
        """How long the track lasts so far."""
        return self._t[-1]

    @property
    def end(self) -> tuple[float, float]:
        return self._x[-1], self._y[-1]

    def go(self, line: LineString, speed_mps: float) -> Track:
        """Along `line` from its start at `speed_mps`; a track ending elsewhere first goes
        straight to that start at the same speed."""
        coords = np.asarray(line.coords, dtype=float)[:, :2]
        for x, y in coords:
            step = math.hypot(x - self._x[-1], y - self._y[-1])
            if step < 1e-6:
                continue
            self._t.append(self._t[-1] + step / speed_mps)
            self._x.append(float(x))
            self._y.append(float(y))
        return self

    def go_to(self, x: float, y: float, speed_mps: float) -> Track:
        return self.go(LineString([self.end, (x, y)]), speed_mps)

    def stand(self, seconds: float) -> Track:
        self._t.append(self._t[-1] + seconds)
        self._x.append(self._x[-1])
        self._y.append(self._y[-1])
        return self

    def position(self, seconds: Array) -> tuple[Array, Array]:
        t = np.asarray(self._t)
        return np.interp(seconds, t, self._x), np.interp(seconds, t, self._y)


def record(
    track: Track,
    start: datetime,
    rng: random.Random,
    srid: int,
    period_s: float = 1.0,
    device: str = "phone",
) -> list[TraceFix]:
    """One fix every `period_s` from `start` to the end of the track, as the receiver of
    gps.py reports it: drifting error, reported accuracy, rare wild fixes."""
    receiver = GpsReceiver(rng, drain_pct_per_h=0.0)
    seconds = np.arange(0.0, track.seconds + 1e-9, period_s)
    x, y = track.position(seconds)
    # Speed and course from the track half a second either side, as the receiver would.
    ahead_x, ahead_y = track.position(seconds + 0.5)
    behind_x, behind_y = track.position(seconds - 0.5)
    speeds = np.hypot(ahead_x - behind_x, ahead_y - behind_y)
    headings = np.degrees(np.arctan2(ahead_x - behind_x, ahead_y - behind_y)) % 360.0
    measured = []
    for s, px, py, speed, heading in zip(seconds, x, y, speeds, headings, strict=True):
        pose = Pose(float(px), float(py), float(speed), float(heading) if speed > 0 else None)
        measured.append(receiver.measure(pose, start + timedelta(seconds=float(s)), 0.0))
    lon, lat = _to_lonlat(
        srid, np.array([f.x for f in measured]), np.array([f.y for f in measured])
    )
    return [
        TraceFix(device, f.ts, float(lo), float(la), f.acc_m)
        for f, lo, la in zip(measured, lon, lat, strict=True)
    ]


def _to_lonlat(srid: int, x: Array, y: Array) -> tuple[Array, Array]:
    line = to_wgs84(LineString(np.column_stack((x, y))), crs_from_srid(srid))
    coords = np.asarray(line.coords)
    return coords[:, 0], coords[:, 1]


# --- tricks -------------------------------------------------------------------------------


def switch_off(fixes: Iterable[TraceFix], start: datetime, end: datetime) -> list[TraceFix]:
    """The phone off from `start` until `end`: no fixes in between."""
    return [f for f in fixes if not start <= f.t < end]


def shift(
    fixes: Iterable[TraceFix],
    start: datetime,
    east_m: float,
    north_m: float,
    end: datetime | None = None,
) -> list[TraceFix]:
    """The fixes from `start` (until `end`, or to the last) moved by an offset: a teleport
    to a far place where the trace goes on."""
    azimuth = math.degrees(math.atan2(east_m, north_m))
    distance = math.hypot(east_m, north_m)
    moved = []
    for fix in fixes:
        if fix.t >= start and (end is None or fix.t < end):
            lon, lat, _ = _GEOD.fwd(fix.lon, fix.lat, azimuth, distance)
            fix = replace(fix, lon=float(lon), lat=float(lat))
        moved.append(fix)
    return moved


def fling(
    fixes: Sequence[TraceFix], times: Collection[datetime], distance_m: float, rng: random.Random
) -> list[TraceFix]:
    """The fixes at `times` each thrown `distance_m` in a random direction: single wild
    fixes (multipath, a stale cell fix) that still claim their accuracy."""
    flung = []
    for fix in fixes:
        if fix.t in times:
            lon, lat, _ = _GEOD.fwd(fix.lon, fix.lat, rng.uniform(0.0, 360.0), distance_m)
            fix = replace(fix, lon=float(lon), lat=float(lat))
        flung.append(fix)
    return flung


# --- the fixture city's pipes -------------------------------------------------------------


@dataclass
class PipeNetwork:
    """Pipes in service as an undirected graph of their end nodes, lines in metres."""

    srid: int
    lines: dict[str, LineString]
    ends: dict[str, tuple[str, str]]
    graph: nx.MultiGraph

    @classmethod
    def read(cls, path: Path, srid: int) -> PipeNetwork:
        crs = crs_from_srid(srid)
        lines, ends = {}, {}
        graph = nx.MultiGraph()
        for feature in json.loads(path.read_text())["features"]:
            props = feature["properties"]
            if props.get("status") == "planned":
                continue
            pipe_id = str(feature["id"])
            line = from_wgs84(LineString(feature["geometry"]["coordinates"]), crs)
            assert isinstance(line, LineString)
            lines[pipe_id] = line
            ends[pipe_id] = (props["from_node"], props["to_node"])
            graph.add_edge(props["from_node"], props["to_node"], key=pipe_id, length=line.length)
        return cls(srid, lines, ends, graph)

    def wgs84(self, ids: Iterable[str]) -> dict[str, LineString]:
        crs = crs_from_srid(self.srid)
        return {i: to_wgs84(self.lines[i], crs) for i in ids}

    def length(self, ids: Iterable[str]) -> float:
        return sum(self.lines[i].length for i in ids)

    def oriented(self, pipe_id: str, start_node: str) -> tuple[LineString, str]:
        """The pipe's line walked from `start_node`, and the node it leads to."""
        a, b = self.ends[pipe_id]
        line = self.lines[pipe_id]
        return (line, b) if start_node == a else (line.reverse(), a)

    def patrol(
        self, ids: Collection[str], start_node: str | None = None, avoid: Collection[str] = ()
    ) -> list[tuple[str, LineString]]:
        """A walk along every pipe of `ids`, never along the pipes of `avoid`: the legs
        (pipe, line in walking order). Greedy: on along a pipe not yet walked from where the
        walker stands, else the shortest way to the nearest node that has one."""
        allowed = nx.MultiGraph()
        allowed.add_edges_from(
            (a, b, k, d) for a, b, k, d in self.graph.edges(keys=True, data=True) if k not in avoid
        )
        todo = set(ids) - set(avoid)
        pending: dict[str, set[str]] = {}
        for pipe_id in todo:
            for node in self.ends[pipe_id]:
                pending.setdefault(node, set()).add(pipe_id)
        node = start_node if start_node is not None else self.ends[min(todo)][0]
        legs: list[tuple[str, LineString]] = []

        def walk(pipe_id: str) -> None:
            nonlocal node
            line, node = self.oriented(pipe_id, node)
            legs.append((pipe_id, line))
            if pipe_id in todo:
                todo.discard(pipe_id)
                for end in self.ends[pipe_id]:
                    pending[end].discard(pipe_id)

        while todo:
            here = sorted(pending.get(node, ()))
            if here:
                walk(here[0])
                continue
            lengths, paths = nx.single_source_dijkstra(allowed, node, weight="length")
            target = min(
                (n for n, waiting in pending.items() if waiting and n in lengths),
                key=lambda n: (lengths[n], n),
                default=None,
            )
            if target is None:
                raise ValueError(f"pipes {sorted(todo)[:5]} cannot be reached")
            for a, b in itertools.pairwise(paths[target]):
                edges = allowed.get_edge_data(a, b)
                walk(min(edges, key=lambda k: (edges[k]["length"], k)))
        return legs


def walk_legs(track: Track, legs: Iterable[tuple[str, LineString]], speed_mps: float) -> Track:
    for _, line in legs:
        track.go(line, speed_mps)
    return track
