"""`GET /api/v1/network/isolation` on the fixture city."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from pyproj import Geod

from tests.conftest import load_fixture

URL = "/api/v1/network/isolation"


def get(client: FlaskClient, **params: Any) -> Any:
    return client.get(URL, query_string=params)


def a_trace_with_customers(client: FlaskClient) -> dict[str, Any]:
    """The first pipe (in id order) whose trace leaves meters without water."""
    for feature in load_fixture("pipes"):
        if feature["properties"]["status"] != "in_service":
            continue
        body = get(client, pipe_id=feature["id"]).get_json()
        if body["meters"] and body["pipes_without_supply"] and body["valves_to_close"]:
            return dict(body)
    raise AssertionError("no trace in the city leaves customers dry")


def test_a_trace_lists_what_to_close_and_who_is_affected(client: FlaskClient) -> None:
    body = a_trace_with_customers(client)
    assert body["pipe_id"] in body["isolated_pipes"]
    distances = [v["distance_m"] for v in body["valves_to_close"]]
    assert distances == sorted(distances)
    assert [v["order"] for v in body["valves_to_close"]] == list(range(1, len(distances) + 1))
    pipes = set(body["isolated_pipes"]) | set(body["pipes_without_supply"])
    # Meters and hydrants against the fixture files: every one fed from those pipes.
    expected_meters = {f["id"] for f in load_fixture("meters") if f["properties"]["pipe"] in pipes}
    assert {m["id"] for m in body["meters"]} == expected_meters
    expected_hydrants = {
        f["id"] for f in load_fixture("hydrants") if f["properties"]["pipe"] in pipes
    }
    assert {h["id"] for h in body["hydrants"]} == expected_hydrants
    assert body["customers"] == len({m["customer_account"] for m in body["meters"]})
    geod = Geod(ellps="WGS84")
    lengths = {
        f["id"]: geod.line_length(*zip(*f["geometry"]["coordinates"], strict=True))
        for f in load_fixture("pipes")
    }
    assert body["total_length_m"] == pytest.approx(sum(lengths[p] for p in pipes), abs=0.5)
    assert body["supplied_before"] is True

    roles: dict[str, set[str]] = {}
    collection = body["geojson"]
    assert collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        roles.setdefault(feature["properties"]["role"], set()).add(feature["id"])
    assert roles["broken_pipe"] == {body["pipe_id"]}
    assert roles["valve_to_close"] == {v["id"] for v in body["valves_to_close"]}
    assert roles["isolated_pipe"] | roles["broken_pipe"] == set(body["isolated_pipes"])
    assert roles["pipe_without_supply"] == set(body["pipes_without_supply"])
    assert roles["meter"] == expected_meters
    assert roles.get("hydrant", set()) == expected_hydrants


def test_a_point_finds_the_nearest_pipe_in_service(client: FlaskClient) -> None:
    pipe = next(f for f in load_fixture("pipes") if f["properties"]["status"] == "in_service")
    (lon1, lat1), (lon2, lat2) = pipe["geometry"]["coordinates"][:2]
    lon, lat = (lon1 + lon2) / 2, (lat1 + lat2) / 2
    response = get(client, lon=lon, lat=lat, radius_m=5)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["pipe_id"] == pipe["id"]
    assert body["located"]["distance_m"] < 1
    assert body["isolated_pipes"] == get(client, pipe_id=pipe["id"]).get_json()["isolated_pipes"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({}, 400, "pipe_id"),
        ({"pipe_id": "P-000001", "lon": "24.94"}, 400, "pipe_id"),
        ({"lon": "24.94"}, 400, "lat"),
        ({"lon": "east", "lat": "60.17"}, 400, "lon"),
        ({"lon": "24.94", "lat": "60.17", "radius_m": "9000"}, 400, "radius_m"),
        ({"pipe_id": "P-999999"}, 404, "pipe_id"),
        ({"lon": "24.80", "lat": "60.10", "radius_m": "100"}, 404, "radius_m"),
    ],
)
def test_bad_requests_name_the_field(
    client: FlaskClient, params: dict[str, str], status: int, field: str
) -> None:
    response = client.get(URL, query_string=params)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["field"] == field


def test_a_pipe_not_in_service_is_refused(client: FlaskClient) -> None:
    abandoned = next(f for f in load_fixture("pipes") if f["properties"]["status"] == "abandoned")
    response = get(client, pipe_id=abandoned["id"])
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["field"] == "pipe_id" and "not in service" in problem["detail"]


def test_a_network_without_sources_says_so(client: FlaskClient, connection: sa.Connection) -> None:
    connection.execute(
        sa.text(
            "UPDATE nodes SET kind = 'junction', updated_at = now()"
            " WHERE kind IN ('reservoir', 'tank')"
        )
    )
    response = get(client, pipe_id="P-000100")
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["field"] == "pipe_id" and "no source" in problem["detail"]
