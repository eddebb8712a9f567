"""Import: bad features are named and skipped, good ones stored, a re-import updates in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.errors import GisError
from fieldline.gis.importer import find_sources, import_path
from fieldline.gis.layers import LAYERS
from tests.conftest import CITY, load_fixture


def write(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def valve(fid: str | None, **properties: object) -> dict:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
        "properties": {"kind": "gate", "diameter_mm": 150, "operable": True} | properties,
    }
    if fid:
        feature["id"] = fid
    return feature


def test_fixture_city_is_fully_loaded(session: Session) -> None:
    for layer in ("nodes", "pipes", "valves", "hydrants", "meters", "stations", "markers", "roads"):
        stored = session.execute(sa.text(f"SELECT count(*) FROM {layer}")).scalar_one()  # noqa: S608
        assert stored == len(load_fixture(layer)), layer


def test_bad_rows_are_named_and_good_ones_kept(session: Session, tmp_path: Path) -> None:
    pipe = load_fixture("pipes")[0]["id"]
    path = write(
        tmp_path / "valves.geojson",
        [
            valve("V-900001", pipe=pipe),
            valve("V-900002", kind="sluice"),
            valve("V-900003", pipe="P-999999"),
            valve("V-900004", diameter_mm=-3),
            valve("P-000001"),  # a pipe's id in the valves file
            valve(None, operable=None),
        ],
    )
    (summary,) = import_path(session, find_sources(path))
    assert (summary.read, summary.inserted, summary.updated) == (6, 2, 0)
    assert [(r.number, r.field) for r in summary.rejected] == [
        (2, "properties.kind"),
        (3, "properties.pipe"),
        (4, "properties.diameter_mm"),
        (5, "id"),
    ]
    stored = session.execute(
        sa.text(
            "SELECT v.public_id, p.public_id, v.operable FROM valves v"
            " LEFT JOIN pipes p ON p.id = v.pipe_id WHERE v.public_id = 'V-900001'"
        )
    ).one()
    assert tuple(stored) == ("V-900001", pipe, True)


def test_reimport_updates_in_place(session: Session, tmp_path: Path) -> None:
    path = write(tmp_path / "valves.geojson", [valve("V-900010"), valve("V-900011")])
    import_path(session, find_sources(path))
    write(path, [valve("V-900010", diameter_mm=300), valve("V-900011")])
    (summary,) = import_path(session, find_sources(path))
    assert (summary.inserted, summary.updated, summary.rejected) == (0, 2, [])
    diameter = session.execute(
        sa.text("SELECT diameter_mm FROM valves WHERE public_id = 'V-900010'")
    ).scalar_one()
    assert diameter == 300


def test_new_ids_continue_after_imported_ones(session: Session, tmp_path: Path) -> None:
    path = write(tmp_path / "valves.geojson", [valve("V-950000"), valve(None)])
    import_path(session, find_sources(path))
    newest = session.execute(sa.text("SELECT max(public_id) FROM valves")).scalar_one()
    assert newest == "V-950001"


def test_folder_is_imported_in_reference_order() -> None:
    names = [source.layer.name for source in find_sources(CITY)]
    assert names.index("nodes") < names.index("pipes") < names.index("valves")


def test_unknown_layer_file_needs_a_layer_name(tmp_path: Path) -> None:
    path = write(tmp_path / "stuff.geojson", [valve(None)])
    with pytest.raises(GisError, match="--layer"):
        find_sources(path)
    assert find_sources(path, "valves")[0].layer.name == "valves"


def test_every_layer_comes_after_the_layers_it_refers_to() -> None:
    order = list(LAYERS)
    for position, layer in enumerate(LAYERS.values()):
        for attribute in layer.attributes:
            if attribute.ref_layer:
                assert order.index(attribute.ref_layer) < position, (layer.name, attribute.name)


def test_public_ids_grow_past_six_digits(session: Session) -> None:
    session.execute(sa.text("SELECT setval('markers_public_seq', 999999)"))
    created = (
        session.execute(
            sa.text(
                "INSERT INTO markers (geom) VALUES (ST_SetSRID(ST_MakePoint(24.95, 60.17), 4326)),"
                " (ST_SetSRID(ST_MakePoint(24.95, 60.171), 4326)) RETURNING public_id"
            )
        )
        .scalars()
        .all()
    )
    assert created == ["PM-1000000", "PM-1000001"]
