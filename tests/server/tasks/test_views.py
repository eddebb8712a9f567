"""`/api/v1/tasks` over HTTP: every endpoint, its 4xx answers naming the field, the 409 of an
illegal transition naming the state, GeoJSON for the map, and who may do what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.server import create_app
from fieldline.server.auth.policy import Principal
from fieldline.server.crews.models import Crew
from fieldline.settings import Settings, load_settings
from tests.server.tasks.conftest import repair_on

PROBLEM = "application/problem+json"


@pytest.fixture
def api_app(settings: Settings, connection: sa.Connection) -> Flask:
    # Live events go to a channel of this test's own.
    tag = uuid.uuid4().hex[:8]
    own = load_settings(
        database_url=settings.database_url, redis_prefix=f"fieldline_test_tasks_{tag}"
    )
    return create_app(own, bind=connection)


@pytest.fixture
def api(api_app: Flask) -> FlaskClient:
    return api_app.test_client()


def as_principal(app: Flask, principal: Principal) -> None:
    """Requests made after this act as `principal` (what sign-in will resolve)."""
    app.before_request_funcs.setdefault(None, []).append(lambda: setattr(g, "principal", principal))


def create(api: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/tasks", json=body)
    assert response.status_code == 201, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def move(api: FlaskClient, task_id: str, **body: Any) -> Any:
    return api.post(f"/api/v1/tasks/{task_id}/transitions", json=body)


def test_create_read_and_locate(api: FlaskClient, city: dict[str, Any]) -> None:
    pipe = city["pipes"][20]
    response = api.post("/api/v1/tasks", json=repair_on(pipe["id"]))
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/tasks/{body['id']}")
    assert body["state"] == "created" and body["crew"] is None
    assert body["assets"][0] | {"lon": 0, "lat": 0} == {
        "layer": "pipes",
        "id": pipe["id"],
        "role": "target",
        "lon": 0,
        "lat": 0,
    }
    assert (body["assets"][0]["lon"], body["assets"][0]["lat"]) == (
        body["site"]["lon"],
        body["site"]["lat"],
    )
    assert body["allowed_actions"] == ["assign", "cancel"]
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["promised_arrival_at"]) - created == timedelta(minutes=45)
    assert body["history"] == []
    again = api.get(f"/api/v1/tasks/{body['id']}").get_json()
    assert again == body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"assets": [{"layer": "pipes", "id": "P-999999"}]}, "assets[0].id"),
        ({"caller": {"name": "No contact"}}, "caller"),
        ({"wish": "soon"}, "wish"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    api: FlaskClient, city: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    response = api.post("/api/v1/tasks", json=repair_on(city["pipes"][0]["id"]) | changes)
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert response.get_json()["field"] == field


def test_bodies_must_be_json_objects(api: FlaskClient) -> None:
    assert api.post("/api/v1/tasks", data="kind=repair").status_code == 415
    response = api.post("/api/v1/tasks", json=["repair"])
    assert response.status_code == 422 and response.get_json()["field"] == "body"
    assert api.get("/api/v1/tasks/T-999999").status_code == 404
    assert move(api, "T-999999", action="cancel").status_code == 404


def test_the_crew_path_through_the_api_with_history(
    api: FlaskClient, city: dict[str, Any], crews: list[Crew]
) -> None:
    north, south = crews
    task = create(api, repair_on(city["pipes"][21]["id"]))["id"]
    at = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    before = (at - timedelta(minutes=1)).isoformat()
    response = move(
        api, task, action="assign", crew=north.public_id, note="bring the pump", at=before
    )
    assert response.status_code == 200
    moved = response.get_json()
    assert moved["transition"] | {"at": None, "recorded_at": None} == {
        "action": "assign",
        "from_state": "created",
        "to_state": "assigned",
        "crew": north.public_id,
        "actor": "local-operator",
        "actor_kind": "dispatcher",
        "at": None,
        "recorded_at": None,
        "position": None,
        "note": "bring the pump",
    }
    assert moved["task"]["crew"] == north.public_id and moved["task"]["offer_expires_at"]
    assert [(d["crew_id"], d["kind"]) for d in moved["inbox"]] == [
        (north.public_id, "task.assigned")
    ]
    earlier = move(api, task, action="accept", at=(at - timedelta(minutes=5)).isoformat())
    assert earlier.status_code == 422 and earlier.get_json()["field"] == "at"
    response = move(api, task, action="accept", at=at.isoformat(), position=[24.94, 60.17])
    assert response.get_json()["transition"]["at"] == at.isoformat()
    assert response.get_json()["transition"]["position"] == {"lon": 24.94, "lat": 60.17}
    transfer = api.post(f"/api/v1/tasks/{task}/transfer", json={"crew": south.public_id})
    assert transfer.status_code == 200
    assert {(d["crew_id"], d["kind"]) for d in transfer.get_json()["inbox"]} == {
        (south.public_id, "task.assigned"),
        (north.public_id, "task.transferred"),
    }
    for action in ("accept", "arrive", "complete"):
        assert move(api, task, action=action).status_code == 200
    reject = api.post(f"/api/v1/tasks/{task}/reject", json={"note": "still leaking"})
    assert reject.get_json()["task"]["reopen_count"] == 1
    assert [d["kind"] for d in reject.get_json()["inbox"]] == ["task.reopened"]
    for action in ("accept", "arrive", "complete"):
        move(api, task, action=action)
    verify = api.post(f"/api/v1/tasks/{task}/verify")  # no body needed
    assert verify.status_code == 200 and verify.get_json()["task"]["state"] == "verified"

    history = api.get(f"/api/v1/tasks/{task}/history").get_json()["history"]
    assert [h["action"] for h in history] == [
        "assign", "accept", "transfer", "accept", "arrive", "complete",
        "reject", "accept", "arrive", "complete", "verify",
    ]  # fmt: skip
    assert history[1]["at"] == at.isoformat()
    assert api.get(f"/api/v1/tasks/{task}").get_json()["history"] == history


def test_an_illegal_transition_is_409_with_the_state(
    api: FlaskClient, city: dict[str, Any], crews: list[Crew]
) -> None:
    task = create(api, repair_on(city["pipes"][22]["id"]))["id"]
    response = move(api, task, action="complete")
    assert response.status_code == 409 and response.mimetype == PROBLEM
    problem = response.get_json()
    assert problem["state"] == "created" and "created" in problem["detail"]
    assert problem["allowed_actions"] == ["assign", "cancel"]
    assert api.post(f"/api/v1/tasks/{task}/cancel").status_code == 200
    again = api.post(f"/api/v1/tasks/{task}/cancel")
    assert again.status_code == 409 and again.get_json()["state"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "assign"}, "crew"),
        ({"action": "assign", "crew": "C-999999"}, "crew"),
        ({"action": "teleport"}, "action"),
        ({"action": "cancel", "at": "2099-01-01T00:00:00Z"}, "at"),
        ({"action": "cancel", "at": "yesterday"}, "at"),
        ({"action": "cancel", "position": [24.9]}, "position"),
        ({"action": "cancel", "mood": "sad"}, "mood"),
    ],
)
def test_bad_transition_requests_are_422_naming_the_field(
    api: FlaskClient, city: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    task = create(api, repair_on(city["pipes"][23]["id"]))["id"]
    response = move(api, task, **body)
    assert response.status_code == 422 and response.get_json()["field"] == field
    assert api.get(f"/api/v1/tasks/{task}").get_json()["state"] == "created"


def test_patch_edits_and_moves_the_promises(api: FlaskClient, city: dict[str, Any]) -> None:
    body = create(api, repair_on(city["pipes"][24]["id"], priority="P4"))
    task = body["id"]
    response = api.patch(
        f"/api/v1/tasks/{task}",
        json={"priority": "P2", "title": "Leak by the school", "caller": {"email": "a@b.fi"}},
    )
    assert response.status_code == 200
    patched = response.get_json()
    assert (patched["priority"], patched["title"]) == ("P2", "Leak by the school")
    assert patched["caller"] == {"email": "a@b.fi"}
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(patched["promised_arrival_at"]) == created + timedelta(hours=2)
    bad = api.patch(f"/api/v1/tasks/{task}", json={"kind": "patrol"})
    assert bad.status_code == 422 and bad.get_json()["field"] == "kind"
    api.post(f"/api/v1/tasks/{task}/cancel")
    late = api.patch(f"/api/v1/tasks/{task}", json={"priority": "P1"})
    assert late.status_code == 409 and "cancelled" in late.get_json()["detail"]


def test_lists_filter_page_and_serve_geojson(
    api: FlaskClient, session: Session, city: dict[str, Any], crews: list[Crew]
) -> None:
    pipes = city["pipes"][30:35]
    ids = [
        create(api, repair_on(p["id"], priority="P2" if i % 2 else "P3"))["id"]
        for i, p in enumerate(pipes)
    ]
    move(api, ids[0], action="assign", crew=crews[0].public_id)
    mine = api.get("/api/v1/tasks", query_string={"crew": crews[0].public_id}).get_json()["tasks"]
    assert [t["id"] for t in mine] == [ids[0]]
    since = min(t["created_at"] for t in (api.get(f"/api/v1/tasks/{i}").get_json() for i in ids))
    listed = api.get("/api/v1/tasks", query_string={"since": since, "priority": "P2"}).get_json()
    assert sorted(t["id"] for t in listed["tasks"]) == sorted(ids[1::2])
    states = api.get(
        "/api/v1/tasks",
        query_string={"since": since, "state": "assigned,created", "kind": "repair"},
    ).get_json()["tasks"]
    assert sorted(t["id"] for t in states) == sorted(ids)
    assert (
        api.get("/api/v1/tasks", query_string={"since": since, "state": "assigned"}).get_json()[
            "tasks"
        ][0]["id"]
        == ids[0]
    )

    # Newest first, two a page, following the next links.
    seen: list[str] = []
    url = "/api/v1/tasks?" + urlencode({"since": since, "limit": "2"})
    while url:
        page = api.get(url).get_json()
        seen += [t["id"] for t in page["tasks"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), "")
    assert seen == list(reversed(ids))

    # The bounding box of the first pipe's middle holds that task only among ours.
    first = api.get(f"/api/v1/tasks/{ids[0]}").get_json()["site"]
    bbox = ",".join(
        str(v)
        for v in (
            first["lon"] - 1e-7,
            first["lat"] - 1e-7,
            first["lon"] + 1e-7,
            first["lat"] + 1e-7,
        )
    )
    boxed = api.get("/api/v1/tasks", query_string={"bbox": bbox, "since": since}).get_json()[
        "tasks"
    ]
    assert [t["id"] for t in boxed] == [ids[0]]

    collection = api.get("/api/v1/tasks", query_string={"since": since, "f": "geojson"})
    assert collection.mimetype == "application/geo+json"
    features = collection.get_json()["features"]
    assert {f["id"] for f in features} == set(ids)
    feature = next(f for f in features if f["id"] == ids[0])
    assert feature["geometry"] == {"type": "Point", "coordinates": [first["lon"], first["lat"]]}
    assert feature["properties"]["crew"] == crews[0].public_id
    accepted = api.get(
        "/api/v1/tasks", query_string={"since": since}, headers={"Accept": "application/geo+json"}
    )
    assert accepted.mimetype == "application/geo+json"
    assert "tasks" in api.get("/api/v1/tasks", headers={"Accept": "*/*"}).get_json()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "sleeping"}, "state"),
        ({"priority": "P9"}, "priority"),
        ({"limit": "0"}, "limit"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"since": "today"}, "since"),
        ({"f": "xml"}, "f"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(
    api: FlaskClient, query: dict[str, str], field: str
) -> None:
    response = api.get("/api/v1/tasks", query_string=query)
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_viewers_read_crew_members_move_their_own_tasks(
    api_app: Flask, city: dict[str, Any], crews: list[Crew]
) -> None:
    north, south = crews
    dispatcher = api_app.test_client()
    task = create(dispatcher, repair_on(city["pipes"][40]["id"]))["id"]
    move(dispatcher, task, action="assign", crew=north.public_id)

    viewer_app = api_app
    as_principal(viewer_app, Principal("vera", "viewer"))
    viewer = viewer_app.test_client()
    assert viewer.get(f"/api/v1/tasks/{task}").status_code == 200
    assert viewer.post("/api/v1/tasks", json={}).status_code == 403
    assert move(viewer, task, action="cancel").status_code == 403
    viewer_app.before_request_funcs[None].pop()

    as_principal(api_app, Principal("kalle", "crew_member", crew_id=south.public_id))
    stranger = api_app.test_client()
    # Another crew's task is not found for a crew member, as if it did not exist.
    assert move(stranger, task, action="accept").status_code == 404
    api_app.before_request_funcs[None].pop()

    as_principal(api_app, Principal("kalle", "crew_member"))
    assert move(api_app.test_client(), task, action="accept").status_code == 403  # no crew
    api_app.before_request_funcs[None].pop()

    as_principal(api_app, Principal("ilona", "crew_member", crew_id=north.public_id))
    member = api_app.test_client()
    accepted = move(member, task, action="accept")
    assert accepted.status_code == 200
    assert accepted.get_json()["transition"]["actor"] == north.public_id
    assert accepted.get_json()["transition"]["actor_kind"] == "crew"
    assert accepted.get_json()["inbox"] == []  # the crew is not told what it did
    cancel = member.post(f"/api/v1/tasks/{task}/cancel")
    assert cancel.status_code == 422 and cancel.get_json()["field"] == "action"
    assert member.post("/api/v1/tasks", json={}).status_code == 403
