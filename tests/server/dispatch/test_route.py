"""`GET /api/v1/tasks/{id}/route`: the way to a task's site over the fixture city's roads, its
time checked against an independent shortest-path computation (networkx over the roads file),
its line against the roads it follows; from the handheld's position or the crew's latest fix;
a straight line when the start is far from every road; errors naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from pyproj import Geod
from sqlalchemy.orm import Session

from fieldline.server.crews.models import Crew
from fieldline.server.live.services import Live
from fieldline.server.tasks.models import Task
from fieldline.settings import Settings
from tests.server.dispatch.conftest import on_shift_crew, report_fix, task_at
from tests.server.dispatch.roads import RoadModel, straight_m
from tests.server.dispatch.test_candidates import central_site, nearby

GEOD = Geod(ellps="WGS84")


def _with_crew(session: Session, task: Task, crew: Crew) -> Task:
    task.crew_id, task.state = crew.id, "accepted"
    session.flush()
    return task


def _line_m(coordinates: list[list[float]]) -> float:
    lons, lats = zip(*coordinates, strict=True)
    return float(GEOD.line_length(lons, lats))


def _off_road_m(session: Session, lon: float, lat: float) -> float:
    return float(
        session.scalar(
            sa.text(
                "SELECT min(ST_Distance(geom::geography,"
                " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)) FROM roads"
            ),
            {"lon": lon, "lat": lat},
        )
    )


def _route(client: FlaskClient, task_id: str, query: str = "") -> tuple[int, Any]:
    response = client.get(f"/api/v1/tasks/{task_id}/route{query}")
    return response.status_code, response.get_json(force=True)


def test_the_route_from_the_handheld_follows_the_roads_to_the_site(
    session: Session, roads: RoadModel, dispatch_client: FlaskClient
) -> None:
    site = central_site(roads)
    start = nearby(roads, site, 12)[-1]
    crew = on_shift_crew(session, "Drivers")
    task = _with_crew(session, task_at(session, site.point), crew)
    before = datetime.now(UTC)

    status, body = _route(
        dispatch_client, task.public_id, f"?from={start.point[0]},{start.point[1]}"
    )

    after = datetime.now(UTC)
    assert status == 200, body
    assert body["type"] == "Feature"
    assert body["geometry"]["type"] == "LineString"
    props = body["properties"]
    assert (props["task_id"], props["mode"], props["on_roads"], props["origin"]) == (
        task.public_id,
        "vehicle",
        True,
        "from",
    )
    want_s = roads.seconds_to(site, [start], "vehicle")[0]
    assert props["seconds"] == pytest.approx(want_s, rel=0.01, abs=0.5)
    eta = datetime.fromisoformat(props["eta"])
    assert before <= eta - timedelta(seconds=props["seconds"]) <= after + timedelta(seconds=1)
    coordinates = body["geometry"]["coordinates"]
    assert coordinates[0] == pytest.approx(list(start.point), abs=1e-9)
    assert coordinates[-1] == pytest.approx(list(site.point), abs=1e-9)
    # The distance is the line's; every bend between the two walks to the road is on a road.
    assert _line_m(coordinates) == pytest.approx(props["metres"], rel=0.01)
    assert props["metres"] > straight_m(start.point, site.point)
    for lon, lat in coordinates[1:-1]:
        assert _off_road_m(session, lon, lat) < 1.0


def test_without_from_the_route_starts_at_the_crews_latest_fix_in_its_mode(
    session: Session, roads: RoadModel, live: Live, dispatch_client: FlaskClient
) -> None:
    site = central_site(roads)
    start = nearby(roads, site, 6)[-1]
    walkers = on_shift_crew(session, "Walkers", mode="foot")
    fix_at = datetime.now(UTC) - timedelta(seconds=40)
    report_fix(live, walkers, fix_at, start.point)
    task = _with_crew(session, task_at(session, site.point), walkers)

    status, body = _route(dispatch_client, task.public_id)

    assert status == 200, body
    props = body["properties"]
    assert (props["mode"], props["origin"]) == ("foot", "fix")
    assert datetime.fromisoformat(props["fix_time"]) == fix_at
    assert body["geometry"]["coordinates"][0] == pytest.approx(list(start.point), abs=1e-9)
    assert props["seconds"] == pytest.approx(
        roads.seconds_to(site, [start], "foot")[0], rel=0.01, abs=0.5
    )
    # `mode` overrides the crew's.
    status, driven = _route(dispatch_client, task.public_id, "?mode=vehicle")
    assert status == 200, driven
    assert driven["properties"]["mode"] == "vehicle"
    assert driven["properties"]["seconds"] == pytest.approx(
        roads.seconds_to(site, [start], "vehicle")[0], rel=0.01, abs=0.5
    )
    assert driven["properties"]["seconds"] < props["seconds"]


def test_far_from_every_road_the_route_is_a_straight_line_estimate(
    session: Session, roads: RoadModel, dispatch_client: FlaskClient, settings: Settings
) -> None:
    site = central_site(roads)
    task = task_at(session, site.point)
    # Out at sea, 5 km south of the site: beyond the snap limit of every road.
    lon, lat, _ = GEOD.fwd(site.point[0], site.point[1], 180, 5000)
    assert _off_road_m(session, lon, lat) > settings.routing_max_snap_m

    status, body = _route(dispatch_client, task.public_id, f"?from={lon},{lat}&mode=foot")

    assert status == 200, body
    props = body["properties"]
    assert props["on_roads"] is False
    assert body["geometry"]["coordinates"] == [
        pytest.approx([lon, lat], abs=1e-9),
        pytest.approx(list(site.point), abs=1e-9),
    ]
    straight = straight_m((lon, lat), site.point)
    assert props["metres"] == pytest.approx(straight * settings.routing_detour_factor, rel=1e-6)
    assert props["seconds"] == pytest.approx(
        props["metres"] / settings.routing_walk_speed_mps, rel=1e-3
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?from=24.94", "from"),
        ("?from=24.94,60.17,3", "from"),
        ("?from=east,north", "from"),
        ("?from=", "from"),
        ("?from=nan,60.17", "from"),
        ("?from=200,60.17", "from"),
        ("?from=24.94,-91", "from"),
        ("?from=24.94,60.17&mode=bicycle", "mode"),
        ("?mode=", "mode"),
    ],
)
def test_a_bad_parameter_is_a_422_naming_it(
    session: Session, roads: RoadModel, dispatch_client: FlaskClient, query: str, field: str
) -> None:
    task = task_at(session, central_site(roads).point)
    status, body = _route(dispatch_client, task.public_id, query)
    assert status == 422, body
    assert body["field"] == field


def test_unknown_task_and_nowhere_to_start_from(
    session: Session, roads: RoadModel, live: Live, dispatch_client: FlaskClient
) -> None:
    site = central_site(roads)
    status, _ = _route(dispatch_client, "T-999999", f"?from={site.point[0]},{site.point[1]}")
    assert status == 404
    # No crew and no `from`.
    open_task = task_at(session, site.point)
    status, body = _route(dispatch_client, open_task.public_id)
    assert status == 409, body
    assert "from" in body["detail"]
    # A crew that has sent no fix yet (its depot is not where it is).
    crew = on_shift_crew(session, "Quiet", depot=nearby(roads, site, 1)[0].point)
    quiet_task = _with_crew(session, task_at(session, site.point), crew)
    status, body = _route(dispatch_client, quiet_task.public_id)
    assert status == 409, body
    assert crew.public_id in body["detail"]
    # Its first fix is enough.
    report_fix(live, crew, datetime.now(UTC), nearby(roads, site, 1)[0].point)
    assert _route(dispatch_client, quiet_task.public_id)[0] == 200
