"""An independent model of the fixture city's roads for checking routed times: the roads
file read with networkx, travel times computed by Dijkstra from the file's own attributes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import networkx as nx
from pyproj import Geod, Transformer
from shapely.geometry import LineString, Point

ROADS = Path(__file__).resolve().parents[3] / "fixtures" / "city" / "roads.geojson"
_GEOD = Geod(ellps="WGS84")
_TO_METRES = Transformer.from_crs(4326, 3067, always_xy=True)
_TO_WGS84 = Transformer.from_crs(3067, 4326, always_xy=True)
UNREACHABLE = float("inf")
# Fixes lie beside the road, as GPS fixes do: this far, and no other road within CLEAR_M.
OFFSET_M = 4.0
CLEAR_M = 10.0


@dataclass(frozen=True)
class Spot:
    """Beside the middle of a two-way road (OFFSET_M away): reachable along it both ways."""

    road: str
    source: int
    target: int
    length_m: float
    maxspeed_kph: float
    point: tuple[float, float]  # lon, lat


class RoadModel:
    def __init__(self, vehicle_speed_factor: float, walk_speed_mps: float) -> None:
        self.factor, self.walk_mps = vehicle_speed_factor, walk_speed_mps
        self.vehicle, self.foot = nx.DiGraph(), nx.DiGraph()
        self.spots: list[Spot] = []
        features = json.loads(ROADS.read_text())["features"]
        lines = [
            LineString([_TO_METRES.transform(*c) for c in f["geometry"]["coordinates"]])
            for f in features
        ]
        for feature, line in zip(features, lines, strict=True):
            p = feature["properties"]
            a, b, length = p["source"], p["target"], p["length_m"]
            self._add(self.vehicle, a, b, length / self._vehicle_mps(p["maxspeed_kph"]))
            if not p["oneway"]:
                self._add(self.vehicle, b, a, length / self._vehicle_mps(p["maxspeed_kph"]))
            for u, v in ((a, b), (b, a)):
                self._add(self.foot, u, v, length / walk_speed_mps)
            if p["oneway"] or a == b:
                continue
            beside = _beside_middle(line)
            if all(other is line or other.distance(beside) > CLEAR_M for other in lines):
                point = _TO_WGS84.transform(beside.x, beside.y)
                self.spots.append(Spot(feature["id"], a, b, length, p["maxspeed_kph"], point))

    def _vehicle_mps(self, maxspeed_kph: float) -> float:
        return maxspeed_kph / 3.6 * self.factor

    @staticmethod
    def _add(graph: nx.DiGraph, u: int, v: int, seconds: float) -> None:
        if not graph.has_edge(u, v) or graph.edges[u, v]["seconds"] > seconds:
            graph.add_edge(u, v, seconds=seconds)

    def _half_s(self, spot: Spot, mode: str) -> float:
        """From the spot to either end of its road: the walk to the road, then half of it."""
        mps = self._vehicle_mps(spot.maxspeed_kph) if mode == "vehicle" else self.walk_mps
        return OFFSET_M / self.walk_mps + spot.length_m / 2 / mps

    def seconds_to(self, site: Spot, origins: list[Spot], mode: str) -> list[float]:
        """Quickest time from each origin spot to the site spot (origins on other roads)."""
        graph = self.vehicle if mode == "vehicle" else self.foot
        into: dict[int, float] = {}
        for end in (site.source, site.target):
            found = nx.single_source_dijkstra_path_length(
                graph.reverse(copy=False), end, weight="seconds"
            )
            for node, seconds in found.items():
                into[node] = min(into.get(node, UNREACHABLE), seconds + self._half_s(site, mode))
        return [
            self._half_s(o, mode)
            + min(into.get(o.source, UNREACHABLE), into.get(o.target, UNREACHABLE))
            for o in origins
        ]


def _beside_middle(line: LineString) -> Point:
    """The point OFFSET_M to the left of the middle of `line` (metres)."""
    middle = line.interpolate(0.5, normalized=True)
    ahead = line.interpolate(min(line.length, line.project(middle) + 0.5))
    behind = line.interpolate(max(0.0, line.project(middle) - 0.5))
    dx, dy = ahead.x - behind.x, ahead.y - behind.y
    norm = (dx * dx + dy * dy) ** 0.5
    return Point(middle.x - dy / norm * OFFSET_M, middle.y + dx / norm * OFFSET_M)


def straight_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(_GEOD.inv(a[0], a[1], b[0], b[1])[2])


@lru_cache(maxsize=4)
def road_model(vehicle_speed_factor: float, walk_speed_mps: float) -> RoadModel:
    return RoadModel(vehicle_speed_factor, walk_speed_mps)
