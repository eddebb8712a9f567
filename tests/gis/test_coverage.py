"""What a trace proves about pipes and places (gis/coverage.py), on generated traces whose
truth is known by construction: a patrol done fully or leaving a street out, a drive-by, the
phone switched off across a street, a crew standing at a repair site, a phone left in a van,
and batches of spoofed cases of which none may pass."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely import LineString

from fieldline.gis.coverage import pipe_coverage, visits
from fieldline.gis.trace import TraceFix, TraceRules, prepare
from tests.gis.walks import (
    FOOT,
    REACH_M,
    SRID,
    START,
    VEHICLE,
    WALK_MPS,
    Track,
    lonlat,
    network,
    passes,
    patrol_case,
    record,
    shift,
    switch_off,
    walk,
    walk_legs,
)

GEOD = Geod(ellps="WGS84")
DRIVE_BY_MPS = 60 / 3.6
MIN_DWELL_S = 600.0  # what a repair site asks of a crew in the spoofing batch
BATCH = 50  # seeds per kind of spoof


def street_pipes() -> dict[str, LineString]:
    return network().wgs84(sorted(patrol_case().street))


# --- pipes --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12])
def test_a_full_foot_patrol_covers_every_pipe(seed: int) -> None:
    case = patrol_case()
    _, fixes = walk(case.legs(), seed)
    trace = prepare(fixes, FOOT)

    coverage = pipe_coverage(trace, network().wgs84(sorted(case.area)))

    assert {c.asset_id for c in coverage} == set(case.area)
    assert [(c.asset_id, round(c.ratio, 2)) for c in coverage if c.ratio < 0.9] == []
    assert passes(trace, coverage)
    total = sum(c.length_m for c in coverage)
    assert total == pytest.approx(network().length(case.area), rel=1e-3)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_patrol_that_skips_a_street_lists_that_streets_pipes_as_missed(seed: int) -> None:
    case = patrol_case()
    legs = case.legs(skip_street=True)
    walked = {pipe for pipe, _ in legs}
    assert walked.isdisjoint(case.street)
    skipped = case.out_of_reach(legs)
    # The walk around passes within reach of the street's ends at the cross streets; the
    # stubs there may fairly count either way. The rest of the street was never near.
    either_way = case.street - skipped
    assert network().length(skipped) > 0.8 * network().length(case.street)
    _, fixes = walk(legs, seed)
    trace = prepare(fixes, FOOT)

    coverage = pipe_coverage(trace, network().wgs84(sorted(case.area)))

    missed = {c.asset_id for c in coverage if c.ratio < 0.9} - either_way
    assert missed == skipped
    assert not passes(trace, coverage)
    for c in coverage:
        if c.asset_id in skipped:
            assert c.missed, c.asset_id  # the missed parts, to draw on the map
            missed_m = sum(GEOD.geometry_length(line) for line in c.missed)
            assert missed_m == pytest.approx(c.length_m - c.covered_m, abs=0.5)
        if c.asset_id in walked:
            assert c.covered


def test_a_drive_by_does_not_count_on_foot_but_a_vehicle_patrol_does() -> None:
    legs = patrol_case().street_legs()
    pipes = street_pipes()
    _, driven = walk(legs, seed=21, speed_mps=DRIVE_BY_MPS, stand_s=0.0)
    _, slower = walk(legs, seed=21, speed_mps=40 / 3.6)

    on_foot = pipe_coverage(prepare(driven, FOOT), pipes)
    by_vehicle = pipe_coverage(prepare(slower, VEHICLE), pipes)

    assert sum(c.covered_m for c in on_foot) < 0.02 * sum(c.length_m for c in on_foot)
    assert [(c.asset_id, round(c.ratio, 2)) for c in by_vehicle if c.ratio < 0.9] == []


def test_a_phone_switched_off_across_a_street_covers_none_of_its_middle() -> None:
    case = patrol_case()
    legs = case.street_legs()
    x, y = legs[0][1].coords[0][:2]
    # On the street's first node, then the walk along it with the phone off, on again at the
    # far end.
    track = Track(x, y).stand(30.0)
    off = START + timedelta(seconds=30.5)
    walk_legs(track, legs, WALK_MPS)
    on = START + timedelta(seconds=track.seconds - 0.5)
    track.stand(30.0)
    fixes = switch_off(record(track, START, random.Random(31), SRID), off, on)
    trace = prepare(fixes, FOOT)

    coverage = pipe_coverage(trace, street_pipes())

    (gap,) = trace.gaps
    assert gap.start == START + timedelta(seconds=30)
    assert gap.end == START + timedelta(seconds=math.ceil(on.timestamp() - START.timestamp()))
    # Truth: where the phone was on, in metres; pipes wholly beyond reach of it get nothing.
    ends = [legs[0][1].coords[0], legs[-1][1].coords[-1]]
    reach = shapely.MultiPoint(ends).buffer(REACH_M)
    lines = network().lines
    beyond = {i for i in case.street if not lines[i].intersects(reach)}
    assert network().length(beyond) > 0.5 * network().length(case.street)
    assert {c.asset_id: c.covered_m for c in coverage if c.asset_id in beyond} == dict.fromkeys(
        beyond, 0.0
    )
    assert not passes(trace, coverage)


# --- places -------------------------------------------------------------------------------


def street_middle() -> tuple[float, float]:
    """A node half way along the street: where the repair site is."""
    legs = patrol_case().street_legs()
    x, y = legs[len(legs) // 2][1].coords[0][:2]
    return x, y


def site_walk(
    seed: int, stand_s: float = 1200.0, period_s: float = 1.0
) -> tuple[tuple[float, float], float, list[TraceFix]]:
    """A crew walking 150 m to the site from the west, standing there `stand_s`, then
    walking 150 m away to the north: the site (x, y), the seconds from START when it arrived,
    and its fixes."""
    x, y = street_middle()
    track = Track(x - 150.0, y).go_to(x, y, WALK_MPS)
    arrived = track.seconds
    track.stand(stand_s).go_to(x, y + 150.0, WALK_MPS)
    return (x, y), arrived, record(track, START, random.Random(seed), SRID, period_s)


def place(xy: tuple[float, float]) -> shapely.Point:
    return shapely.Point(*lonlat(*xy))


def first_fix_within_radius(fixes: list[TraceFix], site: shapely.Point, rules: TraceRules) -> float:
    """The arrival worked out apart from gis/: geodesic distance against each fix's radius."""
    for fix in sorted(fixes, key=lambda f: f.t):
        _, _, distance = GEOD.inv(fix.lon, fix.lat, site.x, site.y)
        radius = min(max(2.0 * (fix.acc_m or 10.0), rules.radius_floor_m), rules.radius_cap_m)
        if distance <= radius:
            return (fix.t - START).total_seconds()
    raise AssertionError("never within radius")


@pytest.mark.parametrize("seed", [41, 42, 43])
def test_a_crew_standing_twenty_minutes_at_a_site_dwells_about_twenty_minutes(seed: int) -> None:
    site_xy, arrived_s, fixes = site_walk(seed)
    site = place(site_xy)
    trace = prepare(fixes, FOOT)

    (visit,) = visits(trace, {"site": site})

    assert visit.first_at is not None
    first_s = (visit.first_at - START).total_seconds()
    assert first_s == first_fix_within_radius(fixes, site, FOOT)
    # Truth: it arrived at `arrived_s`; a fix counts from within its radius (at most
    # REACH_M) of the site, reached at walking pace.
    assert arrived_s - REACH_M / WALK_MPS - 1 <= first_s <= arrived_s + 30
    # The stand, plus the walk in and out within radius, less the odd fix the drifting
    # error carries outside it.
    assert 1200 - 60 <= visit.dwell_s <= 1200 + 2 * REACH_M / WALK_MPS + 2
    assert visit.closest_m is not None and visit.closest_m < 15


def test_a_drive_past_the_site_is_no_dwell() -> None:
    site_xy = street_middle()
    _, fixes = walk(patrol_case().street_legs(), seed=44, speed_mps=DRIVE_BY_MPS)

    (visit,) = visits(prepare(fixes, VEHICLE), {"site": place(site_xy)})

    assert visit.first_at is not None
    assert visit.dwell_s < 60


def test_a_phone_left_in_a_van_two_hundred_metres_away_never_visits() -> None:
    site_xy = street_middle()
    van = Track(site_xy[0], site_xy[1] + 200.0).stand(1800.0)
    fixes = record(van, START, random.Random(45), SRID)

    (visit,) = visits(prepare(fixes, FOOT), {"site": place(site_xy)})

    assert (visit.first_at, visit.dwell_s, visit.fixes) == (None, 0.0, 0)
    assert visit.closest_m == pytest.approx(200.0, abs=40.0)


# --- zero false passes --------------------------------------------------------------------


def far_point(rng: random.Random, avoid: shapely.Geometry, near_xy: tuple[float, float]) -> Track:
    """A parked phone 100-300 m from `near_xy` and at least 100 m from `avoid`."""
    while True:
        angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(100.0, 300.0)
        x, y = near_xy[0] + distance * math.sin(angle), near_xy[1] + distance * math.cos(angle)
        if avoid.distance(shapely.Point(x, y)) >= 100.0:
            return Track(x, y)


def teleport_offset(rng: random.Random) -> tuple[float, float]:
    angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(1000.0, 5000.0)
    return distance * math.sin(angle), distance * math.cos(angle)


def share_within(line: LineString, points: tuple[np.ndarray, np.ndarray]) -> float:
    """The share of `line` (sampled every metre) within REACH_M of any of `points`."""
    samples = shapely.line_interpolate_point(
        line, np.linspace(0.0, line.length, 2 + int(line.length))
    )
    sx, sy = shapely.get_x(samples), shapely.get_y(samples)
    x, y = points
    nearest = np.hypot(sx[:, None] - x[None, :], sy[:, None] - y[None, :]).min(axis=1)
    return float(np.mean(nearest <= REACH_M))


def spoofed_patrol(kind: str, seed: int) -> tuple[list[TraceFix], bool]:
    """A spoofed patrol of the street: its fixes, and whether the construction really left
    the street unproven (checked on the truth, not on the code under test)."""
    rng = random.Random(seed)
    legs = patrol_case().street_legs()
    street = shapely.union_all([network().lines[i] for i in patrol_case().street])
    x, y = legs[0][1].coords[0][:2]
    if kind == "teleport":
        # Somewhere else for two minutes, then the trace appears on the street and walks it.
        track = walk_legs(Track(x, y).stand(120.0), legs, WALK_MPS)
        fixes = record(track, START, rng, SRID)
        east, north = teleport_offset(rng)
        return shift(fixes, START, east, north, end=START + timedelta(seconds=120)), True
    if kind == "drive-by":
        speed = rng.uniform(50.0, 70.0) / 3.6
        track = walk_legs(Track(x, y), legs, speed)
        return record(track, START, rng, SRID), True
    if kind == "van":
        # Parked for as long as the walk along the street takes.
        centre = street.centroid
        walk_s = walk_legs(Track(x, y), legs, WALK_MPS).seconds
        van = far_point(rng, street, (centre.x, centre.y)).stand(walk_s)
        return record(van, START, rng, SRID), True
    if kind == "gap":
        # The phone off over the middle half of the walk or more.
        track = walk_legs(Track(x, y), legs, WALK_MPS)
        off_s = rng.uniform(0.15, 0.3) * track.seconds
        on_s = rng.uniform(0.7, 0.85) * track.seconds
        off, on = START + timedelta(seconds=off_s), START + timedelta(seconds=on_s)
        fixes = switch_off(record(track, START, rng, SRID), off, on)
        seen = track.position(np.array([(f.t - START).total_seconds() for f in fixes]))
        lines = network().lines
        unproven = any(share_within(lines[i], seen) < 0.5 for i in patrol_case().street)
        return fixes, unproven
    raise ValueError(kind)


def spoofed_site(kind: str, seed: int) -> tuple[tuple[float, float], list[TraceFix]]:
    """A spoofed stand at the site in the street's middle, fixes every 5 s."""
    rng = random.Random(seed)
    legs = patrol_case().street_legs()
    site = street_middle()
    x, y = legs[0][1].coords[0][:2]
    if kind == "teleport":
        # Elsewhere for five minutes, then a trace that stands at the site for twenty.
        track = Track(*site).stand(1500.0)
        fixes = record(track, START, rng, SRID, period_s=5.0)
        east, north = teleport_offset(rng)
        return site, shift(fixes, START, east, north, end=START + timedelta(seconds=300))
    if kind == "drive-by":
        speed = rng.uniform(50.0, 70.0) / 3.6
        return site, record(walk_legs(Track(x, y), legs, speed), START, rng, SRID, 5.0)
    if kind == "van":
        van = far_point(rng, shapely.Point(site), site).stand(1800.0)
        return site, record(van, START, rng, SRID, period_s=5.0)
    if kind == "gap":
        # Two minutes there, off while the crew goes 200 m away for twenty, two more back.
        track = Track(*site).stand(120.0).go_to(site[0] + 200.0, site[1], WALK_MPS)
        track.stand(1200.0 - 2 * 200.0 / WALK_MPS).go_to(*site, WALK_MPS).stand(120.0)
        off = START + timedelta(seconds=120.5)
        on = START + timedelta(seconds=track.seconds - 120.0)
        return site, switch_off(record(track, START, rng, SRID, 5.0), off, on)
    raise ValueError(kind)


KINDS = ["teleport", "drive-by", "van", "gap"]


def count_passes(run: Callable[[str, int], bool]) -> dict[str, int]:
    return {kind: sum(run(kind, seed) for seed in range(1000, 1000 + BATCH)) for kind in KINDS}


def test_no_spoofed_patrol_passes() -> None:
    pipes = street_pipes()
    unproven: dict[str, int] = dict.fromkeys(KINDS, 0)

    def run(kind: str, seed: int) -> bool:
        fixes, really_spoofed = spoofed_patrol(kind, seed)
        unproven[kind] += really_spoofed
        trace = prepare(fixes, FOOT)
        return passes(trace, pipe_coverage(trace, pipes))

    false_passes = count_passes(run)

    assert unproven == dict.fromkeys(KINDS, BATCH)  # every case is a real spoof
    assert false_passes == dict.fromkeys(KINDS, 0), (
        f"false passes out of {BATCH} each: {false_passes}"
    )


def test_no_spoofed_site_visit_passes() -> None:
    def run(kind: str, seed: int) -> bool:
        site, fixes = spoofed_site(kind, seed)
        trace = prepare(fixes, FOOT)
        (visit,) = visits(trace, {"site": place(site)})
        return not trace.jumps and visit.dwell_s >= MIN_DWELL_S

    false_passes = count_passes(run)

    assert false_passes == dict.fromkeys(KINDS, 0), (
        f"false passes out of {BATCH} each: {false_passes}"
    )


def test_the_same_site_stand_done_honestly_passes() -> None:
    # The spoofing batch's bar, met by the honest crew: the batch does not pass by
    # asking the impossible.
    for seed in range(5):
        site, _, fixes = site_walk(seed, stand_s=1200.0, period_s=5.0)
        trace = prepare(fixes, FOOT)
        (visit,) = visits(trace, {"site": place(site)})
        assert not trace.jumps and visit.dwell_s >= MIN_DWELL_S, seed
