"""The trace checks on real recorded GPS traces (tests/gis/real_traces.py: files shipped by
gpxpy, recorded by others on real receivers). The truth each test leans on is what anyone can
read off the file itself; the comments quote it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely

from fieldline.gis.coverage import pipe_coverage, visits
from fieldline.gis.trace import LocalProjection, Trace, TraceFix, TraceRules, prepare
from tests.gis.real_traces import CAR, HIKE, OUTING, read
from tests.gis.walks import FOOT, VEHICLE, shift

# A vehicle patrol on roads outside town: the car trace reaches 26 m/s (94 km/h).
OPEN_ROAD = TraceRules(max_speed_mps=30.0)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def segment_metres(trace: Trace, too_fast: bool) -> float:
    a, b = trace.segments(counting=not too_fast)
    return float(np.hypot(*(b - a).T).sum())


def too_fast_share(trace: Trace) -> float:
    """The share of the trace's length (gaps and jumps left out) passed too fast."""
    fast = segment_metres(trace, too_fast=True)
    return fast / (fast + segment_metres(trace, too_fast=False))


def path_in_metres(fixes: list[TraceFix]) -> tuple[LocalProjection, shapely.LineString]:
    lon = np.array([f.lon for f in fixes])
    lat = np.array([f.lat for f in fixes])
    projection = LocalProjection(float(np.median(lon)), float(np.median(lat)))
    return projection, shapely.LineString(np.column_stack(projection.to_metres(lon, lat)))


@pytest.mark.parametrize("name", [CAR, OUTING, HIKE])
def test_the_unaltered_real_traces_have_no_jumps(name: str) -> None:
    fixes = read(name)
    assert len(fixes) > 100

    assert prepare(fixes, TraceRules()).jumps == []


def test_a_stale_fix_in_a_real_trace_is_dropped_rather_than_the_good_one_after_it() -> None:
    # cerknicko-jezero.gpx: after 44 s without a fix, the one at 15:40:00 lies 310 m on from
    # 15:39:16, and the next, at 15:40:02, 184 m further (92 m/s); from 15:39:16 to 15:40:02
    # is 486 m in 46 s, and the trace goes on from 15:40:02. The fix at 15:40:00 is the odd
    # one out.
    trace = prepare(read(OUTING), TraceRules())

    kept = set(trace.devices[0].t.tolist())
    assert at("2010-08-05T15:40:00").timestamp() not in kept
    assert at("2010-08-05T15:40:02").timestamp() in kept
    assert trace.outliers == 1


@pytest.mark.parametrize("name", [CAR, OUTING, HIKE])
def test_a_teleport_injected_in_a_real_trace_is_flagged_at_its_time(name: str) -> None:
    fixes = read(name)
    # From a third and two thirds in, the first fix that follows the one before it within
    # 30 s: 3 km in a longer silence is no faster than the jump speed (60 m/s), and a
    # silence over a minute is reported as a gap in its own right.
    away, back = (
        next(
            b.t
            for a, b in zip(fixes[k - 1 :], fixes[k:], strict=False)
            if (b.t - a.t).seconds <= 30
        )
        for k in (len(fixes) // 3, 2 * len(fixes) // 3)
    )

    trace = prepare(shift(fixes, away, east_m=3000.0, north_m=0.0, end=back), TraceRules())

    assert [j.at for j in trace.jumps] == [away, back]


def test_the_car_drive_is_too_fast_for_a_foot_patrol_and_not_for_a_vehicle_patrol() -> None:
    # around-visnjan-with-car.gpx moves at 5-26 m/s between fixes from 06:16:50 to 06:19:35
    # and from 06:21:40 to 06:22:40: driving, for all but a few tens of its ~2.7 km.
    fixes = read(CAR)

    on_foot = prepare(fixes, FOOT)
    by_vehicle = prepare(fixes, VEHICLE)
    on_open_roads = prepare(fixes, OPEN_ROAD)

    assert too_fast_share(on_foot) > 0.9
    assert segment_metres(on_open_roads, too_fast=True) == 0.0
    # The file's one fast stretch, 16-26 m/s between 06:17:24 and 06:18:14 (an open road,
    # about a kilometre), is over the town vehicle limit of 14 m/s; nothing else is.
    assert 0.2 < too_fast_share(by_vehicle) < 0.45
    (device,) = by_vehicle.devices
    fast_at = device.t[:-1][device.too_fast]
    assert fast_at.min() >= at("2020-12-18T06:17:10").timestamp()
    assert fast_at.max() <= at("2020-12-18T06:18:30").timestamp()


def test_a_pipe_along_the_cars_path_is_covered_and_one_300_m_away_is_not() -> None:
    fixes = read(CAR)
    projection, path = path_in_metres(fixes)
    # The path as a pipe would be drawn: simplified to 5 m and laid 5 m to its side.
    along = path.simplify(5.0).offset_curve(5.0)
    # A parallel line 300 m off, less any part of it that comes within 250 m of the path
    # (where the drive loops back towards it).
    away = path.simplify(5.0).offset_curve(300.0).difference(path.buffer(250.0))
    assert away.length > 500.0
    pipes = {
        "along": projection.geometry_to_lonlat(along),
        "away": projection.geometry_to_lonlat(away),
    }

    along_cov, away_cov = pipe_coverage(prepare(fixes, OPEN_ROAD), pipes)
    in_town, _ = pipe_coverage(prepare(fixes, VEHICLE), pipes)

    assert along_cov.ratio >= 0.9
    assert away_cov.covered_m == 0.0
    assert away_cov.length_m == pytest.approx(away.length, rel=0.01)
    # Under the town limit the kilometre driven at 16-26 m/s does not count.
    assert along_cov.covered_m - in_town.covered_m > 700.0


# around-visnjan-with-car.gpx stands from 06:19:38 to 06:21:37: six fixes (06:19:38, :39,
# :56, 06:20:37, 06:21:26, :37) within 5 m of each other, after slowing from 4.4 m/s and
# before moving off again at 2-8 m/s.
CAR_STOP = (at("2020-12-18T06:19:38"), at("2020-12-18T06:21:37"))


def car_stop_site() -> shapely.Point:
    standing = [f for f in read(CAR) if CAR_STOP[0] <= f.t <= CAR_STOP[1]]
    assert len(standing) == 6
    return shapely.Point(np.mean([f.lon for f in standing]), np.mean([f.lat for f in standing]))


def test_a_site_at_the_cars_stop_gets_a_dwell_of_about_the_stop() -> None:
    stop_s = (CAR_STOP[1] - CAR_STOP[0]).total_seconds()
    trace = prepare(read(CAR), VEHICLE)

    (visit,) = visits(trace, {"stop": car_stop_site()})

    # The stop, plus the last and first seconds of rolling within the 20 m radius.
    assert stop_s <= visit.dwell_s <= stop_s + 30
    assert visit.first_at is not None
    assert CAR_STOP[0] - timedelta(seconds=10) <= visit.first_at <= CAR_STOP[0]
    # Asking five times as long fails.
    assert visit.dwell_s < 5 * stop_s


def test_the_cars_stop_is_detected_as_a_stop() -> None:
    trace = prepare(read(CAR), TraceRules(stop_min_s=60.0))

    found = [s for s in trace.stops if s.start <= CAR_STOP[1] and s.end >= CAR_STOP[0]]

    (stop,) = found
    assert abs((stop.start - CAR_STOP[0]).total_seconds()) <= 10
    assert abs((stop.end - CAR_STOP[1]).total_seconds()) <= 10


def test_the_sparse_trace_reports_the_silences_between_its_fixes() -> None:
    # cerknicko-jezero.gpx logs from every second to every 15 minutes (between its seven
    # segments). Truth: the file's own intervals over 30 s, counted without the stale fix at
    # 15:40:00 (see above), which the cleaning drops.
    fixes = read(OUTING)
    times = [f.t for f in fixes if f.t != at("2010-08-05T15:40:00")]
    silences = [(a, b) for a, b in itertools.pairwise(times) if (b - a).seconds > 30]
    assert len(silences) > 20

    trace = prepare(fixes, TraceRules(gap_s=30.0))

    assert [(g.start, g.end) for g in trace.gaps] == silences
    # A walk's worth of evidence never spans a silence.
    (device,) = trace.devices
    assert device.broken.sum() == len(silences)


def test_the_real_hike_is_walking_pace_for_a_foot_patrol() -> None:
    # korita-zbevnica.gpx: a hike, never faster than 1.6 m/s between its fixes.
    trace = prepare(read(HIKE), FOOT)

    assert segment_metres(trace, too_fast=True) == 0.0
    assert trace.jumps == []
