from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField
from fieldline.server import create_app
from fieldline.server.auth.policy import ROLE_PERMISSIONS
from fieldline.server.crews.services import bind_device, create_crew
from fieldline.server.live.services import Live
from fieldline.settings import Settings, load_settings
from tests.conftest import load_fixture


def test_crews_get_public_ids_and_devices_bind_once(session: Session) -> None:
    crew = create_crew(session, "North patrol", "foot")
    other = create_crew(session, "South patrol")
    assert crew.public_id.startswith("C-") and other.mode == "vehicle"
    bind_device(session, crew.public_id, "owntracks", "anna/phone")
    assert bind_device(session, crew.public_id, "owntracks", "anna/phone")  # idempotent
    with pytest.raises(Conflict):
        bind_device(session, other.public_id, "owntracks", "anna/phone")
    with pytest.raises(InvalidField) as caught:
        bind_device(session, crew.public_id, "owntracks", "anna")
    assert caught.value.field == "identifier"
    with pytest.raises(InvalidField):
        create_crew(session, "Boat crew", "boat")


def test_track_is_ordered_by_fix_time_and_bounded(session: Session, client: FlaskClient) -> None:
    crew = create_crew(session, "Track crew")
    start = datetime(2026, 11, 23, 8, tzinfo=UTC)
    for minutes, lon in ((2, 24.92), (0, 24.90), (1, 24.91)):
        session.execute(
            sa.text(
                "INSERT INTO positions (crew_id, device, fix_time, lat, lon) "
                "VALUES (:c, 'handheld', :t, 60.17, :lon)"
            ),
            {"c": crew.public_id, "t": start + timedelta(minutes=minutes), "lon": lon},
        )
    session.flush()
    body = client.get(f"/api/v1/crews/{crew.public_id}/positions").get_json()
    line, *points = body["features"]
    assert line["geometry"]["coordinates"] == [[24.90, 60.17], [24.91, 60.17], [24.92, 60.17]]
    assert [p["properties"]["fix_time"] for p in points] == [
        (start + timedelta(minutes=m)).isoformat() for m in range(3)
    ]
    until = (start + timedelta(minutes=1)).isoformat()
    bounded = client.get(
        f"/api/v1/crews/{crew.public_id}/positions", query_string={"until": until}
    ).get_json()
    assert len(bounded["features"]) == 1  # one point, so no line


@pytest.mark.parametrize(
    ("query", "field"),
    [({"since": "yesterday"}, "since"), ({"until": "2026-11-23T08:00:00"}, "until")],
)
def test_bad_interval_is_a_400_naming_the_field(
    session: Session, client: FlaskClient, query: dict[str, str], field: str
) -> None:
    crew = create_crew(session, "Param crew")
    response = client.get(f"/api/v1/crews/{crew.public_id}/positions", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_unknown_crew_is_a_404(client: FlaskClient) -> None:
    assert client.get("/api/v1/crews/C-999999/positions").status_code == 404


def test_viewer_may_not_read_the_dead_letter(settings: Settings, connection: sa.Connection) -> None:
    viewer = load_settings(database_url=settings.database_url, anonymous_role="viewer")
    client = create_app(viewer, bind=connection).test_client()
    assert client.get("/api/v1/deadletter").status_code == 403
    assert client.get("/api/v1/crews").status_code == 200


# -- the roster API --------------------------------------------------------------------------

T0 = "2026-11-23T06:00:00+00:00"
T8 = "2026-11-23T14:00:00+00:00"

CREW = {
    "name": "Valve crew 1",
    "mode": "vehicle",
    "skills": ["welding", "valve_operation", "welding"],
    "depot": {"lon": 24.93, "lat": 60.16},
    "phone": "+358 40 123 4567",
    "members": [{"name": "Aino", "role": "lead", "phone": "040 111 2222"}, {"name": "Eero"}],
}


@pytest.fixture
def live_prefix() -> Iterator[str]:
    """A Redis prefix of this test's own, removed afterwards."""
    prefix = f"fieldline-roster-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    store = Live.from_url(load_settings().redis_url, prefix)
    store.client.delete(store.keys.latest, store.keys.fix_ms, store.keys.geo)


@pytest.fixture
def roster_client(settings: Settings, connection: sa.Connection, live_prefix: str) -> FlaskClient:
    own = load_settings(database_url=settings.database_url, redis_prefix=live_prefix)
    return create_app(own, bind=connection).test_client()


def crew_count(connection: sa.Connection) -> int:
    return connection.execute(sa.text("SELECT count(*) FROM crews")).scalar_one()


def test_create_a_crew_with_everything(client: FlaskClient) -> None:
    response = client.post("/api/v1/crews", json=CREW)
    assert response.status_code == 201, response.get_json()
    crew = response.get_json()
    assert response.headers["Location"] == f"/api/v1/crews/{crew['id']}"
    assert crew["skills"] == ["valve_operation", "welding"]  # vocabulary order, no repeats
    assert crew["depot"] == {"lon": 24.93, "lat": 60.16}
    assert crew["phone"] == "+358 40 123 4567"
    assert crew["members"] == [
        {"name": "Aino", "role": "lead", "phone": "040 111 2222"},
        {"name": "Eero", "role": "member", "phone": None},
    ]
    assert crew["status"] == "off_shift" and crew["shifts"] == [] and crew["devices"] == []
    assert crew["position"] == {"lon": 24.93, "lat": 60.16, "time": None, "source": "depot"}
    assert client.get(f"/api/v1/crews/{crew['id']}").get_json() == crew


def test_a_depot_may_be_a_geojson_point(client: FlaskClient) -> None:
    body = {"name": "Point crew", "depot": {"type": "Point", "coordinates": [24.9, 60.2]}}
    crew = client.post("/api/v1/crews", json=body).get_json()
    assert crew["depot"] == {"lon": 24.9, "lat": 60.2} and crew["mode"] == "vehicle"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": 7}, "name"),
        ({"name": "x", "mode": "boat"}, "mode"),
        ({"name": "x", "skills": "welding"}, "skills"),
        ({"name": "x", "skills": ["welding", "juggling"]}, "skills[1]"),
        ({"name": "x", "depot": {"lon": 200, "lat": 0}}, "depot"),
        ({"name": "x", "depot": {"type": "Point", "coordinates": [24.9]}}, "depot"),
        ({"name": "x", "depot": [24.9, "60"]}, "depot"),
        ({"name": "x", "depot": {"x": 1, "y": 2}}, "depot"),
        ({"name": "x", "phone": "call me"}, "phone"),
        ({"name": "x", "members": [{"name": "A", "role": "boss"}]}, "members[0].role"),
        ({"name": "x", "members": [{"role": "lead"}]}, "members[0].name"),
        ({"name": "x", "members": [{"name": "A", "age": 40}]}, "members[0].age"),
        (
            {
                "name": "x",
                "members": [{"name": "A", "role": "lead"}, {"name": "B", "role": "lead"}],
            },
            "members[1].role",
        ),
        ({"name": "x", "members": "Aino"}, "members"),
        ({"name": "x", "colour": "red"}, "colour"),
        (["x"], "body"),
    ],
)
def test_bad_crews_are_422s_naming_the_field_and_store_nothing(
    client: FlaskClient, connection: sa.Connection, body: Any, field: str
) -> None:
    before = crew_count(connection)
    response = client.post("/api/v1/crews", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["field"] == field
    assert crew_count(connection) == before


def test_a_crew_must_be_sent_as_json(client: FlaskClient) -> None:
    assert client.post("/api/v1/crews", data="name=x").status_code == 415
    response = client.post("/api/v1/crews", data="{", content_type="application/json")
    assert response.status_code == 422 and response.get_json()["field"] == "body"


def test_patch_changes_only_what_it_names(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json=CREW).get_json()
    url = f"/api/v1/crews/{crew['id']}"
    patched = client.patch(
        url, json={"skills": ["leak_detection"], "depot": None, "members": [{"name": "Eero"}]}
    )
    assert patched.status_code == 200, patched.get_json()
    after = patched.get_json()
    assert after["skills"] == ["leak_detection"] and after["depot"] is None
    assert after["members"] == [{"name": "Eero", "role": "member", "phone": None}]
    assert (after["name"], after["mode"], after["phone"]) == (
        crew["name"],
        crew["mode"],
        crew["phone"],
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"mode": None}, "mode"),
        ({"skills": ["leak_detection", 3]}, "skills[1]"),
        ({"members": [{"name": "A"}, {"name": ""}]}, "members[1].name"),
        ({"id": "C-000009"}, "id"),
    ],
)
def test_a_bad_patch_changes_nothing(client: FlaskClient, body: Any, field: str) -> None:
    crew = client.post("/api/v1/crews", json=CREW).get_json()
    url = f"/api/v1/crews/{crew['id']}"
    # A valid change next to the bad one must not be applied either.
    response = client.patch(url, json={"phone": "+358 9 000 000", **body})
    assert response.status_code == 422 and response.get_json()["field"] == field
    assert client.get(url).get_json() == crew


def test_unknown_crews_are_404s(client: FlaskClient) -> None:
    for method, path, body in [
        ("get", "/api/v1/crews/C-999999", None),
        ("patch", "/api/v1/crews/C-999999", {"name": "x"}),
        ("delete", "/api/v1/crews/C-999999", None),
        ("post", "/api/v1/crews/C-999999/shifts", {"starts_at": T0, "ends_at": T8}),
        ("get", "/api/v1/crews/C-999999/shifts", None),
        ("delete", "/api/v1/crews/C-999999/shifts/1", None),
        ("post", "/api/v1/crews/C-999999/devices", {"kind": "own", "identifier": "h1"}),
        ("delete", "/api/v1/crews/C-999999/devices/own/h1", None),
    ]:
        response = getattr(client, method)(path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.mimetype == "application/problem+json"


def test_delete_a_crew_frees_its_devices(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Short-lived"}).get_json()
    other = client.post("/api/v1/crews", json={"name": "Heir"}).get_json()
    device = {"kind": "owntracks", "identifier": "heir/phone"}
    assert client.post(f"/api/v1/crews/{crew['id']}/devices", json=device).status_code == 200
    client.post(f"/api/v1/crews/{crew['id']}/shifts", json={"starts_at": T0, "ends_at": T8})
    assert client.delete(f"/api/v1/crews/{crew['id']}").status_code == 204
    assert client.get(f"/api/v1/crews/{crew['id']}").status_code == 404
    assert client.post(f"/api/v1/crews/{other['id']}/devices", json=device).status_code == 200


def test_a_crew_with_a_recorded_track_is_kept(session: Session, client: FlaskClient) -> None:
    crew = create_crew(session, "Tracked crew")
    session.execute(
        sa.text(
            "INSERT INTO positions (crew_id, device, fix_time, lat, lon) "
            "VALUES (:c, 'handheld', now(), 60.17, 24.94)"
        ),
        {"c": crew.public_id},
    )
    session.flush()
    response = client.delete(f"/api/v1/crews/{crew.public_id}")
    assert response.status_code == 409 and "history" in response.get_json()["detail"]
    assert client.get(f"/api/v1/crews/{crew.public_id}").status_code == 200


# -- shifts ----------------------------------------------------------------------------------


def test_shifts_are_added_listed_and_removed(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Shift crew"}).get_json()
    url = f"/api/v1/crews/{crew['id']}/shifts"
    first = client.post(url, json={"starts_at": T0, "ends_at": T8})
    assert first.status_code == 201
    shift = first.get_json()
    assert (shift["starts_at"], shift["ends_at"]) == (T0, T8)
    # Back to back, in another time zone: 14:00Z is 16:00+02:00.
    second = client.post(
        url, json={"starts_at": "2026-11-23T16:00:00+02:00", "ends_at": "2026-11-23T22:00:00Z"}
    ).get_json()
    listed = client.get(url).get_json()["shifts"]
    assert [s["id"] for s in listed] == [shift["id"], second["id"]]
    later = client.get(url, query_string={"since": T8}).get_json()["shifts"]
    assert [s["id"] for s in later] == [second["id"]]  # ends_at is excluded
    earlier = client.get(url, query_string={"until": T8}).get_json()["shifts"]
    assert [s["id"] for s in earlier] == [shift["id"]]
    assert client.delete(f"{url}/{shift['id']}").status_code == 204
    assert client.delete(f"{url}/{shift['id']}").status_code == 404
    assert [s["id"] for s in client.get(url).get_json()["shifts"]] == [second["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"starts_at": T8, "ends_at": T0}, "ends_at"),
        ({"starts_at": T0, "ends_at": T0}, "ends_at"),
        ({"starts_at": "2026-11-23T06:00:00", "ends_at": T8}, "starts_at"),
        ({"starts_at": T0}, "ends_at"),
        ({"starts_at": "tomorrow", "ends_at": T8}, "starts_at"),
        ({"starts_at": T0, "ends_at": "2026-11-24T06:00:01+00:00"}, "ends_at"),  # over 24 h
    ],
)
def test_bad_shifts_are_422s(client: FlaskClient, body: dict[str, str], field: str) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Bad shift crew"}).get_json()
    url = f"/api/v1/crews/{crew['id']}/shifts"
    response = client.post(url, json=body)
    assert response.status_code == 422 and response.get_json()["field"] == field
    assert client.get(url).get_json()["shifts"] == []


def test_overlapping_shifts_are_a_409(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Overlap crew"}).get_json()
    url = f"/api/v1/crews/{crew['id']}/shifts"
    first = client.post(url, json={"starts_at": T0, "ends_at": T8}).get_json()
    response = client.post(
        url, json={"starts_at": "2026-11-23T13:59:59Z", "ends_at": "2026-11-23T20:00:00Z"}
    )
    assert response.status_code == 409 and str(first["id"]) in response.get_json()["detail"]
    assert len(client.get(url).get_json()["shifts"]) == 1


def test_a_shift_of_another_crew_is_not_found(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Owner crew"}).get_json()
    other = client.post("/api/v1/crews", json={"name": "Other crew"}).get_json()
    shift = client.post(
        f"/api/v1/crews/{crew['id']}/shifts", json={"starts_at": T0, "ends_at": T8}
    ).get_json()
    assert client.delete(f"/api/v1/crews/{other['id']}/shifts/{shift['id']}").status_code == 404
    assert len(client.get(f"/api/v1/crews/{crew['id']}/shifts").get_json()["shifts"]) == 1


def test_bad_shift_interval_is_a_400(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Interval crew"}).get_json()
    response = client.get(f"/api/v1/crews/{crew['id']}/shifts", query_string={"since": "soon"})
    assert response.status_code == 400 and response.get_json()["field"] == "since"


def test_status_comes_from_shifts_and_the_latest_fix_in_redis(
    roster_client: FlaskClient, live_prefix: str
) -> None:
    client = roster_client
    crew = client.post(
        "/api/v1/crews", json={"name": "Live crew", "depot": [24.9, 60.1]}
    ).get_json()
    url = f"/api/v1/crews/{crew['id']}"
    now = datetime.now(UTC)
    shift = {
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    client.post(f"{url}/shifts", json=shift)
    seen = client.get(url).get_json()
    assert seen["status"] == "no_signal" and seen["shifts"][0]["starts_at"] == shift["starts_at"]
    assert seen["position"]["source"] == "depot"

    fix_time = now - timedelta(seconds=10)
    fix = {"crew_id": crew["id"], "fix_time": fix_time.isoformat(), "lat": 60.17, "lon": 24.94}
    store = Live.from_url(load_settings().redis_url, live_prefix)
    store.update_latest(crew["id"], int(fix_time.timestamp() * 1000), 24.94, 60.17, fix)
    seen = client.get(url).get_json()
    assert seen["status"] == "available" and seen["latest"] == fix
    assert seen["position"] == {
        "lon": 24.94,
        "lat": 60.17,
        "time": fix_time.isoformat(),
        "source": "fix",
    }
    listed = {c["id"]: c for c in client.get("/api/v1/crews").get_json()["crews"]}
    assert listed[crew["id"]] == seen


def test_the_list_shows_shifts_around_now_only(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Calendar crew"}).get_json()
    url = f"/api/v1/crews/{crew['id']}/shifts"
    now = datetime.now(UTC).replace(microsecond=0)
    starts = [now - timedelta(days=2), now - timedelta(hours=2), now + timedelta(days=2)]
    for start in starts:
        client.post(
            url,
            json={
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=8)).isoformat(),
            },
        )
    listed = {c["id"]: c for c in client.get("/api/v1/crews").get_json()["crews"]}
    assert [s["starts_at"] for s in listed[crew["id"]]["shifts"]] == [starts[1].isoformat()]
    assert listed[crew["id"]]["status"] == "no_signal"


def test_the_list_pages_by_crew_id_with_next_links(
    roster_client: FlaskClient, live_prefix: str
) -> None:
    client = roster_client
    made = [client.post("/api/v1/crews", json={"name": f"Paged {i}"}).get_json() for i in range(5)]
    now = datetime.now(UTC)
    fix = {"crew_id": made[3]["id"], "fix_time": now.isoformat(), "lat": 60.17, "lon": 24.94}
    store = Live.from_url(load_settings().redis_url, live_prefix)
    store.update_latest(made[3]["id"], int(now.timestamp() * 1000), 24.94, 60.17, fix)
    everything = client.get("/api/v1/crews").get_json()
    assert set(everything) == {"crews"}  # without paging, the answer it always was
    pages, url = [], "/api/v1/crews?limit=2"
    while url:
        page = client.get(url).get_json()
        assert len(page["crews"]) <= 2 and page["links"][0]["rel"] == "self"
        pages += page["crews"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), "")
    assert pages == everything["crews"]
    assert next(c for c in pages if c["id"] == made[3]["id"])["latest"] == fix
    after = client.get("/api/v1/crews", query_string={"cursor": made[2]["id"]}).get_json()
    assert [c["id"] for c in after["crews"][:2]] == [made[3]["id"], made[4]["id"]]


def test_latest_fixes_of_some_crews_only(live_prefix: str) -> None:
    store = Live.from_url(load_settings().redis_url, live_prefix)
    fixes = {
        crew: {"crew_id": crew, "fix_time": f"2026-11-23T10:0{i}:00+00:00", "lat": 60.1, "lon": i}
        for i, crew in enumerate(("C-1", "C-2", "C-3"))
    }
    for i, (crew, fix) in enumerate(fixes.items()):
        store.update_latest(crew, 1_000 + i, float(i), 60.1, fix)
    assert store.latest() == fixes
    assert store.latest(["C-3", "C-9", "C-1"]) == {"C-3": fixes["C-3"], "C-1": fixes["C-1"]}
    assert store.latest([]) == {}


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"), ({"cursor": "C" * 101}, "cursor")],
)
def test_bad_crew_paging_is_a_400_naming_the_field(
    client: FlaskClient, query: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/crews", query_string=query)
    assert response.status_code == 400 and response.get_json()["field"] == field


# -- device bindings -------------------------------------------------------------------------


def test_devices_bind_and_unbind_through_the_api(client: FlaskClient) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Phone crew"}).get_json()
    other = client.post("/api/v1/crews", json={"name": "Rival crew"}).get_json()
    url = f"/api/v1/crews/{crew['id']}/devices"
    device = {"kind": "owntracks", "identifier": "alice/phone"}
    bound = client.post(url, json=device)
    assert bound.status_code == 200
    body = bound.get_json()
    # The device's MQTT login: its name, and a password shown this once.
    assert body.pop("mqtt")["username"] == "alice/phone"
    assert body == {"crew_id": crew["id"], **device}
    assert client.post(url, json=device).status_code == 200  # again: the same binding
    taken = client.post(f"/api/v1/crews/{other['id']}/devices", json=device)
    assert taken.status_code == 409 and crew["id"] in taken.get_json()["detail"]
    assert client.get(f"/api/v1/crews/{crew['id']}").get_json()["devices"] == [device]
    assert client.delete(f"{url}/owntracks/alice/phone").status_code == 204
    assert client.delete(f"{url}/owntracks/alice/phone").status_code == 404
    assert client.get(f"/api/v1/crews/{crew['id']}").get_json()["devices"] == []
    assert client.post(f"/api/v1/crews/{other['id']}/devices", json=device).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "pager", "identifier": "x"}, "kind"),
        ({"identifier": "x"}, "kind"),
        ({"kind": "owntracks", "identifier": "alice"}, "identifier"),
        ({"kind": "owntracks", "identifier": "alice/"}, "identifier"),
        ({"kind": "owntracks", "identifier": "alice/+"}, "identifier"),
        ({"kind": "own", "identifier": "hand held"}, "identifier"),
        ({"kind": "own", "identifier": "a/b"}, "identifier"),
        ({"kind": "own", "identifier": ""}, "identifier"),
        ({"kind": "own"}, "identifier"),
        ({"kind": "own", "identifier": 5}, "identifier"),
    ],
)
def test_bad_bindings_are_422s(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    crew = client.post("/api/v1/crews", json={"name": "Binding crew"}).get_json()
    response = client.post(f"/api/v1/crews/{crew['id']}/devices", json=body)
    assert response.status_code == 422 and response.get_json()["field"] == field
    assert client.get(f"/api/v1/crews/{crew['id']}").get_json()["devices"] == []


# -- stations and their bindings -------------------------------------------------------------


def stations_by_id(client: FlaskClient) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in client.get("/api/v1/stations").get_json()["stations"]}


def test_stations_list_their_bindings(client: FlaskClient) -> None:
    fixture = {f["id"]: f for f in load_fixture("stations")}
    stations = stations_by_id(client)
    assert set(stations) == set(fixture)
    one = stations["S-000002"]
    assert one["name"] == fixture["S-000002"]["properties"]["name"]
    assert one["geometry"]["coordinates"] == pytest.approx(
        fixture["S-000002"]["geometry"]["coordinates"]
    )
    url = "/api/v1/stations/S-000002/bindings"
    for source in ("spb:plant/edge-9/pump", "PS-KAMPPI-9"):
        response = client.post(url, json={"source": source})
        assert response.status_code == 200
        assert response.get_json() == {"station_id": "S-000002", "source": source}
    assert stations_by_id(client)["S-000002"]["bindings"] == [
        "PS-KAMPPI-9",
        "spb:plant/edge-9/pump",
    ]
    assert client.delete(f"{url}/spb:plant/edge-9/pump").status_code == 204
    assert client.delete(f"{url}/spb:plant/edge-9/pump").status_code == 404
    assert stations_by_id(client)["S-000002"]["bindings"] == ["PS-KAMPPI-9"]


@pytest.mark.parametrize(
    ("station", "body", "status", "field"),
    [
        ("S-999999", {"source": "PS-X"}, 404, None),
        ("S-000002", {"source": " PS-X"}, 422, "source"),
        ("S-000002", {"source": 12}, 422, "source"),
        ("S-000002", {}, 422, "source"),
        ("S-000002", {"source": "spb:plant"}, 422, "source"),
        ("S-000002", {"source": "spb:plant//edge"}, 422, "source"),
        ("S-000002", {"source": "PS-#"}, 422, "source"),
        ("S-000002", {"source": "S-000001"}, 409, None),  # another station's own id
        ("S-000002", {"source": "PS-TAKEN"}, 409, None),
    ],
)
def test_bad_station_bindings(
    client: FlaskClient, station: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    client.post("/api/v1/stations/S-000001/bindings", json={"source": "PS-TAKEN"})
    before = stations_by_id(client)
    response = client.post(f"/api/v1/stations/{station}/bindings", json=body)
    assert response.status_code == status
    assert response.get_json().get("field") == field
    assert stations_by_id(client) == before


# -- who may write ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_roster_writes_follow_the_role_table(
    role: str, settings: Settings, connection: sa.Connection
) -> None:
    as_role = load_settings(database_url=settings.database_url, anonymous_role=role)
    client = create_app(as_role, bind=connection).test_client()
    may = ROLE_PERMISSIONS[role]
    created = client.post("/api/v1/crews", json={"name": f"{role} crew"})
    assert created.status_code == (201 if "crews:write" in may else 403)
    crew_id = created.get_json()["id"] if created.status_code == 201 else "C-000001"
    bound = client.post(
        f"/api/v1/crews/{crew_id}/devices", json={"kind": "own", "identifier": f"{role}-h"}
    )
    assert bound.status_code in ((200, 404) if "devices:write" in may else (403,))
    station = client.post("/api/v1/stations/S-000005/bindings", json={"source": f"PS-{role}"})
    assert station.status_code == (200 if "stations:write" in may else 403)
    assert ROLE_PERMISSIONS["dispatcher"] >= {"crews:write"}
    assert "devices:write" not in ROLE_PERMISSIONS["dispatcher"]
