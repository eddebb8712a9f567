"""Isolation traces on the fixture city loaded in PostGIS, checked on a pipe graph built from the
fixture files themselves (not from what the loader read)."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.isolation import NETWORKS, NodeRow, PipeRow, ValveRow, load_network
from fieldline.gis.layers import get_layer
from fieldline.gis.services import update_asset
from tests.conftest import load_fixture
from tests.gis.isolation_networks import PipeGraphCheck


def city_rows() -> tuple[list[NodeRow], list[PipeRow], list[ValveRow]]:
    nodes = [
        NodeRow(i, f["id"], f["properties"]["kind"]) for i, f in enumerate(load_fixture("nodes"))
    ]
    node_id = {row.public_id: row.id for row in nodes}
    pipes, lines = [], {}
    for j, f in enumerate(load_fixture("pipes")):
        p = f["properties"]
        if p["status"] != "in_service":
            continue
        coordinates = f["geometry"]["coordinates"]
        lines[f["id"]] = (10_000 + j, coordinates, node_id[p["from_node"]], node_id[p["to_node"]])
        lon, lat = coordinates[0]
        pipes.append(PipeRow(10_000 + j, f["id"], *lines[f["id"]][2:], 1.0, lon, lat))
    valves = []
    for k, f in enumerate(load_fixture("valves")):
        p = f["properties"]
        if p["pipe"] not in lines:
            continue
        pipe, coordinates, start, end = lines[p["pipe"]]
        lon, lat = f["geometry"]["coordinates"]
        node = node_id[p["node"]] if p["node"] else None
        if node not in (start, end):  # the nearer end, in metres of a local plane

            def metres(point: list[float], lon: float = lon, lat: float = lat) -> float:
                return math.hypot((point[0] - lon) * math.cos(math.radians(lat)), point[1] - lat)

            node = start if metres(coordinates[0]) <= metres(coordinates[-1]) else end
        valves.append(
            ValveRow(
                k,
                f["id"],
                pipe,
                node,
                p["kind"],
                p["normal_position"] == "open",
                p["operable"],
                lon,
                lat,
            )
        )
    return nodes, pipes, valves


@pytest.fixture(scope="module")
def rows() -> tuple[list[NodeRow], list[PipeRow], list[ValveRow]]:
    return city_rows()


def test_every_pipe_of_the_city_is_cut_off_by_its_valves(
    session: Session, rows: tuple[list[NodeRow], list[PipeRow], list[ValveRow]]
) -> None:
    network = load_network(session.connection())
    nodes, pipes, valves = rows
    assert set(network.pipe_at) == {row.public_id for row in pipes}
    checker = PipeGraphCheck(nodes, pipes, valves)
    widened = dry = 0
    for pipe in pipes:
        result = network.trace(pipe.public_id)
        checker.check(result)
        # Nothing to close only where a source is inside or no water came in the first place.
        assert result.valves_to_close or result.sources_inside or not result.supplied_before
        widened += bool(result.passed_valves)
        dry += bool(result.dry_pipes)
    # The city has inoperable valves and dead ends: both cases occur, not just the simple one.
    assert widened > 10 and dry > 10


def test_a_valve_made_inoperable_widens_the_next_trace(session: Session) -> None:
    connection = session.connection()
    network = NETWORKS.get(connection)
    pipe = next(p for p in sorted(network.pipe_at) if len(network.trace(p).valves_to_close) > 1)
    before = network.trace(pipe)
    valve = before.valves_to_close[0].public_id
    update_asset(session, get_layer("valves"), valve, None, {"operable": False}, "test")
    after = NETWORKS.get(connection).trace(pipe)
    assert valve in {v.public_id for v in after.passed_valves}
    assert set(after.isolated_pipes) > set(before.isolated_pipes)
    # A second edit in the same transaction (the same now()) is seen as well.
    update_asset(session, get_layer("valves"), valve, None, {"operable": True}, "test")
    assert NETWORKS.get(connection).trace(pipe) == before


def test_a_pipe_taken_out_of_service_leaves_the_graph(session: Session) -> None:
    connection = session.connection()
    assert "P-000200" in NETWORKS.get(connection).pipe_at
    connection.execute(
        sa.text("UPDATE pipes SET status = 'abandoned', updated_at = now() WHERE public_id = :id"),
        {"id": "P-000200"},
    )
    assert "P-000200" not in NETWORKS.get(connection).pipe_at
