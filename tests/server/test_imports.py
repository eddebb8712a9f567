"""`POST /api/v1/imports`: an uploaded file imported as the command line imports it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import wntr
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fieldline.server import create_app
from fieldline.settings import Settings, load_settings

URL = "/api/v1/imports"


def valves_file(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def foreign_valve(asset: str, kind: str, x: float = 385_700.0) -> dict[str, Any]:
    """A valve in ETRS-TM35FIN with the utility's own field names and codes."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [x, 6_672_100.0]},
        "properties": {"ASSET": asset, "VTYPE": kind, "DIAM_IN": 6, "ZONE_CODE": "Z1"},
    }


def upload(client: FlaskClient, name: str, content: bytes, **fields: Any) -> TestResponse:
    data: dict[str, Any] = {"file": (io.BytesIO(content), name), **fields}
    return client.post(URL, data=data, content_type="multipart/form-data")


MAPPING = {
    "crs": "EPSG:3067",
    "layer": "valves",
    "map": ["VTYPE=kind", "DIAM_IN=diameter_mm:in"],
    "map_values": ["kind=GV:gate,BV:butterfly"],
    "id_field": "ASSET",
}


def test_upload_with_mapping_reports_each_rejection(
    client: FlaskClient, connection: sa.Connection
) -> None:
    content = valves_file(
        foreign_valve("A-1", "GV"), foreign_valve("A-2", "XX"), foreign_valve("A-3", "BV", 385_710)
    )
    response = upload(client, "gis_valves.geojson", content, **MAPPING)
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["read"], body["inserted"], body["updated"], body["rejected"]) == (3, 2, 0, 1)
    (layer,) = body["layers"]
    assert layer["layer"] == "valves"
    assert layer["ignored_fields"] == ["ZONE_CODE"]
    assert layer["rejected"] == [
        {
            "number": 2,
            "id": "A-2",
            "field": "properties.kind",
            "reason": "'XX' is not one of: gate, butterfly, check, prv, air_release",
        }
    ]
    stored = connection.execute(
        sa.text(
            "SELECT source_id, kind, diameter_mm FROM valves"
            " WHERE source_id LIKE 'gis_valves:%' ORDER BY source_id"
        )
    ).all()
    assert [tuple(row) for row in stored] == [
        ("gis_valves:A-1", "gate", pytest.approx(152.4)),
        ("gis_valves:A-3", "butterfly", pytest.approx(152.4)),
    ]

    again = upload(client, "gis_valves.geojson", content, **MAPPING)
    assert (again.json["inserted"], again.json["updated"]) == (0, 2)


def test_upload_of_an_epanet_model(client: FlaskClient) -> None:
    path = Path(wntr.library.model_library.get_filepath("Net1"))
    model = wntr.network.WaterNetworkModel(str(path))
    response = upload(client, "Net1.inp", path.read_bytes(), crs="EPSG:3857")
    assert response.status_code == 200, response.json
    inserted = {layer["layer"]: layer["inserted"] for layer in response.json["layers"]}
    assert inserted == {
        "nodes": model.num_junctions + model.num_tanks + model.num_reservoirs,
        "pipes": model.num_pipes,
        "valves": model.num_valves,
        "stations": model.num_pumps,
    }


@pytest.mark.parametrize(
    ("name", "content", "fields", "field"),
    [
        ("Net1.inp", b"[TITLE]\n", {}, "crs"),  # EPANET files carry no CRS
        ("valves.geojson", b"not json at all", {}, "file"),
        ("valves.geojson", valves_file(), {"crs": "EPSG:3067"}, "file"),  # no features
        ("stuff.geojson", valves_file(foreign_valve("A", "GV")), {"crs": "EPSG:3067"}, "layer"),
        ("valves.geojson", valves_file(), {"map": "DIAMETER"}, "map"),
        ("valves.geojson", valves_file(), {"crs": "EPSG:99999999"}, "crs"),
        ("valves.geojson", valves_file(), {"layer": "pumps"}, "layer"),
    ],
)
def test_bad_uploads_are_422_naming_the_field(
    client: FlaskClient, name: str, content: bytes, fields: dict[str, Any], field: str
) -> None:
    response = upload(client, name, content, **fields)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == field


def test_a_request_without_a_file_is_422(client: FlaskClient) -> None:
    response = client.post(URL, data={"crs": "EPSG:3067"}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert response.json["field"] == "file"


def test_uploads_may_be_larger_than_other_bodies_up_to_their_own_limit(
    settings: Settings, connection: sa.Connection
) -> None:
    limited = load_settings(
        database_url=settings.database_url, max_request_bytes=2048, max_upload_bytes=8192
    )
    client = create_app(limited, bind=connection).test_client()
    features = [foreign_valve(f"A-{i}", "GV", 385_700 + i) for i in range(15)]
    content = valves_file(*features)
    assert 2048 < len(content) < 8000
    assert upload(client, "v.geojson", content, **MAPPING).status_code == 200
    too_big = valves_file(*features * 4)
    response = upload(client, "v.geojson", too_big, **MAPPING)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_only_roles_that_may_write_assets_may_import(
    settings: Settings, connection: sa.Connection
) -> None:
    viewer = load_settings(database_url=settings.database_url, anonymous_role="viewer")
    client = create_app(viewer, bind=connection).test_client()
    response = upload(client, "valves.geojson", valves_file(foreign_valve("A", "GV")), **MAPPING)
    assert response.status_code == 403
