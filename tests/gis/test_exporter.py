"""Export to GeoPackage and GeoJSON, read back with pyogrio and with GDAL's own ogrinfo, and
imported again into emptied layers."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from fieldline.gis.errors import InvalidField
from fieldline.gis.exporter import export_layers
from fieldline.gis.importer import find_sources, import_path
from fieldline.gis.layers import LAYERS
from fieldline.gis.queries import FeatureQuery, select_documents

# What each kind of attribute must be in the file: (OGR type, OGR subtype), and as ogrinfo
# prints it.
OGR_TYPES = {
    "text": ("OFTString", "OFSTNone", "String"),
    "ref": ("OFTString", "OFSTNone", "String"),
    "text_list": ("OFTString", "OFSTNone", "String"),
    "number": ("OFTReal", "OFSTNone", "Real"),
    "integer": ("OFTInteger64", "OFSTNone", "Integer64"),
    "boolean": ("OFTInteger", "OFSTBoolean", "Integer(Boolean)"),
    "datetime": ("OFTDateTime", "OFSTNone", "DateTime"),
}
COMMON = [("source_id", "text"), ("created_at", "datetime"), ("updated_at", "datetime")]


def expected_fields(layer_name: str) -> list[tuple[str, str]]:
    layer = LAYERS[layer_name]
    return [("id", "text"), *((a.name, a.kind) for a in layer.attributes), *COMMON]


def count(bind: Any, table: str) -> int:
    return int(bind.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def test_geopackage_holds_every_layer_with_typed_fields_in_wgs84(
    connection: sa.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "assets.gpkg"
    written = export_layers(connection, path, "gpkg")

    assert [s.layer for s in written] == list(LAYERS)
    assert {str(name): str(kind) for name, kind in pyogrio.list_layers(path)} == {
        name: layer.geometry_type for name, layer in LAYERS.items()
    }
    for name in LAYERS:
        info = pyogrio.read_info(path, layer=name)
        assert info["features"] == count(connection, name) > 0, name
        assert info["crs"] == "EPSG:4326"
        fields = expected_fields(name)
        assert list(info["fields"]) == [field for field, _ in fields]
        assert list(zip(info["ogr_types"], info["ogr_subtypes"], strict=True)) == [
            OGR_TYPES[kind][:2] for _, kind in fields
        ], name


def ogrinfo_layers(path: Path) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-al", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    layers: dict[str, dict[str, Any]] = {}
    for block in done.stdout.split("Layer name: ")[1:]:
        name = block.split("\n", 1)[0].strip()
        fields = dict(re.findall(r"^(\w+): (\S+) \(", block, re.MULTILINE))
        layers[name] = {
            "count": int(re.search(r"Feature Count: (\d+)", block).group(1)),  # type: ignore[union-attr]
            "epsg": re.findall(r'^    ID\["EPSG",(\d+)\]\]$', block, re.MULTILINE),
            "fields": fields,
        }
    return layers


def test_ogrinfo_reads_the_geopackage_as_the_database_holds_it(
    connection: sa.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "assets.gpkg"
    export_layers(connection, path, "gpkg")
    layers = ogrinfo_layers(path)
    assert sorted(layers) == sorted(LAYERS)
    for name, found in layers.items():
        assert found["count"] == count(connection, name)
        assert found["epsg"] == ["4326"]
        # ogrinfo lists the attribute fields; "Geometry Column" and "FID Column" it prints
        # with spaces, so the pattern above leaves them out.
        assert found["fields"] == {
            field: OGR_TYPES[kind][2] for field, kind in expected_fields(name)
        }


def test_geojson_files_carry_the_stored_values_at_full_precision(
    connection: sa.Connection, tmp_path: Path
) -> None:
    folder = tmp_path / "assets"
    export_layers(connection, folder, "geojson", [LAYERS["pipes"], LAYERS["stations"]])
    assert sorted(p.name for p in folder.iterdir()) == ["pipes.geojson", "stations.geojson"]

    meta, _, geometries, columns = pyogrio.raw.read(
        folder / "pipes.geojson", datetime_as_string=True
    )
    values = dict(zip(meta["fields"], columns, strict=True))
    stored = connection.execute(
        sa.text(
            "SELECT p.public_id, f.public_id AS from_node, p.diameter_mm, p.install_year,"
            " p.material, ST_AsBinary(p.geom) AS wkb, p.created_at FROM pipes p"
            " LEFT JOIN nodes f ON f.id = p.from_node_id ORDER BY p.id"
        )
    ).all()
    assert list(values["id"]) == [row.public_id for row in stored]
    assert list(values["from_node"]) == [row.from_node for row in stored]
    assert list(values["material"]) == [row.material for row in stored]
    assert np.array_equal(values["diameter_mm"], [row.diameter_mm for row in stored])
    assert np.array_equal(values["install_year"], [row.install_year for row in stored])
    # Coordinates are written as stored, not rounded.
    assert all(
        shapely.from_wkb(written).equals_exact(shapely.from_wkb(bytes(row.wkb)), 0)
        for written, row in zip(geometries, stored, strict=True)
    )
    assert (
        values["created_at"][0] == stored[0].created_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    )

    document = json.loads((folder / "stations.geojson").read_text())
    metrics = dict(connection.execute(sa.text("SELECT public_id, metrics FROM stations")).all())
    assert {f["id"]: f["properties"]["metrics"] for f in document["features"]} == metrics


def snapshot(session: Session) -> dict[str, dict[str, Any]]:
    """Every asset as the API shows it, less the times an import sets anew."""
    found: dict[str, dict[str, Any]] = {}
    for name, layer in LAYERS.items():
        rows = session.execute(*select_documents(layer, FeatureQuery(limit=1_000_000))).all()
        for row in rows:
            feature = json.loads(row._feature)
            for key in ("created_at", "updated_at"):
                del feature["properties"][key]
            found[f"{name}/{feature['id']}"] = feature
    return found


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_export_then_import_into_emptied_layers_gives_the_same_assets(
    session: Session, tmp_path: Path, fmt: str
) -> None:
    # Some assets with source ids, so that those travel too.
    session.execute(sa.text("UPDATE valves SET source_id = 'gis:' || id WHERE id % 7 = 0"))
    before = snapshot(session)
    path = tmp_path / ("assets.gpkg" if fmt == "gpkg" else "assets")
    export_layers(session, path, fmt)

    for name in reversed(LAYERS):
        session.execute(sa.text(f"DELETE FROM {name}"))  # noqa: S608
    assert snapshot(session) == {}

    summaries = import_path(session, find_sources(path))
    assert {s.layer: s.inserted for s in summaries} == {
        name: sum(1 for key in before if key.startswith(f"{name}/")) for name in LAYERS
    }
    assert all(s.rejected == [] and s.ignored_fields == [] for s in summaries)
    after = snapshot(session)
    assert after == before
    assert sum(1 for f in after.values() if f["properties"]["source_id"]) > 10


def test_a_single_geojson_file_holds_one_layer(connection: sa.Connection, tmp_path: Path) -> None:
    (summary,) = export_layers(
        connection, tmp_path / "valves.geojson", "geojson", [LAYERS["valves"]]
    )
    assert summary.features == count(connection, "valves")
    with pytest.raises(InvalidField, match="one layer"):
        export_layers(
            connection, tmp_path / "two.geojson", "geojson", [LAYERS["pipes"], LAYERS["valves"]]
        )


def test_an_empty_layer_is_written_with_its_fields(session: Session, tmp_path: Path) -> None:
    session.execute(sa.text("DELETE FROM markers"))
    path = tmp_path / "markers.gpkg"
    (summary,) = export_layers(session, path, "gpkg", [LAYERS["markers"]])
    info = pyogrio.read_info(path, layer="markers")
    assert (summary.features, info["features"]) == (0, 0)
    assert list(info["fields"]) == [name for name, _ in expected_fields("markers")]
