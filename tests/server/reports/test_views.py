"""Supervisors' view of the crews' field reports: the list, one report with its photos, and
the review (a correction applied to its asset through the audited edit)."""

from __future__ import annotations

import io
import json
import threading
import uuid
from typing import Any

import redis
import sqlalchemy as sa
from flask.testing import FlaskClient
from PIL import Image

from fieldline.server import create_app
from fieldline.settings import Settings
from tests.server.reports.conftest import StoreReport

PIPE = "P-000001"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "green").save(buffer, format="PNG")
    return buffer.getvalue()


def pipe(client: FlaskClient, public_id: str = PIPE) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/assets/pipes/{public_id}").get_json()["properties"])


def test_a_report_shows_its_photos_and_the_ones_not_uploaded(
    client: FlaskClient, store_report: StoreReport
) -> None:
    uploaded, pending = str(uuid.uuid4()), str(uuid.uuid4())
    assert (
        client.put(f"/api/v1/uploads/{uploaded}", data=_png(), content_type="image/png")
    ).status_code == 200
    report_id = store_report(
        kind="leak", note="water on the street", photos=[uploaded, pending], lon=24.95, lat=60.16
    )
    response = client.get(f"/api/v1/reports/{report_id}")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    feature = response.get_json()
    assert report_id.startswith("FR-")
    assert feature["type"] == "Feature" and feature["id"] == report_id
    assert feature["geometry"] == {"type": "Point", "coordinates": [24.95, 60.16]}
    properties = feature["properties"]
    assert properties["photos"] == [
        {"id": uploaded, "url": f"/api/v1/uploads/{uploaded}"},
        {"id": pending, "url": None},
    ]
    assert properties["missing_photos"] == [pending]
    assert properties["status"] == "pending"
    assert properties["note"] == "water on the street"
    assert client.get("/api/v1/reports/FR-999999").status_code == 404


def test_the_list_filters_by_crew_kind_and_status(
    client: FlaskClient, store_report: StoreReport
) -> None:
    crew = f"C-{uuid.uuid4().hex[:6]}"
    leak = store_report(crew, "leak")
    damage = store_report(crew, "damage")
    store_report("C-ELSEWHERE", "leak")
    assert (
        client.post(f"/api/v1/reports/{damage}/reject", json={"reason": "seen"}).status_code == 200
    )

    def ids(**query: str) -> list[str]:
        body = client.get("/api/v1/reports", query_string={"crew_id": crew, **query}).get_json()
        assert body["type"] == "FeatureCollection"
        return [feature["id"] for feature in body["features"]]

    assert ids() == [damage, leak]  # the latest first
    assert ids(kind="leak") == [leak]
    assert ids(status="rejected") == [damage]
    assert ids(status="pending,accepted") == [leak]
    bad = client.get("/api/v1/reports", query_string={"status": "done"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "status"


def test_accepting_a_correction_edits_the_asset_with_its_history(
    client: FlaskClient, store_report: StoreReport
) -> None:
    before = pipe(client)
    material = "PE" if before["material"] != "PE" else "PVC"
    report_id = store_report(
        kind="attribute_correction",
        asset_id=PIPE,
        changes={"material": material, "install_year": 1987},
    )
    response = client.post(f"/api/v1/reports/{report_id}/accept")
    assert response.status_code == 200, response.get_json()
    properties = response.get_json()["properties"]
    assert properties["status"] == "accepted"
    assert properties["reviewed_by"] == "local-operator"
    assert properties["reviewed_at"] is not None
    assert sorted(properties["applied_fields"]) == ["install_year", "material"]
    after = pipe(client)
    assert (after["material"], after["install_year"]) == (material, 1987)
    edits = client.get(f"/api/v1/assets/pipes/{PIPE}/history").get_json()["edits"]
    sources = {(e["field"], e["source"], e["new"]) for e in edits}
    assert ("material", "field_report", material) in sources
    assert ("install_year", "field_report", 1987) in sources

    again = client.post(f"/api/v1/reports/{report_id}/accept")
    assert again.status_code == 409
    rejected = client.post(f"/api/v1/reports/{report_id}/reject", json={"reason": "late"})
    assert rejected.status_code == 409


def test_a_bad_attribute_is_named_and_nothing_is_applied(
    client: FlaskClient, store_report: StoreReport
) -> None:
    before = pipe(client)
    report_id = store_report(
        kind="attribute_correction",
        asset_id=PIPE,
        changes={"install_year": 1990, "diameter_mm": -5},
    )
    response = client.post(f"/api/v1/reports/{report_id}/accept")
    assert response.status_code == 422
    assert response.get_json()["field"] == "changes.diameter_mm"
    after = pipe(client)
    assert after["install_year"] == before["install_year"]  # not half-applied
    assert client.get(f"/api/v1/reports/{report_id}").get_json()["properties"]["status"] == (
        "pending"
    )
    unknown = store_report(kind="attribute_correction", asset_id=PIPE, changes={"colour": "red"})
    refused = client.post(f"/api/v1/reports/{unknown}/accept")
    assert refused.status_code == 422 and refused.get_json()["field"] == "changes.colour"
    gone = store_report(kind="attribute_correction", asset_id="P-999999", changes={"depth_m": 1})
    refused = client.post(f"/api/v1/reports/{gone}/accept")
    assert refused.status_code == 422 and refused.get_json()["field"] == "asset_id"


def test_other_kinds_are_marked_accepted_and_a_rejection_needs_a_reason(
    client: FlaskClient, store_report: StoreReport
) -> None:
    leak = store_report(kind="leak", asset_id=PIPE)
    before = pipe(client)
    accepted = client.post(f"/api/v1/reports/{leak}/accept").get_json()["properties"]
    assert accepted["status"] == "accepted" and accepted["applied_fields"] == []
    assert pipe(client) == before

    other = store_report(kind="other")
    for body in ({}, {"reason": "  "}, {"reason": 3}):
        refused = client.post(f"/api/v1/reports/{other}/reject", json=body)
        assert refused.status_code == 422 and refused.get_json()["field"] == "reason"
    rejected = client.post(f"/api/v1/reports/{other}/reject", json={"reason": "a duplicate"})
    assert rejected.status_code == 200
    properties = rejected.get_json()["properties"]
    assert (properties["status"], properties["reason"]) == ("rejected", "a duplicate")


def test_a_review_goes_out_live(
    settings: Settings, connection: sa.Connection, store_report: StoreReport
) -> None:
    prefix = f"fieldline_test_{uuid.uuid4().hex[:8]}"
    live_settings = settings.model_copy(update={"redis_prefix": prefix})
    client = create_app(live_settings, bind=connection).test_client()
    report_id = store_report(kind="damage")
    listener = redis.Redis.from_url(settings.redis_url).pubsub()
    listener.subscribe(f"{prefix}:live")
    assert listener.get_message(timeout=5)["type"] == "subscribe"  # type: ignore[index]
    found: list[dict[str, Any]] = []

    def listen() -> None:
        message = listener.get_message(timeout=5)
        if message and message["type"] == "message":
            found.append(json.loads(message["data"]))

    thread = threading.Thread(target=listen)
    thread.start()
    client.post(f"/api/v1/reports/{report_id}/reject", json={"reason": "not ours"})
    thread.join(10)
    listener.close()
    assert [(e["type"], e["id"], e["status"]) for e in found] == [("report", report_id, "rejected")]
