"""FIELDLINE_OGC_PUBLIC_READS: OGC API - Features reads without credentials when set;
writes never."""

from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskClient

from fieldline.server import create_app
from fieldline.settings import Settings

FEATURE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
    "properties": {"label": "public"},
}


def test_ogc_reads_need_credentials_by_default(client: FlaskClient) -> None:
    assert client.get("/ogc/collections").status_code == 401
    assert client.get("/ogc/collections/pipes/items?limit=1").status_code == 401


def test_public_reads_open_the_ogc_reads_only(
    locked_settings: Settings, connection: sa.Connection
) -> None:
    public = locked_settings.model_copy(update={"ogc_public_reads": True})
    client = create_app(public, bind=connection).test_client()
    assert client.get("/ogc").status_code == 200
    assert client.get("/ogc/collections").status_code == 200
    items = client.get("/ogc/collections/pipes/items?limit=1")
    assert items.status_code == 200 and len(items.json["features"]) == 1
    assert client.post("/ogc/collections/markers/items", json=FEATURE).status_code == 401
    assert client.delete("/ogc/collections/pipes/items/P-000001").status_code == 401
    # The rest of the API stays closed.
    assert client.get("/api/v1/assets/pipes?limit=1").status_code == 401
    assert client.get("/tiles/pipes/14/9326/4740.mvt").status_code == 401
