"""Cleaning a crew's trace (gis/trace.py) on generated traces whose truth is known: walks and
drives along the fixture pipes measured by the simulated receiver (drifting error, rare wild
fixes), with a teleport, wild fixes, the phone switched off, a drive-by or a stand added."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest

from fieldline.gis.trace import Trace, prepare
from tests.gis.walks import (
    FOOT,
    SRID,
    START,
    VEHICLE,
    WALK_MPS,
    Track,
    fling,
    network,
    patrol_case,
    record,
    shift,
    switch_off,
    walk,
    walk_legs,
)


def too_fast_share(trace: Trace) -> float:
    segments = sum(d.too_fast.size for d in trace.devices)
    return sum(int(d.too_fast.sum()) for d in trace.devices) / segments


@pytest.mark.parametrize("seed", range(8))
def test_a_walk_with_only_real_noise_has_no_jumps_gaps_or_speeding(seed: int) -> None:
    _, fixes = walk(patrol_case().legs(), seed)

    trace = prepare(fixes, FOOT)

    assert trace.jumps == []
    assert trace.gaps == []
    # The receiver's wild fixes are the only ones dropped: a few per thousand.
    assert trace.outliers <= 0.01 * len(fixes)
    # Where the reported accuracy reaches 15 m the drifting error can read as a brisk walk
    # over the speed window: up to ~1.3 % of segments on these seeds, never a stretch.
    assert too_fast_share(trace) < 0.03


def test_a_teleport_is_flagged_as_a_jump_at_its_time() -> None:
    _, fixes = walk(patrol_case().legs(), seed=1)
    at = START + timedelta(seconds=600)

    trace = prepare(shift(fixes, at, east_m=3000.0, north_m=0.0), FOOT)

    assert len(trace.jumps) == 1
    jump = trace.jumps[0]
    assert jump.at == at  # the first fix at the new place
    assert jump.distance_m == pytest.approx(3000.0, abs=60.0)
    assert jump.speed_mps > FOOT.jump_speed_mps
    # No segment crosses it: the two places are not joined into work.
    (device,) = trace.devices
    i = int(np.searchsorted(device.t, at.timestamp()))
    assert device.broken[i - 1]


@pytest.mark.parametrize(("period_s", "east_m"), [(1.0, 200.0), (5.0, 1000.0), (10.0, 2000.0)])
def test_a_teleport_a_few_fixes_could_span_at_jump_speed_is_still_a_jump(
    period_s: float, east_m: float
) -> None:
    # The trace goes on from the new place: no fix comes back, however sparse the fixes,
    # so none of it may be taken for a run of wild fixes.
    _, fixes = walk(patrol_case().legs(), seed=7, period_s=period_s)
    at = START + timedelta(seconds=60 * period_s)

    trace = prepare(shift(fixes, at, east_m=east_m, north_m=0.0), FOOT)

    assert [j.at for j in trace.jumps] == [at]
    assert trace.outliers <= 0.01 * len(fixes)


def test_a_teleport_there_and_back_is_two_jumps() -> None:
    _, fixes = walk(patrol_case().legs(), seed=2)
    away, back = START + timedelta(seconds=300), START + timedelta(seconds=900)

    trace = prepare(shift(fixes, away, -2000.0, 1500.0, end=back), FOOT)

    assert [j.at for j in trace.jumps] == [away, back]


def test_single_wild_fixes_are_dropped_and_not_taken_for_jumps() -> None:
    _, fixes = walk(patrol_case().legs(), seed=3)
    rng = random.Random(3)
    wild = {START + timedelta(seconds=60 + 120 * k) for k in range(12)}
    for k, at in enumerate(sorted(wild)):
        fixes = fling(fixes, {at}, distance_m=150.0 + 50.0 * k, rng=rng)

    trace = prepare(fixes, FOOT)

    assert trace.jumps == []
    kept = {float(t) for t in trace.devices[0].t}
    assert [at for at in sorted(wild) if at.timestamp() in kept] == []
    assert trace.outliers >= len(wild)
    assert trace.fixes == len(fixes) - trace.outliers


def test_a_switched_off_phone_is_a_gap_with_its_start_and_end() -> None:
    _, fixes = walk(patrol_case().legs(), seed=4)
    off, on = START + timedelta(seconds=400.5), START + timedelta(seconds=700.5)

    trace = prepare(switch_off(fixes, off, on), FOOT)

    (gap,) = trace.gaps
    # Fixes are every second on the second: the last before and the first after.
    assert gap.start == START + timedelta(seconds=400)
    assert gap.end == START + timedelta(seconds=701)
    before = next(f for f in fixes if f.t == gap.start)
    after = next(f for f in fixes if f.t == gap.end)
    assert gap.start_lonlat == pytest.approx((before.lon, before.lat))
    assert gap.end_lonlat == pytest.approx((after.lon, after.lat))
    assert trace.jumps == []


def test_a_drive_by_is_too_fast_for_a_foot_patrol_and_not_for_a_vehicle() -> None:
    legs = patrol_case().legs()
    _, driven = walk(legs, seed=5, speed_mps=60 / 3.6)
    _, slower = walk(legs, seed=5, speed_mps=40 / 3.6)

    assert too_fast_share(prepare(driven, FOOT)) > 0.95
    assert too_fast_share(prepare(slower, VEHICLE)) < 0.02
    assert prepare(driven, FOOT).jumps == []


@pytest.mark.parametrize("seed", range(6))
def test_a_five_minute_stand_is_one_stop_with_its_start_and_end(seed: int) -> None:
    legs = patrol_case().street_legs()
    x, y = legs[0][1].coords[0][:2]
    track = walk_legs(Track(x, y), legs[:3], WALK_MPS)
    arrived = START + timedelta(seconds=track.seconds)
    # Away along the street: legs 3 and 4 are a 22 m stub out and back, within reach of the
    # spot with noise, which no trace could tell from standing.
    walk_legs(track.stand(300.0), legs[5:], WALK_MPS)

    trace = prepare(record(track, START, random.Random(seed), SRID), FOOT)

    (stop,) = trace.stops
    # Within reach of the spot a few seconds before and after the stand itself.
    assert abs((stop.start - arrived).total_seconds()) <= 20
    assert abs((stop.end - (arrived + timedelta(seconds=300))).total_seconds()) <= 20


def test_walking_on_is_no_stop() -> None:
    _, fixes = walk(patrol_case().legs(), seed=6)

    assert prepare(fixes, FOOT).stops == []


def test_pipes_of_the_case_are_what_the_fixture_holds() -> None:
    # The cases lean on this shape of the fixture: a street of about half a kilometre of
    # pipes inside an area of well over a kilometre and a half.
    case, net = patrol_case(), network()
    assert 400 < net.length(case.street) < 700
    assert net.length(case.area) > 2.5 * net.length(case.street)
