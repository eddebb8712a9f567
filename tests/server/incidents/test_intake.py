"""Intake on the fixture city: a SCADA low-pressure alarm opens an incident through the
scheduler's job, linked once however often the job runs; calls and crews' leak reports near
it in space and time join it, others open their own; the suggested pipes and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from pyproj import Geod
from sqlalchemy.orm import Session

from fieldline.gis.models import Station
from fieldline.server.incidents import services
from fieldline.server.incidents.models import Incident, IncidentSource
from fieldline.server.telemetry.models import FieldReportRow
from fieldline.settings import Settings
from tests.conftest import load_fixture
from tests.server.incidents.conftest import STATION, T0, Jobs, raise_low_pressure, received

GEOD = Geod(ellps="WGS84")
CALLER = {"name": "Aino Virtanen", "phone": "+358 40 123 4567"}


def station_point(session: Session, station: str = STATION) -> tuple[float, float]:
    row = session.execute(
        sa.select(sa.func.ST_X(Station.geom), sa.func.ST_Y(Station.geom)).where(
            Station.public_id == station
        )
    ).one()
    return float(row[0]), float(row[1])


def east_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(point[0], point[1], 90, metres)
    return lon, lat


def incidents(session: Session) -> list[Incident]:
    session.expire_all()
    return list(session.scalars(sa.select(Incident).order_by(Incident.id)))


def call(client: FlaskClient, **body: Any) -> Any:
    payload = {"description": "No water since the morning", "caller": CALLER} | body
    return client.post("/api/v1/incidents", json=payload)


def test_a_low_pressure_alarm_opens_one_incident_linked_once(
    session: Session, jobs: Jobs, listening: Any
) -> None:
    alarm, after = raise_low_pressure(session, jobs)
    first = jobs.incidents(after)
    assert len(first.opened) == 1
    (incident,) = incidents(session)
    assert incident.state == "open"
    (source,) = services.sources_of(session, incident)
    assert (source.kind, source.ref, source.station_id) == ("alarm", alarm, STATION)
    # Run again, and again later: the alarm is still open, but it is part of the incident.
    assert jobs.incidents(after + timedelta(seconds=10)) == services.Intake()
    assert jobs.incidents(after + timedelta(minutes=5)) == services.Intake()
    assert len(incidents(session)) == 1
    assert session.scalar(sa.select(sa.func.count()).select_from(IncidentSource)) == 1
    events = [e for e in received(listening, 2) if e["type"] == "incident"]
    assert [(e["id"], e["action"], e["state"]) for e in events] == [
        (incident.public_id, "open", "open")
    ]


def test_a_high_pressure_alarm_is_no_incident(session: Session, jobs: Jobs) -> None:
    from fieldline.server.alarms import services as alarm_services
    from tests.server.alarms.conftest import store

    rule = {"station": STATION, "metric": "pressure_kpa", "kind": "high", "threshold": 700,
            "severity": "medium"}  # fmt: skip
    alarm_services.create_rule(session, rule, "test", T0)
    session.commit()
    end = store(session, [750.0] * 3, T0 + timedelta(seconds=10))
    assert len(jobs.alarms(end + timedelta(seconds=1)).raised) == 1
    assert jobs.incidents(end + timedelta(seconds=2)).opened == []


def test_calls_join_near_in_space_and_time_and_open_their_own_otherwise(
    session: Session, jobs: Jobs, incident_client: FlaskClient, incident_settings: Settings
) -> None:
    _, after = raise_low_pressure(session, jobs)
    jobs.incidents(after)
    (incident,) = incidents(session)
    here = station_point(session)
    radius = incident_settings.incident_group_radius_m

    near = call(incident_client, lon=east_of(here, radius * 0.5)[0], lat=here[1])
    assert near.status_code == 200, near.get_json()
    assert near.get_json()["id"] == incident.public_id
    assert near.get_json()["opened"] is False
    assert [s["kind"] for s in near.get_json()["sources"]] == ["alarm", "call"]

    far_lon, far_lat = east_of(here, radius * 3)
    far = call(incident_client, lon=far_lon, lat=far_lat)
    assert far.status_code == 201, far.get_json()
    assert far.get_json()["id"] != incident.public_id
    assert far.headers["Location"].endswith(far.get_json()["id"])

    # Near in space, but later than the window after every report: an incident of its own.
    later = T0 + timedelta(minutes=incident_settings.incident_group_window_min + 60)
    body = {"lon": here[0], "lat": here[1], "description": "Dry tap", "caller": CALLER}
    taken = services.report_call(session, body, "test", later, incident_settings)
    assert taken.opened and taken.incident.id != incident.id
    assert [i.state for i in incidents(session)] == ["open", "open", "open"]


def test_a_call_by_meter_takes_the_meter_s_place_and_suggests_its_pipe(
    session: Session, incident_client: FlaskClient, incident_settings: Settings
) -> None:
    meter = next(f for f in load_fixture("meters") if f["properties"].get("pipe"))
    response = call(incident_client, meter_id=meter["id"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["lon"], body["lat"]) == pytest.approx(tuple(meter["geometry"]["coordinates"]))
    assert meter["properties"]["service_address"] in body["title"]
    (source,) = body["sources"]
    assert (source["kind"], source["meter_id"], source["caller"]) == (
        "call", meter["id"], CALLER
    )  # fmt: skip
    suggested = body["suggested_pipes"]
    assert suggested[0]["pipe_id"] == meter["properties"]["pipe"]
    assert any("feeds the meter" in why for why in suggested[0]["why"])
    in_service = {
        f["id"] for f in load_fixture("pipes") if f["properties"]["status"] == "in_service"
    }
    assert {s["pipe_id"] for s in suggested} <= in_service
    assert [s["rank"] for s in suggested] == list(range(1, len(suggested) + 1))
    scores = [s["score"] for s in suggested]
    assert scores == sorted(scores, reverse=True)
    # Every pipe suggested by its distance is within the radius.
    for pipe in suggested:
        if pipe["distance_m"] is not None:
            assert pipe["distance_m"] <= incident_settings.incident_pipe_radius_m


def test_crews_leak_reports_join_once_and_other_kinds_never(session: Session, jobs: Jobs) -> None:
    _, after = raise_low_pressure(session, jobs)
    jobs.incidents(after)
    (incident,) = incidents(session)
    lon, lat = east_of(station_point(session), 40)
    for kind in ("leak", "attribute_correction"):
        session.add(
            FieldReportRow(crew_id="C-000001", ts=after, kind=kind, lat=lat, lon=lon,
                           note=f"{kind} by the kerb")
        )  # fmt: skip
    session.commit()
    run = jobs.incidents(after + timedelta(seconds=10))
    assert run.opened == [] and len(run.linked) == 1
    assert jobs.incidents(after + timedelta(seconds=20)) == services.Intake()
    kinds = [s.kind for s in services.sources_of(session, incident)]
    assert kinds == ["alarm", "field_report"]


def test_the_job_is_scheduled_at_the_setting_s_interval(settings: Settings) -> None:
    from fieldline import scheduler as scheduling
    from fieldline.settings import load_settings

    assert {job.name: job.interval_s for job in scheduling.all_jobs()}["incidents"] == 10
    tuned = load_settings(database_url=settings.database_url, incident_intake_s=3)
    assert {job.name: job.interval_s for job in scheduling.all_jobs(tuned)}["incidents"] == 3


def test_pressure_falling_fast_opens_an_incident_rising_does_not(
    session: Session, jobs: Jobs
) -> None:
    from fieldline.server.alarms import services as alarm_services
    from tests.server.alarms.conftest import store

    rule = {"station": STATION, "metric": "pressure_kpa", "kind": "rate", "threshold": 20,
            "deadband": 5, "window_s": 120, "severity": "high"}  # fmt: skip
    alarm_services.create_rule(session, rule, "test", T0)
    other = {**rule, "station": "S-000005"}
    alarm_services.create_rule(session, other, "test", T0)
    session.commit()
    store(session, [400.0, 350.0, 300.0], T0 + timedelta(seconds=10), every_s=30)
    end = store(session, [300.0, 350.0, 400.0], T0 + timedelta(seconds=10), every_s=30,
                station="S-000005")  # fmt: skip
    raised = jobs.alarms(end + timedelta(seconds=1)).raised
    assert len(raised) == 2
    run = jobs.incidents(end + timedelta(seconds=2))
    assert len(run.opened) == 1
    (incident,) = incidents(session)
    (source,) = services.sources_of(session, incident)
    assert source.station_id == STATION
