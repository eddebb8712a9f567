"""Import of a utility's own GIS files: GeoPackage and Shapefile with foreign field names, codes
and units, found again by their own ids on re-import."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa
from pyproj import Transformer
from shapely.geometry import LineString, Point
from sqlalchemy.orm import Session

from fieldline.gis.errors import InvalidField
from fieldline.gis.importer import LayerSummary, find_sources, import_path
from fieldline.gis.mapping import FieldMapping, parse_mapping

# Files in ETRS-TM35FIN, as a Finnish utility keeps them; positions picked in WGS 84 near the
# fixture city and projected here with pyproj.
TO_3067 = Transformer.from_crs(4326, 3067, always_xy=True)
NODES_WGS84 = {"J-1": (24.9400, 60.1700), "J-2": (24.9410, 60.1702), "T-1": (24.9420, 60.1710)}


def projected(lon: float, lat: float) -> tuple[float, float]:
    x, y = TO_3067.transform(lon, lat)
    return float(x), float(y)


def write_layer(
    path: Path,
    layer: str,
    geometries: list[Any],
    columns: dict[str, list[Any]],
    driver: str = "GPKG",
    geometry_type: str = "Point",
) -> None:
    arrays = []
    for values in columns.values():
        if all(isinstance(v, int) for v in values):
            arrays.append(np.array(values, dtype=np.int64))
        elif all(isinstance(v, int | float) for v in values):
            arrays.append(np.array(values, dtype=np.float64))
        else:
            arrays.append(np.array(values, dtype=object))
    pyogrio.raw.write(
        path,
        shapely.to_wkb(np.array(geometries, dtype=object)),
        arrays,
        list(columns),
        layer=layer,
        driver=driver,
        geometry_type=geometry_type,
        crs="EPSG:3067",
    )


NETWORK_MAPPING = parse_mapping(
    [
        "TYPE=kind",
        "ELEV_FT=elevation_m:ft",
        "FROM_ID=from_node",
        "TO_ID=to_node",
        "DIAM_IN=diameter_mm:in",
        "MAT=material",
        "INST=install_year",
        "DEPTH_FT=depth_m:ft",
    ],
    ["kind=J:junction,T:tank", "material=CI:cast_iron,DI:ductile_iron"],
    id_field="GIS_ID",
)


def write_network(path: Path, first_diameter_in: float = 6.0) -> Path:
    """A GeoPackage with the layers `nodes` and `pipes` as a utility's GIS names its fields."""
    write_layer(
        path,
        "nodes",
        [Point(projected(*xy)) for xy in NODES_WGS84.values()],
        {
            "GIS_ID": list(NODES_WGS84),
            "TYPE": ["J", "J", "T"],
            "ELEV_FT": [40.0, 42.5, 80.0],
            "OWNER": ["city", "city", "city"],
        },
    )
    j1, j2, t1 = (projected(*xy) for xy in NODES_WGS84.values())
    write_layer(
        path,
        "pipes",
        [
            LineString([j1, j2]),
            LineString([j2, t1]),
            LineString([j1, t1]),
            LineString([j1, j1]),  # no length: a broken geometry
            LineString([j2, t1]),
        ],
        {
            "GIS_ID": ["W-1", "W-2", "W-3", "W-4", "W-5"],
            "FROM_ID": ["J-1", "J-2", "J-1", "J-1", "J-9"],
            "TO_ID": ["J-2", "T-1", "T-1", "J-1", "T-1"],
            "DIAM_IN": [first_diameter_in, 8.0, 6.0, 6.0, 6.0],
            "MAT": ["CI", "DI", "XX", "CI", "CI"],
            "INST": [1962, 1975, 1980, 1990, 1991],
            "DEPTH_FT": [6.0, 7.0, 6.0, 6.0, 6.0],
            "OWNER": ["city"] * 5,
        },
        geometry_type="LineString",
    )
    return path


def by_layer(summaries: list[LayerSummary]) -> dict[str, LayerSummary]:
    return {summary.layer: summary for summary in summaries}


def count(session: Session, table: str) -> int:
    return int(session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def stored_pipe(session: Session, source_id: str) -> Any:
    return (
        session.execute(
            sa.text(
                "SELECT p.*, f.public_id AS from_id, f.source_id AS from_source,"
                " t.source_id AS to_source, ST_AsText(p.geom) AS wkt FROM pipes p"
                " JOIN nodes f ON f.id = p.from_node_id JOIN nodes t ON t.id = p.to_node_id"
                " WHERE p.source_id = :s"
            ),
            {"s": source_id},
        )
        .mappings()
        .one()
    )


def test_geopackage_with_foreign_names_keeps_good_rows_and_names_bad_ones(
    session: Session, tmp_path: Path
) -> None:
    path = write_network(tmp_path / "network.gpkg")
    summaries = by_layer(import_path(session, find_sources(path), mapping=NETWORK_MAPPING))

    nodes, pipes = summaries["nodes"], summaries["pipes"]
    assert (nodes.read, nodes.inserted, nodes.rejected) == (3, 3, [])
    assert (pipes.read, pipes.inserted, pipes.updated) == (5, 2, 0)
    assert [(r.number, r.feature_id, r.field) for r in pipes.rejected] == [
        (3, "W-3", "properties.material"),
        (4, "W-4", "geometry.coordinates"),
        (5, "W-5", "properties.from_node"),
    ]
    assert "'XX' is not one of" in pipes.rejected[0].reason
    assert "J-9" in pipes.rejected[2].reason
    # Fields that are no attribute are named once, not refused.
    assert nodes.ignored_fields == pipes.ignored_fields == ["OWNER"]

    pipe = stored_pipe(session, "network:W-1")
    assert pipe["diameter_mm"] == pytest.approx(6 * 25.4)
    assert pipe["depth_m"] == pytest.approx(6 * 0.3048)
    assert (pipe["material"], pipe["install_year"], pipe["status"]) == (
        "cast_iron",
        1962,
        "in_service",
    )
    assert (pipe["from_source"], pipe["to_source"]) == ("network:J-1", "network:J-2")
    line = shapely.from_wkt(pipe["wkt"])
    assert shapely.get_coordinates(line) == pytest.approx(
        np.array([NODES_WGS84["J-1"], NODES_WGS84["J-2"]]), abs=1e-8
    )
    tank = session.execute(
        sa.text("SELECT kind, elevation_m FROM nodes WHERE source_id = 'network:T-1'")
    ).one()
    assert tuple(tank) == ("tank", pytest.approx(80 * 0.3048))


def test_geopackage_reimport_updates_by_source_id(session: Session, tmp_path: Path) -> None:
    path = write_network(tmp_path / "network.gpkg")
    import_path(session, find_sources(path), mapping=NETWORK_MAPPING)
    first = stored_pipe(session, "network:W-1")
    counts = [count(session, table) for table in ("nodes", "pipes")]

    path.unlink()
    write_network(path, first_diameter_in=12.0)
    summaries = by_layer(import_path(session, find_sources(path), mapping=NETWORK_MAPPING))

    assert (summaries["nodes"].inserted, summaries["nodes"].updated) == (0, 3)
    assert (summaries["pipes"].inserted, summaries["pipes"].updated) == (0, 2)
    assert [count(session, table) for table in ("nodes", "pipes")] == counts
    second = stored_pipe(session, "network:W-1")
    assert second["public_id"] == first["public_id"]
    assert second["diameter_mm"] == pytest.approx(12 * 25.4)


def write_valves_shapefile(path: Path, kinds: list[str]) -> Path:
    extra = {f"EXTRA_{i}": [f"x{i}"] * len(kinds) for i in range(12)}
    write_layer(
        path,
        path.stem,
        [Point(projected(24.9400 + i * 0.0005, 60.1700)) for i in range(len(kinds))],
        {"VTYPE": kinds, "DIAM": [150.0] * len(kinds), "OPER": ["Y"] * len(kinds), **extra},
        driver="ESRI Shapefile",
    )
    return path


VALVE_MAPPING = parse_mapping(
    ["VTYPE=kind", "DIAM=diameter_mm", "OPER=operable"],
    ["kind=GV:gate,BV:butterfly", "operable=Y:true,N:false"],
)


def test_shapefile_rows_without_ids_are_found_again_by_record_number(
    session: Session, tmp_path: Path
) -> None:
    path = write_valves_shapefile(tmp_path / "valves_gis.shp", ["GV", "ZZ", "BV"])
    sources = find_sources(path, "valves")
    (summary,) = import_path(session, sources, mapping=VALVE_MAPPING)

    assert (summary.read, summary.inserted) == (3, 2)
    assert [(r.number, r.field) for r in summary.rejected] == [(2, "properties.kind")]
    assert summary.ignored_fields == [f"EXTRA_{i}" for i in range(12)]
    stored = session.execute(
        sa.text(
            "SELECT source_id, kind, operable FROM valves"
            " WHERE source_id LIKE 'valves_gis:%' ORDER BY source_id"
        )
    ).all()
    # Shapefile record numbers (FIDs) start at 0.
    assert [tuple(row) for row in stored] == [
        ("valves_gis:0", "gate", True),
        ("valves_gis:2", "butterfly", True),
    ]

    # Attributes the file does not carry stay as users set them.
    session.execute(
        sa.text("UPDATE valves SET normal_position = 'closed' WHERE source_id = 'valves_gis:0'")
    )
    (again,) = import_path(session, sources, mapping=VALVE_MAPPING)
    assert (again.inserted, again.updated) == (0, 2)
    position = session.execute(
        sa.text("SELECT normal_position FROM valves WHERE source_id = 'valves_gis:0'")
    ).scalar_one()
    assert position == "closed"


def test_zipped_shapefile_is_read_as_it_is(session: Session, tmp_path: Path) -> None:
    write_valves_shapefile(tmp_path / "valves.shp", ["GV", "BV"])
    archive = tmp_path / "upload" / "valves.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as bundle:
        for part in tmp_path.glob("valves.*"):
            bundle.write(part, part.name)
    (summary,) = import_path(session, find_sources(archive), mapping=VALVE_MAPPING)
    assert (summary.layer, summary.read, summary.inserted, summary.rejected) == (
        "valves",
        2,
        2,
        [],
    )


def test_same_ids_in_two_files_stay_apart(session: Session, tmp_path: Path) -> None:
    first = write_valves_shapefile(tmp_path / "east.shp", ["GV"])
    second = write_valves_shapefile(tmp_path / "west.shp", ["GV"])
    for path in (first, second):
        (summary,) = import_path(session, find_sources(path, "valves"), mapping=VALVE_MAPPING)
        assert summary.inserted == 1
    # One file imported under the other's namespace finds the other's valve.
    (summary,) = import_path(
        session, find_sources(second, "valves", namespace="east"), mapping=VALVE_MAPPING
    )
    assert (summary.inserted, summary.updated) == (0, 1)


def test_an_id_used_twice_in_a_file_is_refused_the_second_time(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "valves.gpkg"
    write_layer(
        path,
        "valves",
        [Point(projected(24.94, 60.17)), Point(projected(24.941, 60.17))],
        {"ASSET": ["A-1", "A-1"], "kind": ["gate", "gate"]},
    )
    (summary,) = import_path(session, find_sources(path), mapping=FieldMapping(id_field="ASSET"))
    assert summary.inserted == 1
    assert [(r.number, r.field) for r in summary.rejected] == [(2, "id")]
    assert "feature 1" in summary.rejected[0].reason


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        (parse_mapping(["DIAMETER=diameter_mm"]), "map"),
        (FieldMapping(id_field="ASSET_NO"), "id_field"),
    ],
)
def test_a_rule_for_a_field_no_file_has_is_refused_before_import(
    session: Session, tmp_path: Path, mapping: FieldMapping, field: str
) -> None:
    path = write_valves_shapefile(tmp_path / "valves.shp", ["GV"])
    with pytest.raises(InvalidField, match="VTYPE") as caught:
        import_path(session, find_sources(path), mapping=mapping)
    assert caught.value.field == field
    count = session.execute(sa.text("SELECT count(*) FROM valves WHERE source_id IS NOT NULL"))
    assert count.scalar_one() == 0


def test_a_geopackage_layer_of_another_name_is_read_into_the_layer_named(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "utility.gpkg"
    point = [Point(projected(24.94, 60.17))]
    write_layer(path, "wHydrant", point, {"COND": ["good"]})
    write_layer(path, "wValve", point, {"COND": ["good"]})
    with pytest.raises(InvalidField, match=r"NAME=hydrants .*wHydrant"):
        find_sources(path, "hydrants")
    (source,) = find_sources(path, "wHydrant=hydrants")
    (summary,) = import_path(session, [source], mapping=parse_mapping(["COND=condition"]))
    assert (summary.layer, summary.inserted, summary.ignored_fields) == ("hydrants", 1, [])
