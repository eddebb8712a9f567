"""`GET /api/v1/exports/{layer}.gpkg|.geojson`: one layer as a file."""

from __future__ import annotations

import json
from pathlib import Path

import pyogrio
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.gis.layers import LAYERS


def count(connection: sa.Connection, table: str) -> int:
    return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def test_a_layer_as_geopackage(
    client: FlaskClient, connection: sa.Connection, tmp_path: Path
) -> None:
    with client.get("/api/v1/exports/hydrants.gpkg") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/geopackage+sqlite3"
        assert "hydrants.gpkg" in response.headers["Content-Disposition"]
        path = tmp_path / "hydrants.gpkg"
        path.write_bytes(response.data)
    info = pyogrio.read_info(path)
    assert (info["layer_name"], info["features"], info["crs"]) == (
        "hydrants",
        count(connection, "hydrants"),
        "EPSG:4326",
    )
    assert info["geometry_type"] == "Point"


def test_a_layer_as_geojson_with_public_ids(client: FlaskClient, connection: sa.Connection) -> None:
    with client.get("/api/v1/exports/pipes.geojson") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/geo+json"
        document = json.loads(response.data)
    ids = [row[0] for row in connection.execute(sa.text("SELECT public_id FROM pipes ORDER BY id"))]
    assert [feature["id"] for feature in document["features"]] == ids
    first = document["features"][0]
    assert first["geometry"]["type"] == "LineString"
    assert set(first["properties"]) == {
        *(a.name for a in LAYERS["pipes"].attributes),
        "source_id",
        "created_at",
        "updated_at",
    }


@pytest.mark.parametrize("url", ["/api/v1/exports/pumps.gpkg", "/api/v1/exports/pipes.kml"])
def test_unknown_layers_and_formats_are_404(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
