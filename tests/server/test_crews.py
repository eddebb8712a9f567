from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict, InvalidField
from fieldline.server import create_app
from fieldline.server.crews.services import bind_device, create_crew
from fieldline.settings import Settings, load_settings


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
