"""Our valve segments against WNTR's valve segmentation, an independent implementation, on the
example networks shipped with WNTR and valve layers WNTR generates.

Every link of the model (pipes, pumps and valves alike: WNTR's graph has them all) is a pipe
here, and every valve of the layer is an operable gate valve, so a trace isolates exactly the
broken pipe's segment (WNTR has no operability, so no widening to compare)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from fieldline.gis.isolation import NodeRow, PipeRow, ValveNetwork, ValveRow

wntr = pytest.importorskip("wntr")

NETWORKS = Path(wntr.__file__).parent / "library" / "networks"
LAYERS = [("strategic", 0), ("strategic", 1), ("strategic", 2), ("random", None)]


def our_network(model: Any, layer: Any) -> ValveNetwork:
    node_id = {name: i + 1 for i, name in enumerate(model.node_name_list)}
    nodes = [NodeRow(node_id[name], name, node.node_type.lower()) for name, node in model.nodes()]
    pipes = []
    link_id = {}
    for j, (name, link) in enumerate(model.links()):
        link_id[name] = 10_000 + j
        x, y = link.start_node.coordinates
        pipes.append(
            PipeRow(
                link_id[name],
                name,
                node_id[link.start_node_name],
                node_id[link.end_node_name],
                float(getattr(link, "length", 1.0)),
                float(x),
                float(y),
            )
        )
    valves = [
        ValveRow(k, f"V{k}", link_id[row.link], node_id[row.node], "gate", True, True, 0.0, 0.0)
        for k, row in enumerate(layer.itertuples())
    ]
    return ValveNetwork(nodes, pipes, valves)


@pytest.mark.parametrize("network", ["Net1", "Net2", "Net3", "ky4", "ky10"])
@pytest.mark.parametrize(("placement", "n"), LAYERS)
def test_segments_match_wntr_pipe_by_pipe(network: str, placement: str, n: int | None) -> None:
    model = wntr.network.WaterNetworkModel(str(NETWORKS / f"{network}.inp"))
    count = n if n is not None else model.num_pipes  # random: as many valves as pipes
    layer = wntr.network.generate_valve_layer(model, placement, count, seed=20261124)
    with warnings.catch_warnings():
        # WNTR warns and drops duplicates (a pipe looping on one node); that is its input.
        warnings.simplefilter("ignore", UserWarning)
        _, link_segments, sizes = wntr.metrics.topographic.valve_segments(model.to_graph(), layer)
    ours = our_network(model, layer)

    theirs: dict[int, set[str]] = {}
    for link, segment in link_segments.items():
        theirs.setdefault(int(segment), set()).add(str(link))
    assert ours.n_segments == len(sizes)
    for link, segment in link_segments.items():
        expected = theirs[int(segment)]
        assert set(ours.segment_pipes(str(link))) == expected, link
        trace = ours.trace(str(link))
        assert set(trace.isolated_pipes) == expected, link
        assert trace.passed_valves == ()
