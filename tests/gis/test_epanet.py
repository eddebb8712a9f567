"""EPANET models into the asset layers, checked against what WNTR itself reads from the
example networks it ships (Net3, Net6, ky10) and from one of its test files (all valve types).

CRS choices: Net3 and Net6 are drawn in arbitrary units (0..335); read as EPSG:3857 metres they
are a small network at 0°N 0°E, inside every range check, which is all these tests need. ky10 is
a real Kentucky system in US survey feet: read as EPSG:3089 (NAD83 / Kentucky Single Zone, ftUS)
it falls inside Kentucky, which the test checks against the CRS's area of use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import wntr
from pyproj import CRS, Transformer
from sqlalchemy.orm import Session

from fieldline.gis.crs import parse_crs
from fieldline.gis.errors import InvalidField
from fieldline.gis.importer import LayerSummary, find_sources, import_path
from fieldline.gis.layers import DIAMETER_MAX_MM
from fieldline.gis.mapping import parse_mapping

WNTR_TESTS = Path(wntr.__file__).parent / "tests" / "networks_for_testing"
TABLES = {"nodes": "nodes", "pipes": "pipes", "valves": "valves", "stations": "stations"}


def network(name: str) -> Path:
    return Path(wntr.library.model_library.get_filepath(name))


def wntr_counts(model: Any) -> dict[str, int]:
    return {
        "nodes": model.num_junctions + model.num_tanks + model.num_reservoirs,
        "pipes": model.num_pipes,
        "valves": model.num_valves,
        "stations": model.num_pumps,
    }


def run(session: Session, path: Path, crs: str, **options: Any) -> dict[str, LayerSummary]:
    summaries = import_path(session, find_sources(path, **options), parse_crs(crs))
    return {summary.layer: summary for summary in summaries}


def stored_counts(session: Session, namespace: str) -> dict[str, int]:
    return {
        layer: session.execute(
            sa.text(f"SELECT count(*) FROM {layer} WHERE source_id LIKE :prefix"),  # noqa: S608
            {"prefix": f"{namespace}:%"},
        ).scalar_one()
        for layer in TABLES
    }


def test_net3_gives_the_assets_wntr_counts_and_a_reimport_updates_them(
    session: Session,
) -> None:
    path = network("Net3")
    expected = wntr_counts(wntr.network.WaterNetworkModel(str(path)))
    assert expected["nodes"] > 90 and expected["pipes"] > 100  # the real Net3, not a stub

    first = run(session, path, "EPSG:3857")
    assert {layer: s.read for layer, s in first.items()} == expected
    assert {layer: s.inserted for layer, s in first.items()} == expected
    assert all(s.rejected == [] for s in first.values())
    assert stored_counts(session, "Net3") == expected

    second = run(session, path, "EPSG:3857")
    assert {layer: s.inserted for layer, s in second.items()} == dict.fromkeys(TABLES, 0)
    assert {layer: s.updated for layer, s in second.items()} == expected
    assert stored_counts(session, "Net3") == expected


def test_net3_pipes_join_the_nodes_of_the_same_file(session: Session) -> None:
    path = network("Net3")
    model = wntr.network.WaterNetworkModel(str(path))
    run(session, path, "EPSG:3857")
    rows = session.execute(
        sa.text(
            "SELECT p.source_id, p.diameter_mm, f.source_id AS from_id, t.source_id AS to_id,"
            " ST_Equals(ST_StartPoint(p.geom), f.geom) AND ST_Equals(ST_EndPoint(p.geom), t.geom)"
            " AS joined FROM pipes p JOIN nodes f ON f.id = p.from_node_id"
            " JOIN nodes t ON t.id = p.to_node_id WHERE p.source_id LIKE 'Net3:%'"
        )
    ).mappings()
    stored = {row["source_id"]: row for row in rows}
    assert len(stored) == model.num_pipes
    for name, pipe in model.pipes():
        row = stored[f"Net3:{name}"]
        assert (row["from_id"], row["to_id"]) == (
            f"Net3:{pipe.start_node_name}",
            f"Net3:{pipe.end_node_name}",
        )
        assert row["joined"], name
        assert row["diameter_mm"] == pytest.approx(pipe.diameter * 1000)
    kinds = dict(
        session.execute(
            sa.text("SELECT kind, count(*) FROM nodes WHERE source_id LIKE 'Net3:%' GROUP BY kind")
        ).all()
    )
    assert kinds == {
        "junction": model.num_junctions,
        "tank": model.num_tanks,
        "reservoir": model.num_reservoirs,
    }


def test_reimport_of_a_changed_model_keeps_what_epanet_does_not_describe(
    session: Session, tmp_path: Path
) -> None:
    model = wntr.network.WaterNetworkModel(str(network("Net3")))
    name, pipe = next(iter(model.pipes()))
    path = tmp_path / "Net3.inp"
    wntr.network.write_inpfile(model, str(path))
    run(session, path, "EPSG:3857")
    session.execute(
        sa.text("UPDATE pipes SET material = 'cast_iron' WHERE source_id = :s"),
        {"s": f"Net3:{name}"},
    )
    before = session.execute(
        sa.text("SELECT public_id FROM pipes WHERE source_id = :s"), {"s": f"Net3:{name}"}
    ).scalar_one()

    pipe.diameter = 0.4
    wntr.network.write_inpfile(model, str(path))
    summaries = run(session, path, "EPSG:3857")

    assert summaries["pipes"].inserted == 0
    row = session.execute(
        sa.text("SELECT public_id, diameter_mm, material FROM pipes WHERE source_id = :s"),
        {"s": f"Net3:{name}"},
    ).one()
    assert tuple(row) == (before, pytest.approx(400.0), "cast_iron")


def test_ky10_lies_in_kentucky_with_its_vertices_and_refuses_placeholder_valves(
    session: Session,
) -> None:
    path = network("ky10")
    model = wntr.network.WaterNetworkModel(str(path))
    expected = wntr_counts(model)
    summaries = run(session, path, "EPSG:3089")

    for layer in ("nodes", "pipes", "stations"):
        assert (summaries[layer].read, summaries[layer].inserted) == (
            expected[layer],
            expected[layer],
        )
        assert summaries[layer].rejected == []
    # ky10's valves carry a 1000-inch placeholder diameter, which validation refuses; each is
    # reported by number and EPANET id.
    placeholders = [v.name for _, v in model.valves() if v.diameter * 1000 > DIAMETER_MAX_MM]
    assert len(placeholders) == expected["valves"] == 5
    valves = summaries["valves"]
    assert (valves.read, valves.inserted) == (5, 0)
    assert [(r.feature_id, r.field) for r in valves.rejected] == [
        (name, "properties.diameter_mm") for name in placeholders
    ]

    west, south, east, north = CRS.from_epsg(3089).area_of_use.bounds
    box = session.execute(
        sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
            " (SELECT ST_Extent(geom) AS e FROM nodes WHERE source_id LIKE 'ky10:%') AS x"
        )
    ).one()
    assert west < box[0] < box[2] < east and south < box[1] < box[3] < north

    vertices = dict(
        session.execute(
            sa.text("SELECT source_id, ST_NPoints(geom) FROM pipes WHERE source_id LIKE 'ky10:%'")
        ).all()
    )
    assert sum(len(p.vertices) for _, p in model.pipes()) > 1000
    for name, pipe in model.pipes():
        assert vertices[f"ky10:{name}"] == len(pipe.vertices) + 2, name


def test_net6_valves_sit_midway_on_their_links(session: Session) -> None:
    path = network("Net6")
    model = wntr.network.WaterNetworkModel(str(path))
    expected = wntr_counts(model)
    summaries = run(session, path, "EPSG:3857")
    assert {layer: s.inserted for layer, s in summaries.items()} == expected
    assert expected["valves"] == 2

    to_wgs84 = Transformer.from_crs(3857, 4326, always_xy=True)
    for name, valve in model.valves():
        row = session.execute(
            sa.text(
                "SELECT kind, diameter_mm, normal_position, ST_X(geom), ST_Y(geom) FROM valves"
                " WHERE source_id = :s"
            ),
            {"s": f"Net6:{name}"},
        ).one()
        assert valve.valve_type == "PRV"
        assert row[:3] == ("prv", pytest.approx(valve.diameter * 1000), "open")
        (x0, y0), (x1, y1) = valve.start_node.coordinates, valve.end_node.coordinates
        assert not valve.vertices  # so the middle of the link is the middle of its ends
        assert row[3:] == pytest.approx(to_wgs84.transform((x0 + x1) / 2, (y0 + y1) / 2))


def test_every_epanet_valve_type_has_a_valve_kind(session: Session) -> None:
    path = WNTR_TESTS / "io.inp"
    model = wntr.network.WaterNetworkModel(str(path))
    run(session, path, "EPSG:3857", layer_name="valves")
    kinds = dict(
        session.execute(
            sa.text("SELECT source_id, kind FROM valves WHERE source_id LIKE 'io:%'")
        ).all()
    )
    types = {f"io:{name}": valve.valve_type for name, valve in model.valves()}
    assert sorted(types.values()) == ["GPV", "PSV", "TCV"]
    assert {types[s]: kind for s, kind in kinds.items()} == {
        "TCV": "butterfly",
        "PSV": "prv",
        "GPV": "gate",
    }


def test_an_epanet_file_needs_a_crs(session: Session) -> None:
    with pytest.raises(InvalidField, match="--crs") as caught:
        import_path(session, find_sources(network("Net3")))
    assert caught.value.field == "crs"


def test_a_broken_epanet_file_is_named(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "broken.inp"
    path.write_text("[JUNCTIONS]\n J1 not-a-number\n[PIPES]\n P1 J1 J9 10 12 100\n[END]\n")
    with pytest.raises(InvalidField, match=r"broken\.inp is not a readable EPANET file") as caught:
        import_path(session, find_sources(path), parse_crs("EPSG:3857"))
    assert caught.value.field == "file"


def test_field_mappings_do_not_apply_to_epanet(session: Session) -> None:
    with pytest.raises(InvalidField, match="EPANET") as caught:
        import_path(
            session,
            find_sources(network("Net1")),
            parse_crs("EPSG:3857"),
            mapping=parse_mapping(["DIAM=diameter_mm"]),
        )
    assert caught.value.field == "map"
