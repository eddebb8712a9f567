"""A field report published by a handheld: the gateway stores it once, and a new one goes
out on the live stream (SSE) with its id; a redelivery changes nothing and says nothing."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from fieldline.server import create_app
from tests.device_gateway.test_gateway import Running, running, wait_for

pytestmark = pytest.mark.slow
__all__ = ["running"]  # the gateway fixture, used here too


@pytest.fixture
def reports_cleaned(running: Running, engine: sa.Engine) -> Iterator[Running]:
    yield running
    with engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM field_reports WHERE crew_id = :c"), {"c": running.crew_id}
        )


def stored(engine: sa.Engine, crew_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT public_id, kind, photos, review_status FROM field_reports "
                    "WHERE crew_id = :c"
                ),
                {"c": crew_id},
            )
        )


def test_a_new_report_goes_out_live_once(
    reports_cleaned: Running, engine: sa.Engine, connection: sa.Connection
) -> None:
    gateway = reports_cleaned
    client = create_app(gateway.settings, bind=connection).test_client()
    events: list[dict[str, Any]] = []
    photo = str(uuid.uuid4())
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    payload = json.dumps(
        {
            "kind": "leak",
            "ts": at.isoformat(),
            "lat": 60.17,
            "lon": 24.94,
            "note": "water in the street",
            "photos": [photo],
        }
    )
    marker = f"fieldline/crews/{gateway.crew_id}/position"

    def listen() -> None:
        # Reads until the marker fix that follows the redelivery comes through: whatever
        # the redelivered report would have announced came before it.
        response = client.get("/api/v1/live?limit=500&heartbeat=1", buffered=False)
        for chunk in response.response:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if text.startswith("data: "):
                event = json.loads(text.removeprefix("data: "))
                if event.get("crew_id") == gateway.crew_id:
                    events.append(event)
                    if event["type"] == "position":
                        break
        response.close()

    listener = threading.Thread(target=listen)
    listener.start()
    channel = f"{gateway.settings.redis_prefix}:live"
    wait_for(lambda: gateway.redis.pubsub_numsub(channel)[0][1] > 0)

    topic = f"fieldline/crews/{gateway.crew_id}/reports"
    gateway.publish(topic, payload)
    (row,) = wait_for(lambda: stored(engine, gateway.crew_id))
    wait_for(lambda: any(e["type"] == "report" for e in events))
    gateway.publish(topic, payload)  # redelivered
    fix = {"ts": (at + timedelta(seconds=1)).isoformat(), "lat": 60.17, "lon": 24.94}
    gateway.publish(marker, json.dumps(fix))
    listener.join(timeout=15)

    assert stored(engine, gateway.crew_id) == [row]  # stored once
    assert (row.kind, row.photos, row.review_status) == ("leak", [photo], "pending")
    reports = [event for event in events if event["type"] == "report"]
    assert events[-1]["type"] == "position"  # the listener saw everything up to the marker
    assert len(reports) == 1
    (event,) = reports
    assert event == {
        "type": "report",
        "id": row.public_id,
        "crew_id": gateway.crew_id,
        "kind": "leak",
        "ts": at.isoformat(),
        "lat": 60.17,
        "lon": 24.94,
        "asset_id": None,
        "note": "water in the street",
        "photos": [photo],
        "status": "pending",
        "received_at": event["received_at"],
    }
    assert datetime.fromisoformat(event["received_at"]) >= at
    shown = client.get(f"/api/v1/reports/{row.public_id}").get_json()
    assert shown["properties"]["missing_photos"] == [photo]
