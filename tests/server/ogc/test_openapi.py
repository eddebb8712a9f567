"""The OpenAPI definition and the queryables, checked by independent validators, and the
fixture city's features checked against the queryables' schema."""

from __future__ import annotations

import jsonschema
import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from fieldline.gis.layers import LAYERS
from tests.conftest import load_fixture


def test_openapi_document_is_valid_and_lists_every_collection(client: FlaskClient) -> None:
    response = client.get("/ogc/api")
    assert response.content_type == "application/vnd.oai.openapi+json;version=3.0"
    document = response.json
    validate(document)
    for name, layer in LAYERS.items():
        items = document["paths"][f"/collections/{name}/items"]
        assert {"get", "post"} <= set(items)
        assert {"get", "put", "patch", "delete"} <= set(
            document["paths"][f"/collections/{name}/items/{{featureId}}"]
        )
        # GDAL reads these to learn which attribute filters the server applies.
        names = {p.get("name") for p in items["get"]["parameters"]}
        assert {a.name for a in layer.attributes if a.kind != "text_list"} <= names
    limit = document["components"]["parameters"]["limit"]["schema"]
    assert limit["maximum"] == 10_000


@pytest.mark.parametrize("name", list(LAYERS))
def test_queryables_describe_the_stored_features(client: FlaskClient, name: str) -> None:
    response = client.get(f"/ogc/collections/{name}/queryables")
    assert response.mimetype == "application/schema+json"
    schema = response.json
    jsonschema.Draft202012Validator.check_schema(schema)
    layer = LAYERS[name]
    for attribute in layer.attributes:
        if attribute.choices:
            assert schema["properties"][attribute.name]["enum"] == list(attribute.choices)
        if attribute.kind == "datetime":
            assert schema["properties"][attribute.name]["format"] == "date-time"
    geometry = schema["properties"]["geometry"]
    assert geometry["format"] == f"geometry-{layer.geometry_type.lower()}"
    # Every feature the API serves fits the schema of what it can be queried by.
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    page = client.get(f"/ogc/collections/{name}/items?limit=200").json["features"]
    assert len(page) == min(200, len(load_fixture(name)))
    for feature in page:
        instance = {
            key: value
            for key, value in feature["properties"].items()
            if key in schema["properties"] and value is not None
        } | {"geometry": feature["geometry"]}
        validator.validate(instance)
