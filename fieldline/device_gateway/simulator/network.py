"""The fixture city's roads and pipes as graphs to route simulated crews on.

Geometry is kept in the utility's projected CRS (metres), so that distances, speeds and GPS
noise are all in metres; positions go back to WGS 84 only when a fix is written.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
from shapely import LineString, Point, STRtree

from fieldline.gis.crs import Crs, crs_from_srid, from_wgs84

WALKING_LIMIT_MPS = 1.5


@dataclass(frozen=True)
class Leg:
    """One edge of a route, oriented in the direction of travel."""

    line: LineString  # projected, metres
    limit_mps: float
    end: Any = None  # the node it leads to; None for the walk from a node to a site off the graph


class RouteGraph:
    """A directed graph of LineString edges; `route` gives the fastest legs between nodes."""

    def __init__(self, graph: nx.DiGraph, srid: int) -> None:
        self.graph = graph
        self.srid = srid  # of the edges' coordinates
        # Oneway streets leave a few nodes that can be entered but not left (or the reverse):
        # trips start and end only inside the largest strongly connected part, so every
        # trip has a way on and a way back.
        largest = max(nx.strongly_connected_components(graph), key=len)
        self.nodes: list[Any] = sorted(largest, key=str)
        self._node_index: STRtree | None = None
        # A pipe's public id -> its line (pipe graphs only): what a patrol follows.
        self.pipe_lines: dict[str, LineString] = {}

    @classmethod
    def roads(cls, path: Path, srid: int) -> RouteGraph:
        """Drivable roads: `source`/`target` node numbers, `oneway`, `maxspeed_kph`."""
        graph = nx.DiGraph()
        for _, props, line in _read_lines(path, srid):
            limit_mps = float(props["maxspeed_kph"]) / 3.6
            _add_edge(graph, props["source"], props["target"], line, limit_mps)
            if not props["oneway"]:
                _add_edge(graph, props["target"], props["source"], line.reverse(), limit_mps)
        return cls(graph, srid)

    @classmethod
    def pipes(cls, path: Path, srid: int) -> RouteGraph:
        """Pipes to walk along on patrol, in both directions, from node to node."""
        graph = nx.DiGraph()
        lines: dict[str, LineString] = {}
        for pipe_id, props, line in _read_lines(path, srid):
            if props.get("status") == "planned":
                continue  # not in the ground yet: nothing to patrol
            _add_edge(graph, props["from_node"], props["to_node"], line, WALKING_LIMIT_MPS)
            _add_edge(
                graph, props["to_node"], props["from_node"], line.reverse(), WALKING_LIMIT_MPS
            )
            lines[pipe_id] = line
        routes = cls(graph, srid)
        routes.pipe_lines = lines
        return routes

    def random_node(self, rng: random.Random) -> Any:
        return rng.choice(self.nodes)

    def route(self, start: Any, end: Any) -> list[Leg]:
        """The quickest legs from `start` to `end` (time at the speed limit)."""
        nodes = nx.shortest_path(self.graph, start, end, weight="time_s")
        return [
            Leg(self.graph.edges[a, b]["line"], self.graph.edges[a, b]["limit_mps"], b)
            for a, b in itertools.pairwise(nodes)
        ]

    def node_xy(self, node: Any) -> tuple[float, float]:
        _, _, edge = next(iter(self.graph.out_edges(node, data=True)))
        x, y = edge["line"].coords[0][:2]
        return x, y

    def nearest_node(self, x: float, y: float) -> Any:
        """The routable node closest to a point (where a crew leaves the graph for a site)."""
        if self._node_index is None:
            self._node_index = STRtree([Point(self.node_xy(node)) for node in self.nodes])
        return self.nodes[int(self._node_index.nearest(Point(x, y)))]

    def lines(self) -> list[LineString]:
        """Every edge once per direction: what a fix should lie near."""
        return [data["line"] for _, _, data in self.graph.edges(data=True)]


def _add_edge(graph: nx.DiGraph, a: Any, b: Any, line: LineString, limit_mps: float) -> None:
    time_s = line.length / limit_mps
    # Two parallel ways between the same nodes: a DiGraph keeps one, the quicker.
    if a == b or (graph.has_edge(a, b) and graph.edges[a, b]["time_s"] <= time_s):
        return
    graph.add_edge(a, b, line=line, limit_mps=limit_mps, time_s=time_s)


def _read_lines(path: Path, srid: int) -> list[tuple[str, dict[str, Any], LineString]]:
    crs = crs_from_srid(srid)
    collection = json.loads(path.read_text())
    return [
        (
            str(feature.get("id")),
            feature["properties"],
            _projected(feature["geometry"]["coordinates"], crs),
        )
        for feature in collection["features"]
    ]


def _projected(coordinates: list[list[float]], crs: Crs) -> LineString:
    line = from_wgs84(LineString(coordinates), crs)
    assert isinstance(line, LineString)
    return line
