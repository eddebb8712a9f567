"""Candidate crews for a task: ranked by road travel time as an independent shortest-path
computation (networkx over the roads file) finds it, filtered by status, skills and earlier
refusals, with the straight-line fallback named when there are no roads."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
import sqlalchemy as sa
from shapely.geometry import LineString
from sqlalchemy.orm import Session

from fieldline.gis.errors import Conflict
from fieldline.server.crews.services import roster
from fieldline.server.dispatch.candidates import candidates, task_site
from fieldline.server.tasks.models import TaskAsset, TaskTransition
from fieldline.settings import Settings
from tests.server.dispatch.conftest import NOW, fix, on_shift_crew, task_at
from tests.server.dispatch.roads import RoadModel, Spot, straight_m

CENTRE = (24.944, 60.172)


def central_site(roads: RoadModel) -> Spot:
    """The two-way road nearest the centre that most of the city can drive to."""
    by_distance = sorted(roads.spots, key=lambda s: straight_m(s.point, CENTRE))
    for site in by_distance:
        reachable = roads.seconds_to(site, roads.spots, "vehicle")
        if sum(math.isfinite(t) for t in reachable) > 0.8 * len(roads.spots):
            return site
    raise AssertionError("no well-connected road near the centre")


def nearby(roads: RoadModel, site: Spot, count: int) -> list[Spot]:
    """The `count` spots nearest the site (on other roads) that can drive to it."""
    others = sorted(
        (s for s in roads.spots if s.road != site.road),
        key=lambda s: straight_m(s.point, site.point),
    )
    seconds = roads.seconds_to(site, others, "vehicle")
    return [s for s, t in zip(others, seconds, strict=True) if math.isfinite(t)][:count]


def spread_out(spots: list[tuple[Spot, float]], count: int) -> list[tuple[Spot, float]]:
    """Spots whose times differ by more than 3 % from each other: their order is certain."""
    chosen: list[tuple[Spot, float]] = []
    for spot, seconds in sorted(spots, key=lambda item: item[1]):
        if all(abs(seconds - other) > 0.03 * other for _, other in chosen):
            chosen.append((spot, seconds))
    step = max(1, len(chosen) // count)
    return chosen[::step][:count]


def test_crews_rank_by_road_time_not_straight_line(
    session: Session, roads: RoadModel, settings: Settings
) -> None:
    site = central_site(roads)
    others = [s for s in roads.spots if s.road != site.road]
    seconds = roads.seconds_to(site, others, "vehicle")
    reachable = [(s, t) for s, t in zip(others, seconds, strict=True) if math.isfinite(t)]
    unreachable = [s for s, t in zip(others, seconds, strict=True) if not math.isfinite(t)]
    # A pair the straight line gets wrong: `near` is closer as the crow flies, slower by road.
    inverted = [
        (near, far)
        for near, t_near in reachable
        for far, t_far in reachable
        if straight_m(near.point, site.point) < straight_m(far.point, site.point)
        and t_near > 1.5 * t_far
    ]
    assert inverted, "the fixture roads should hold a pair the straight line ranks wrongly"
    near, far = max(
        inverted,
        key=lambda pair: (
            straight_m(pair[1].point, site.point) - straight_m(pair[0].point, site.point)
        ),
    )
    expected_s = {spot.road: seconds for spot, seconds in reachable}
    picked = {s.road: s for s, _ in spread_out(reachable, 8)}
    picked.update({near.road: near, far.road: far})
    if unreachable:
        picked[unreachable[0].road] = unreachable[0]

    latest, crew_spot = {}, {}
    for i, spot in enumerate(sorted(picked.values(), key=lambda s: s.road)):
        crew = on_shift_crew(session, f"Crew {i}")
        latest[crew.public_id] = fix(NOW - timedelta(seconds=30 + i), spot.point)
        crew_spot[crew.public_id] = spot
    task = task_at(session, site.point)
    crews = roster(session, latest, NOW, {}, stale_after_s=settings.crew_stale_after_s)

    ranking = candidates(session, session.connection(), task, crews, NOW, limit=50)

    assert ranking.method == "road"
    ranked = [c.crew.public_id for c in ranking.candidates]
    expected = sorted(
        (cid for cid, spot in crew_spot.items() if spot.road in expected_s),
        key=lambda cid: expected_s[crew_spot[cid].road],
    )
    assert ranked == expected
    for c in ranking.candidates:
        want = expected_s[crew_spot[c.crew.public_id].road]
        assert c.leg.by_road
        assert c.leg.seconds == pytest.approx(want, rel=0.01, abs=0.5)
        assert c.eta == NOW + timedelta(seconds=c.leg.seconds)
        assert c.position_age_s(NOW) == pytest.approx(
            (NOW - c.crew.position_time).total_seconds()  # type: ignore[operator]
        )
    by_spot = {crew_spot[cid].road: cid for cid in ranked}
    assert ranked.index(by_spot[far.road]) < ranked.index(by_spot[near.road])
    assert ranking.excluded.get("unreachable", 0) == (1 if unreachable else 0)


def test_walking_crews_are_ranked_at_walking_speed(
    session: Session, roads: RoadModel, settings: Settings
) -> None:
    site = central_site(roads)
    walker_at, driver_at = nearby(roads, site, 12)[10:]
    walker = on_shift_crew(session, "Walkers", mode="foot")
    driver = on_shift_crew(session, "Drivers")
    latest = {
        walker.public_id: fix(NOW, walker_at.point),
        driver.public_id: fix(NOW, driver_at.point),
    }
    task = task_at(session, site.point)
    crews = roster(session, latest, NOW, {}, stale_after_s=settings.crew_stale_after_s)

    found = {
        c.crew.public_id: c.leg.seconds
        for c in candidates(session, session.connection(), task, crews, NOW, 10).candidates
    }

    (walk_s,) = roads.seconds_to(site, [walker_at], "foot")
    (drive_s,) = roads.seconds_to(site, [driver_at], "vehicle")
    assert found[walker.public_id] == pytest.approx(walk_s, rel=0.01, abs=0.5)
    assert found[driver.public_id] == pytest.approx(drive_s, rel=0.01, abs=0.5)


def test_only_free_crews_with_every_skill_and_no_earlier_refusal(
    session: Session, roads: RoadModel, settings: Settings
) -> None:
    site = central_site(roads)
    here = nearby(roads, site, 1)[0].point
    skills = ["valve_operation", "leak_detection"]
    able = on_shift_crew(session, "Able", skills=[*skills, "welding"])
    lacking = on_shift_crew(session, "Lacking", skills=["valve_operation"])
    busy = on_shift_crew(session, "Busy", skills=skills)
    silent = on_shift_crew(session, "Silent", skills=skills, depot=here)
    resting = on_shift_crew(session, "Resting", skills=skills, now=NOW + timedelta(days=1))
    refused = on_shift_crew(session, "Refused", skills=skills)
    latest = {crew.public_id: fix(NOW, here) for crew in (able, lacking, busy, resting, refused)}
    latest[silent.public_id] = fix(NOW - timedelta(hours=1), here)
    task = task_at(session, site.point, skills=skills)
    session.add(
        TaskTransition(
            task_id=task.id,
            action="decline",
            from_state="assigned",
            to_state="created",
            crew_id=refused.id,
            actor="system",
            actor_kind="system",
            at=NOW - timedelta(minutes=5),
            note="offer timed out",
        )
    )
    session.flush()
    crews = roster(session, latest, NOW, {busy.id: 1}, stale_after_s=settings.crew_stale_after_s)
    connection = session.connection()

    free = candidates(session, connection, task, crews, NOW, 10)
    assert [c.crew.public_id for c in free.candidates] == [able.public_id]
    assert free.excluded == {"skills": 1, "busy": 1, "no_signal": 1, "off_shift": 1, "declined": 1}

    with_busy = candidates(session, connection, task, crews, NOW, 10, include_busy=True)
    statuses = {c.crew.public_id: c.crew.status for c in with_busy.candidates}
    assert statuses == {able.public_id: "available", busy.public_id: "busy"}

    assert (
        len(candidates(session, connection, task, crews, NOW, 1, include_busy=True).candidates) == 1
    )


def test_without_roads_the_ranking_is_straight_line_and_says_so(
    session: Session, roads: RoadModel, settings: Settings
) -> None:
    site = central_site(roads)
    spots = sorted(roads.spots, key=lambda s: s.road)[:6]
    latest = {}
    for i, spot in enumerate(spots):
        crew = on_shift_crew(session, f"Crew {i}")
        latest[crew.public_id] = fix(NOW, spot.point)
    task = task_at(session, site.point)
    session.execute(sa.text("DELETE FROM roads"))
    crews = roster(session, latest, NOW, {}, stale_after_s=settings.crew_stale_after_s)

    ranking = candidates(session, session.connection(), task, crews, NOW, 10)

    assert ranking.method == "straight_line"
    assert all(not c.leg.by_road for c in ranking.candidates)
    metres = [straight_m(c.crew.position or (0.0, 0.0), site.point) for c in ranking.candidates]
    assert metres == sorted(metres) and len(metres) == len(spots)
    speed_mps = settings.routing_fallback_vehicle_kph / 3.6
    for c, straight in zip(ranking.candidates, metres, strict=True):
        assert c.leg.metres == pytest.approx(straight * settings.routing_detour_factor, rel=1e-3)
        assert c.leg.seconds == pytest.approx(c.leg.metres / speed_mps, rel=1e-6)


def test_a_patrol_without_a_site_is_reached_at_its_first_pipe_or_its_area(
    session: Session, fixture_features: object
) -> None:
    patrol = task_at(session, None, kind="patrol")
    with pytest.raises(Conflict):
        task_site(session, patrol)

    patrol.area = sa.func.ST_Multi(
        sa.func.ST_GeomFromText(
            "POLYGON((24.94 60.17, 24.95 60.17, 24.95 60.18, 24.94 60.18, 24.94 60.17))", 4326
        )
    )
    session.flush()
    assert task_site(session, patrol) == pytest.approx((24.945, 60.175))

    pipes = fixture_features("pipes")[:2]  # type: ignore[operator]
    for ordinal, pipe in enumerate(reversed(pipes)):
        session.add(
            TaskAsset(
                task_id=patrol.id, role="pipe", layer="pipes", asset_id=pipe["id"], ordinal=ordinal
            )
        )
    session.flush()
    first = LineString(pipes[-1]["geometry"]["coordinates"])  # listed first by the planner
    middle = first.interpolate(0.5, normalized=True)
    assert task_site(session, patrol) == pytest.approx((middle.x, middle.y))
