"""`/api/v1/incidents` input checks (4xx naming the field at fault), the list by state, and
cancelling an incident with its tasks."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server.tasks.services import get_task
from tests.conftest import load_fixture

URL = "/api/v1/incidents"
CALLER = {"name": "Aino Virtanen", "phone": "+358 40 123 4567"}
HERE = {"lon": 24.9525, "lat": 60.1710}


def a_call(**changes: Any) -> dict[str, Any]:
    body = {**HERE, "description": "No water", "caller": CALLER} | changes
    return {k: v for k, v in body.items() if v is not None}


def opened(client: FlaskClient) -> str:
    response = client.post(URL, json=a_call())
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def in_service_pipe() -> str:
    return next(f["id"] for f in load_fixture("pipes") if f["properties"]["status"] == "in_service")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (a_call(description=None), 422, "description"),
        (a_call(description="  "), 422, "description"),
        (a_call(caller=None), 422, "caller"),
        (a_call(caller={"name": "No number"}), 422, "caller"),
        (a_call(caller={"phone": "call me"}), 422, "caller.phone"),
        (a_call(lat=None), 422, "lat"),
        (a_call(lon=None, lat=None), 422, "lon"),
        (a_call(lon=500), 422, "lon"),
        (a_call(lon="east"), 422, "lon"),
        (a_call(meter_id="M-000001"), 422, "meter_id"),
        (a_call(lon=None, lat=None, meter_id="M-999999"), 422, "meter_id"),
        (a_call(colour="red"), 422, "colour"),
        ([1, 2], 422, "body"),
    ],
)
def test_a_bad_call_names_its_field(
    incident_client: FlaskClient, body: Any, status: int, field: str
) -> None:
    response = incident_client.post(URL, json=body)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["field"] == field


def test_a_body_that_is_not_json_is_415(incident_client: FlaskClient) -> None:
    response = incident_client.post(URL, data="lon=1", content_type="text/plain")
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("query", "field"), [({"state": "burning"}, "state"), ({"limit": "0"}, "limit")]
)
def test_a_bad_list_query_is_400_naming_it(
    incident_client: FlaskClient, query: dict[str, str], field: str
) -> None:
    response = incident_client.get(URL, query_string=query)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_the_list_filters_by_state(incident_client: FlaskClient) -> None:
    first = opened(incident_client)
    listed = incident_client.get(URL, query_string={"state": "open"}).get_json()["incidents"]
    assert first in [i["id"] for i in listed]
    assert all(i["state"] == "open" for i in listed)
    none = incident_client.get(URL, query_string={"state": "closed"}).get_json()["incidents"]
    assert first not in [i["id"] for i in none]
    active = incident_client.get(URL, query_string={"state": "active"}).get_json()["incidents"]
    assert first in [i["id"] for i in active]


def test_an_unknown_incident_is_404(incident_client: FlaskClient) -> None:
    assert incident_client.get(f"{URL}/IN-999999").status_code == 404
    response = incident_client.post(f"{URL}/IN-999999/isolate", json={"pipe_id": "P-000001"})
    assert response.status_code == 404


def test_isolate_checks_the_pipe(incident_client: FlaskClient) -> None:
    incident = opened(incident_client)
    isolate = f"{URL}/{incident}/isolate"
    missing = incident_client.post(isolate, json={})
    assert (missing.status_code, missing.get_json()["field"]) == (422, "pipe_id")
    unknown = incident_client.post(isolate, json={"pipe_id": "P-999999"})
    assert (unknown.status_code, unknown.get_json()["field"]) == (404, "pipe_id")
    abandoned = next(
        f["id"] for f in load_fixture("pipes") if f["properties"]["status"] != "in_service"
    )
    out = incident_client.post(isolate, json={"pipe_id": abandoned})
    assert (out.status_code, out.get_json()["field"]) == (422, "pipe_id")
    # Nothing was stored by the refusals.
    shown = incident_client.get(f"{URL}/{incident}").get_json()
    assert (shown["state"], shown["pipe_id"], shown["tasks"]) == ("open", None, [])


def test_an_estimate_must_be_a_future_time(incident_client: FlaskClient) -> None:
    incident = opened(incident_client)
    for body in ({}, {"estimated_restoration": "tomorrow"},
                 {"estimated_restoration": "2020-01-01T00:00:00Z"}):  # fmt: skip
        response = incident_client.patch(f"{URL}/{incident}", json=body)
        assert response.status_code == 422, body
        assert response.get_json()["field"] == "estimated_restoration"
    unknown = incident_client.patch(f"{URL}/{incident}", json={"eta": "2030-01-01T00:00:00Z"})
    assert unknown.get_json()["field"] == "eta"


def test_cancelling_ends_the_incident_and_its_open_tasks(
    incident_client: FlaskClient, session: Session
) -> None:
    incident = opened(incident_client)
    pipe = in_service_pipe()
    isolated = incident_client.post(f"{URL}/{incident}/isolate", json={"pipe_id": pipe})
    assert isolated.status_code == 200, isolated.get_json()
    tasks = [t["id"] for t in isolated.get_json()["tasks"]]
    assert tasks
    no_reason = incident_client.post(f"{URL}/{incident}/cancel", json={})
    assert (no_reason.status_code, no_reason.get_json()["field"]) == (422, "reason")
    response = incident_client.post(f"{URL}/{incident}/cancel", json={"reason": "false alarm"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["state"] == "cancelled"
    assert response.get_json()["allowed_actions"] == []
    session.expire_all()
    assert {get_task(session, t).state for t in tasks} == {"cancelled"}
    again = incident_client.post(f"{URL}/{incident}/cancel", json={"reason": "twice"})
    assert again.status_code == 409


def test_a_viewer_reads_incidents_but_reports_none(
    settings: Any, connection: Any, incident_client: FlaskClient
) -> None:
    from fieldline.server import create_app
    from fieldline.settings import load_settings

    incident = opened(incident_client)
    viewer = load_settings(database_url=settings.database_url, anonymous_role="viewer")
    client = create_app(viewer, bind=connection).test_client()
    assert client.get(f"{URL}/{incident}").status_code == 200
    refused = client.post(URL, json=a_call())
    assert refused.status_code == 403
    assert "incidents:write" in refused.get_json()["detail"]
