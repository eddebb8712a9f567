"""Valve isolation on small hand-made networks, each result also checked on the pipe graph."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldline.gis.errors import InvalidField, NotFound
from fieldline.gis.isolation import Isolation
from tests.gis.isolation_networks import Net, PipeGraphCheck, build, check_trace


def trace(net: Net, pipe: str) -> Isolation:
    result = net.network().trace(pipe)
    check_trace(net.nodes, net.pipes, net.valves, result)
    return result


def closing(result: Isolation) -> list[str]:
    return sorted(v.public_id for v in result.valves_to_close)


# R feeds a loop A-B-C-D; the pipe B-C has a valve at each end.
LOOP = build(
    {"R": "reservoir", "A": "junction", "B": "junction", "C": "junction", "D": "junction"},
    [
        ("P-R", "R", "A", 100),
        ("P-AB", "A", "B", 50),
        ("P-BC", "B", "C", 60),
        ("P-CD", "C", "D", 70),
        ("P-DA", "D", "A", 80),
    ],
    [("V-B", "P-BC", "B", ""), ("V-C", "P-BC", "C", "")],
)


def test_a_loop_isolates_with_two_valves_and_leaves_nobody_dry() -> None:
    result = trace(LOOP, "P-BC")
    assert closing(result) == ["V-B", "V-C"]
    assert result.isolated_pipes == ("P-BC",)
    assert result.dry_pipes == ()
    assert result.isolated_length_m == 60
    assert result.dry_length_m == 0
    assert all(v.far_side_supplied for v in result.valves_to_close)
    assert result.supplied_before and result.sources_inside == ()


# R - A - B - C - D - E, a dead-end branch; valves on P-AB at A, P-BC at C, P-CD at D.
BRANCH_NODES = {
    "R": "reservoir",
    "A": "junction",
    "B": "junction",
    "C": "junction",
    "D": "junction",
    "E": "junction",
}
BRANCH_PIPES = [
    ("P-RA", "R", "A", 10),
    ("P-AB", "A", "B", 20),
    ("P-BC", "B", "C", 30),
    ("P-CD", "C", "D", 40),
    ("P-DE", "D", "E", 50),
]


def test_a_dead_end_branch_beyond_the_break_goes_dry() -> None:
    net = build(
        BRANCH_NODES,
        BRANCH_PIPES,
        [("V-A", "P-AB", "A", ""), ("V-C", "P-BC", "C", ""), ("V-D", "P-CD", "D", "")],
    )
    result = trace(net, "P-AB")
    assert closing(result) == ["V-A", "V-C"]
    assert result.isolated_pipes == ("P-AB", "P-BC")
    assert result.dry_pipes == ("P-CD", "P-DE")
    assert result.dry_length_m == 90
    assert result.total_length_m == 140
    assert {v.public_id: v.far_side_supplied for v in result.valves_to_close} == {
        "V-A": True,
        "V-C": False,
    }
    assert result.passed_valves == ()


def test_an_inoperable_valve_widens_the_trace_to_the_next_valves() -> None:
    net = build(
        BRANCH_NODES,
        BRANCH_PIPES,
        [("V-A", "P-AB", "A", ""), ("V-C", "P-BC", "C", "x"), ("V-D", "P-CD", "D", "")],
    )
    result = trace(net, "P-AB")
    assert closing(result) == ["V-A", "V-D"]
    assert [(v.public_id, v.reason) for v in result.passed_valves] == [("V-C", "inoperable")]
    assert result.isolated_pipes == ("P-AB", "P-BC", "P-CD")
    assert result.dry_pipes == ("P-DE",)


def test_a_check_valve_is_passed_like_an_inoperable_one_and_air_release_splits_nothing() -> None:
    net = build(
        BRANCH_NODES,
        BRANCH_PIPES,
        [
            ("V-A", "P-AB", "A", ""),
            ("V-C", "P-BC", "C", "check"),
            ("V-AR", "P-CD", "C", "air_release"),
            ("V-D", "P-CD", "D", ""),
        ],
    )
    result = trace(net, "P-AB")
    assert closing(result) == ["V-A", "V-D"]
    assert [(v.public_id, v.reason) for v in result.passed_valves] == [("V-C", "check valve")]
    assert "P-CD" in result.isolated_pipes


def test_a_normally_closed_valve_is_a_boundary_already() -> None:
    # A second source beyond the closed valve: a zone boundary between two supplies.
    nodes = BRANCH_NODES | {"T": "tank"}
    net = build(
        nodes,
        [*BRANCH_PIPES, ("P-ET", "E", "T", 5)],
        [("V-A", "P-AB", "A", ""), ("V-C", "P-BC", "C", "c"), ("V-D", "P-CD", "D", "")],
    )
    result = trace(net, "P-AB")
    assert closing(result) == ["V-A"]
    assert result.closed_valves == ("V-C",)
    assert result.isolated_pipes == ("P-AB", "P-BC")
    assert result.dry_pipes == ()
    # Beyond it, the tank's side is traced on its own.
    other = trace(net, "P-DE")
    assert closing(other) == ["V-D"]
    assert other.sources_inside == ("T",)


def test_pipes_fed_only_through_a_closed_valve_are_not_counted_as_newly_dry() -> None:
    net = build(
        BRANCH_NODES,
        BRANCH_PIPES,
        [("V-A", "P-AB", "A", ""), ("V-B", "P-BC", "B", ""), ("V-C", "P-CD", "C", "c")],
    )
    result = trace(net, "P-BC")
    assert closing(result) == ["V-B"]
    assert result.closed_valves == ("V-C",)
    assert result.dry_pipes == ()


def test_a_pipe_with_no_valves_up_to_the_source_shuts_the_source_in() -> None:
    net = build(BRANCH_NODES, BRANCH_PIPES, [("V-D", "P-CD", "D", "")])
    result = trace(net, "P-AB")
    assert closing(result) == ["V-D"]
    assert result.isolated_pipes == ("P-AB", "P-BC", "P-CD", "P-RA")
    assert result.sources_inside == ("R",)
    assert result.dry_pipes == ("P-DE",)


def test_valves_are_ordered_from_the_break() -> None:
    net = build(
        BRANCH_NODES,
        BRANCH_PIPES,
        [("V-A", "P-AB", "A", ""), ("V-E", "P-DE", "E", ""), ("V-B", "P-BC", "B", "")],
    )
    result = net.network().trace("P-CD", at=(0.0061, 0.0))  # near E
    assert [v.public_id for v in result.valves_to_close] == ["V-E", "V-B"]
    distances = [v.distance_m for v in result.valves_to_close]
    assert distances == sorted(distances) and distances[0] < 200


def test_a_valve_inside_one_segment_is_not_closed() -> None:
    # V-AB at A on P-AB; but B is also joined to A through P-AB2: the valve bounds nothing.
    net = build(
        {"R": "reservoir", "A": "junction", "B": "junction", "C": "junction"},
        [
            ("P-RA", "R", "A", 10),
            ("P-AB", "A", "B", 10),
            ("P-AB2", "A", "B", 12),
            ("P-BC", "B", "C", 10),
        ],
        [("V-AB", "P-AB", "A", ""), ("V-C", "P-BC", "C", "")],
    )
    result = trace(net, "P-BC")
    assert closing(result) == ["V-C"]
    assert result.sources_inside == ("R",)


def test_unknown_pipe_and_a_network_without_sources() -> None:
    with pytest.raises(NotFound):
        LOOP.network().trace("P-NONE")
    dry = build({"A": "junction", "B": "junction"}, [("P-AB", "A", "B", 5)])
    with pytest.raises(InvalidField, match="no source"):
        dry.network().trace("P-AB")


@st.composite
def networks(draw: st.DrawFn) -> Net:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    count = rng.randint(3, 14)
    kinds = {f"N{i}": "junction" for i in range(count)}
    for name in rng.sample(sorted(kinds), rng.randint(0, 2)):
        kinds[name] = rng.choice(["reservoir", "tank"])
    kinds["N0"] = "reservoir"
    names = sorted(kinds)
    pipes = []
    for j in range(rng.randint(count - 1, 2 * count)):
        # A spanning chain first, then random extra links (loops, parallel pipes).
        a, b = (names[j], names[j + 1]) if j < count - 1 else rng.sample(names, 2)
        pipes.append((f"P{j}", a, b, rng.uniform(5, 100)))
    valves = []
    for name, a, b, _ in pipes:
        for end in (a, b):
            if rng.random() < 0.5:
                flags = " ".join(
                    flag
                    for flag, chance in (("c", 0.1), ("x", 0.15), ("check", 0.05))
                    if rng.random() < chance
                )
                valves.append((f"V{len(valves)}", name, end, flags))
    return build(kinds, pipes, valves)


@settings(max_examples=200, deadline=None)
@given(networks())
def test_every_trace_agrees_with_the_pipe_graph(net: Net) -> None:
    network, checker = net.network(), PipeGraphCheck(net.nodes, net.pipes, net.valves)
    for pipe in net.pipes:
        checker.check(network.trace(pipe.public_id))
