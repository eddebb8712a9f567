"""Small networks for isolation tests, written as text, and an independent check of a trace.

The check works on the pipe graph itself with networkx (no segments): a valve is an edge
between a pipe and the node it sits at, so closing it removes that edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from fieldline.gis.isolation import (
    VALVE_ROLES,
    Isolation,
    NodeRow,
    PipeRow,
    ValveNetwork,
    ValveRow,
)


@dataclass
class Net:
    nodes: list[NodeRow]
    pipes: list[PipeRow]
    valves: list[ValveRow]

    def network(self) -> ValveNetwork:
        return ValveNetwork(self.nodes, self.pipes, self.valves)


def build(
    nodes: dict[str, str],
    pipes: Iterable[tuple[str, str, str, float]],
    valves: Iterable[tuple[str, str, str, str]] = (),
) -> Net:
    """`nodes` {name: kind}; `pipes` (name, from, to, length_m); `valves` (name, pipe, node,
    flags) where flags holds `c` for normally closed, `x` for inoperable, or a kind name.
    Node n sits at lon n/1000 on the equator line; a valve 1 m from its node along the pipe."""
    node_rows = [NodeRow(i + 1, name, kind) for i, (name, kind) in enumerate(nodes.items())]
    node_id = {row.public_id: row.id for row in node_rows}
    position = {row.public_id: (row.id / 1000, 0.0) for row in node_rows}
    pipe_rows = []
    for j, (name, a, b, length_m) in enumerate(pipes):
        (ax, ay), (bx, by) = position[a], position[b]
        pipe_rows.append(
            PipeRow(100 + j, name, node_id[a], node_id[b], length_m, (ax + bx) / 2, (ay + by) / 2)
        )
    pipe_id = {row.public_id: row for row in pipe_rows}
    valve_rows = []
    for k, (name, pipe, node, flags) in enumerate(valves):
        kind = next((word for word in flags.split() if word in VALVE_ROLES), "gate")
        x, y = position[node]
        valve_rows.append(
            ValveRow(
                1000 + k,
                name,
                pipe_id[pipe].id,
                node_id[node],
                kind,
                "c" not in flags.split(),
                "x" not in flags.split(),
                x,
                y + 1e-5,
            )
        )
    return Net(node_rows, pipe_rows, valve_rows)


def pipe_graph(
    nodes: Iterable[NodeRow],
    pipes: Iterable[PipeRow],
    valves: Iterable[ValveRow],
    closed: set[str],
) -> nx.MultiGraph:
    """Nodes and pipes (by public id) as vertices, pipe ends as edges; an end with a normally
    closed valve, or one in `closed`, left out. Valves not in line change nothing."""
    node_name = {row.id: row.public_id for row in nodes}
    graph = nx.MultiGraph()
    graph.add_nodes_from(("n", name) for name in node_name.values())
    shut = {
        (v.pipe, v.node)
        for v in valves
        if VALVE_ROLES[v.kind].in_line and (not v.normally_open or v.public_id in closed)
    }
    for pipe in pipes:
        graph.add_node(("p", pipe.public_id))
        for end in (pipe.from_node, pipe.to_node):
            if end is not None and (pipe.id, end) not in shut:
                graph.add_edge(("p", pipe.public_id), ("n", node_name[end]))
    return graph


def supplied_pipes(graph: nx.MultiGraph, nodes: Iterable[NodeRow]) -> set[str]:
    reached: set[tuple[str, str]] = set()
    for row in nodes:
        source = ("n", row.public_id)
        if row.kind in ("reservoir", "tank") and source not in reached:
            reached |= nx.node_connected_component(graph, source)
    return {vertex[1] for vertex in reached if vertex[0] == "p"}


class PipeGraphCheck:
    """What a trace claims, recomputed on the pipe graph:
    - with its valves closed, the broken pipe has no path to any source (unless a source is
      inside the area), and the isolated pipes are exactly the piece around it;
    - the pipes without supply are those supplied before that no longer are, outside the area;
    - every valve to close can be closed; every valve passed cannot."""

    def __init__(self, nodes: list[NodeRow], pipes: list[PipeRow], valves: list[ValveRow]):
        self.nodes = nodes
        self.graph = pipe_graph(nodes, pipes, valves, set())
        self.before = supplied_pipes(self.graph, nodes)
        self.valves = {row.public_id: row for row in valves}
        node_name = {row.id: row.public_id for row in nodes}
        pipe_name = {row.id: row.public_id for row in pipes}
        self.ends = {
            row.public_id: (("p", pipe_name[row.pipe]), ("n", node_name[row.node]))
            for row in valves
            if row.pipe in pipe_name and row.node in node_name
        }

    def check(self, result: Isolation) -> None:
        # Close the valves on the graph, look, and open them again.
        removed = []
        for valve in result.valves_to_close:
            a, b = self.ends[valve.public_id]
            count = self.graph.number_of_edges(a, b)
            self.graph.remove_edges_from([(a, b)] * count)
            removed.append((a, b, count))
        try:
            after = supplied_pipes(self.graph, self.nodes)
            piece = nx.node_connected_component(self.graph, ("p", result.pipe))
        finally:
            for a, b, count in removed:
                self.graph.add_edges_from([(a, b)] * count)
        if not result.sources_inside:
            assert result.pipe not in after, f"{result.pipe} still has a source after closing"
        area = {vertex[1] for vertex in piece if vertex[0] == "p"}
        assert set(result.isolated_pipes) == area
        assert set(result.dry_pipes) == (self.before - after) - area
        assert result.supplied_before == (result.pipe in self.before)
        for passed in result.passed_valves:
            row = self.valves[passed.public_id]
            assert not row.operable or not VALVE_ROLES[row.kind].shuttable
        for valve in result.valves_to_close:
            row = self.valves[valve.public_id]
            assert row.operable and row.normally_open and VALVE_ROLES[row.kind].shuttable


def check_trace(
    nodes: list[NodeRow], pipes: list[PipeRow], valves: list[ValveRow], result: Isolation
) -> None:
    PipeGraphCheck(nodes, pipes, valves).check(result)
