"""Valve isolation traces on a 100,000-pipe network: gis/isolation.py against WNTR's valve
segmentation, on the same network in the same run.

The network is generated (no database): a street grid over the Helsinki area (~85 m blocks)
thinned at random to the pipe count, so that it has loops, dead ends and a few cut-off parts;
four reservoirs and two tanks; a valve at each pipe end with a chance of 50 % (WNTR's 'random'
layer, at that density: segments of a few pipes, as in a city where valves are spared; an N-1
layer makes nearly every pipe its own segment), 5 % of them inoperable, 1 % normally closed.

  ours      `ValveNetwork` built once (segments, segment graph, hops to the sources), then
            `trace` for each sampled pipe: valves to close (widened through inoperable ones),
            isolated pipes, pipes left without supply, lengths. p50/p95 per trace.
  baseline  `wntr.metrics.topographic.valve_segments` on the same graph and valve layer. WNTR
            has no per-pipe trace: its segments come from one pass over the whole network, so
            a trace with WNTR costs that pass whenever the network has changed. The baseline
            is *per call* (one pass = one trace on a changed network); the amortised figure
            (one pass shared by every pipe) is printed too. WNTR gives the segment only: no
            widening through inoperable valves, no supply check.

Our segments are checked against WNTR's for every sampled pipe. WNTR's pass takes 13 minutes
at 100,000 pipes (it scans its valve table once per link): `--pipes` runs a smaller network.

Usage: python bench/bench_isolation.py [--pipes N] [--traces N] [--no-baseline]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
import warnings
from typing import Any

from common import exit_on_sigterm, ms, percentile, wgs84_metres_per_degree

from fieldline.gis.isolation import NodeRow, PipeRow, ValveNetwork, ValveRow

PIPES = 100_000
TRACES = 300
BLOCK_M = 85.0
ORIGIN = (24.80, 60.13)  # south-west corner, lon/lat
GOAL_P95_MS = 50.0
VALVE_CHANCE = 0.5  # per pipe end
SEED = 20261124


def generate(pipes: int, seed: int) -> tuple[list[NodeRow], list[PipeRow], list[ValveRow]]:
    rng = random.Random(seed)
    # A square grid with about 5 % more streets than pipes wanted, thinned at random.
    side = math.ceil((1 + math.sqrt(1 + 2 * pipes * 1.05)) / 2)
    m_lat, m_lon_eq = wgs84_metres_per_degree(ORIGIN[1])
    dlat = BLOCK_M / m_lat
    dlon = BLOCK_M / (m_lon_eq * math.cos(math.radians(ORIGIN[1])))

    def node_id(col: int, row: int) -> int:
        return row * side + col + 1

    def position(node: int) -> tuple[float, float]:
        row, col = divmod(node - 1, side)
        return ORIGIN[0] + col * dlon, ORIGIN[1] + row * dlat

    kinds = {node_id(c, r): "reservoir" for c, r in ((0, 0), (side - 1, 0), (0, side - 1))}
    kinds[node_id(side - 1, side - 1)] = "reservoir"
    kinds[node_id(side // 3, side // 2)] = kinds[node_id(2 * side // 3, side // 2)] = "tank"
    nodes = [NodeRow(i, f"N-{i:06d}", kinds.get(i, "junction")) for i in range(1, side * side + 1)]
    streets = [(node_id(c, r), node_id(c + 1, r)) for r in range(side) for c in range(side - 1)]
    streets += [(node_id(c, r), node_id(c, r + 1)) for r in range(side - 1) for c in range(side)]
    kept = sorted(rng.sample(range(len(streets)), pipes))
    pipe_rows = []
    for j, street in enumerate(kept, start=1):
        a, b = streets[street]
        (ax, ay), (bx, by) = position(a), position(b)
        pipe_rows.append(PipeRow(j, f"P-{j:06d}", a, b, BLOCK_M, (ax + bx) / 2, (ay + by) / 2))
    at_node: dict[int, list[PipeRow]] = {}
    for pipe in pipe_rows:
        for end in (pipe.from_node, pipe.to_node):
            at_node.setdefault(end or 0, []).append(pipe)
    valves = []
    for node in sorted(at_node):
        x, y = position(node)
        for pipe in at_node[node]:
            if rng.random() >= VALVE_CHANCE:
                continue
            k = len(valves) + 1
            valves.append(
                ValveRow(
                    k,
                    f"V-{k:06d}",
                    pipe.id,
                    node,
                    "gate",
                    rng.random() >= 0.01,
                    rng.random() >= 0.05,
                    x + (pipe.lon - x) * 0.05,  # a few metres into the pipe
                    y + (pipe.lat - y) * 0.05,
                )
            )
    return nodes, pipe_rows, valves


def wntr_segments(
    nodes: list[NodeRow], pipes: list[PipeRow], valves: list[ValveRow]
) -> tuple[Any, float]:
    """WNTR's link segments of the same network, and the seconds its one pass took."""
    import networkx as nx
    import pandas as pd
    import wntr

    names = {row.id: row.public_id for row in nodes}
    pipe_names = {row.id: row.public_id for row in pipes}
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(names.values())
    graph.add_edges_from(
        (names[p.from_node or 0], names[p.to_node or 0], p.public_id) for p in pipes
    )
    layer = pd.DataFrame(
        [(pipe_names[v.pipe or 0], names[v.node or 0]) for v in valves], columns=["link", "node"]
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, link_segments, _ = wntr.metrics.topographic.valve_segments(graph, layer)
    return link_segments, time.perf_counter() - start


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipes", type=int, default=PIPES)
    parser.add_argument("--traces", type=int, default=TRACES)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    nodes, pipes, valves = generate(args.pipes, SEED)
    print(
        f"network: {len(pipes):,} pipes, {len(nodes):,} nodes, {len(valves):,} valves"
        f" (generated in {time.perf_counter() - start:.1f} s)",
        flush=True,
    )
    start = time.perf_counter()
    network = ValveNetwork(nodes, pipes, valves)
    build_s = time.perf_counter() - start
    print(f"ours: segment graph built in {build_s * 1000:.0f} ms, {network.n_segments:,} segments")

    sample = random.Random(SEED + 1).sample([p.public_id for p in pipes], args.traces)
    network.trace(sample[0])  # first-call costs (imports, caches) out of the figures
    times, closed, dry = [], [], []
    for pipe in sample:
        start = time.perf_counter()
        result = network.trace(pipe)
        times.append((time.perf_counter() - start) * 1000)
        closed.append(len(result.valves_to_close))
        dry.append(len(result.dry_pipes))
    p50, p95 = statistics.median(times), percentile(times, 95)
    print(
        f"ours: {len(sample)} traces, p50 {ms(p50)} ms, p95 {ms(p95)} ms, max {ms(max(times))} ms;"
        f" valves to close median {statistics.median(closed):g} (max {max(closed)}),"
        f" pipes without supply median {statistics.median(dry):g} (max {max(dry)})"
    )
    if args.no_baseline:
        print(f"isolation_trace_p95_ms: ours {ms(p95)}, baseline -, ratio -")
        return 0 if p95 <= GOAL_P95_MS else 1

    print("baseline: WNTR valve_segments on the same network ...", flush=True)
    link_segments, wntr_s = wntr_segments(nodes, pipes, valves)
    members: dict[int, set[str]] = {}
    for link, segment in link_segments.items():
        members.setdefault(int(segment), set()).add(str(link))
    mismatches = sum(
        set(network.segment_pipes(p)) != members[int(link_segments[p])] for p in sample
    )
    per_call_ms = wntr_s * 1000
    print(
        f"baseline: one pass {wntr_s:.1f} s = {ms(per_call_ms)} ms per trace per call,"
        f" {ms(per_call_ms / len(pipes))} ms amortised over all {len(pipes):,} pipes;"
        f" segments agree on {len(sample) - mismatches}/{len(sample)} sampled pipes"
    )
    print(
        f"isolation_build_ms: ours {build_s * 1000:.0f}, baseline {per_call_ms:.0f},"
        f" ratio {build_s / wntr_s:.2g}"
    )
    print(
        f"isolation_trace_p95_ms: ours {ms(p95)}, baseline {ms(per_call_ms)},"
        f" ratio {p95 / per_call_ms:.2g}"
    )
    ok = p95 <= GOAL_P95_MS and mismatches == 0
    print(
        f"goal: p95 under {GOAL_P95_MS:g} ms, segments equal to WNTR's: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
