"""A crew's GPS trace made fit to judge work by: projected to metres, cleaned and cut.

Fixes come from one or more devices of a crew. Per device, in time order:
- an *outlier* is a fix (or a short run of at most OUTLIER_RUN) that the trace leaves and comes
  back from faster than anything moves (FIELDLINE_VERIFICATION_JUMP_SPEED_MPS): multipath, a
  stale cell fix. It is dropped and counted.
- a *jump* is such a leap after which the trace goes on from the new place: a teleport, the
  signature of a spoofed position. It is flagged, and no segment crosses it.
- a *gap* is a silence longer than `gap_s`: no segment crosses it either, so a crew cannot
  cover a street by switching the phone off at one end and on at the other.
- a segment passed faster than the mode's limit (`max_speed_mps`, a drive-by on a foot patrol)
  is kept apart as `too_fast`; the speed is the displacement over `speed_window_s` around each
  fix, so that GPS noise at 1 Hz does not read as running.
- a *stop* is a stretch where the device stayed within `stop_radius_m` for `stop_min_s`: the
  dwell spots shown as evidence.

Each fix is good to `radius(acc_m)` metres: its reported accuracy times a factor, between a
floor and a cap. Coverage, arrivals and dwell in `gis/coverage.py` use that radius.

All metric work is done in a transverse Mercator projection centred on the work: its scale
error is a few millionths at 20 km from the centre, and it is several times faster to compute
than an azimuthal projection on the ellipsoid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

# A leap followed by at most this many fixes before the trace is back is an outlier, not a jump.
OUTLIER_RUN = 3

Array = NDArray[np.float64]


@dataclass(frozen=True)
class TraceFix:
    device: str
    t: datetime  # fix time, time-zone aware
    lon: float
    lat: float
    acc_m: float | None = None


@dataclass(frozen=True)
class TraceRules:
    radius_floor_m: float = 15.0
    radius_cap_m: float = 50.0
    accuracy_factor: float = 2.0  # accuracy is a 68 % radius; twice it holds ~95 % of fixes
    default_accuracy_m: float = 10.0  # for fixes that report none
    gap_s: float = 60.0
    jump_speed_mps: float = 60.0
    max_speed_mps: float = float("inf")  # the mode's limit for work to count
    speed_window_s: float = 15.0
    stop_radius_m: float = 20.0
    stop_min_s: float = 120.0

    def radius(self, acc_m: Array) -> Array:
        """How far from a fix the crew may have been, from its accuracy (NaN: unknown)."""
        acc = np.where(np.isnan(acc_m), self.default_accuracy_m, acc_m)
        return np.clip(acc * self.accuracy_factor, self.radius_floor_m, self.radius_cap_m)


@dataclass(frozen=True)
class Gap:
    device: str
    start: datetime
    end: datetime
    start_lonlat: tuple[float, float]
    end_lonlat: tuple[float, float]

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Jump:
    device: str
    at: datetime  # the time of the first fix at the new place
    from_lonlat: tuple[float, float]
    to_lonlat: tuple[float, float]
    distance_m: float
    speed_mps: float


@dataclass(frozen=True)
class Stop:
    device: str
    start: datetime
    end: datetime
    lonlat: tuple[float, float]

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


class LocalProjection:
    """WGS 84 to metres around an origin and back (transverse Mercator)."""

    def __init__(self, lon: float, lat: float) -> None:
        self.origin = (lon, lat)
        self._forward, self._inverse = _transformers(round(lon, 2), round(lat, 2))

    def to_metres(self, lon: Array, lat: Array) -> tuple[Array, Array]:
        x, y = self._forward.transform(lon, lat)
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def to_lonlat(self, x: Array, y: Array) -> tuple[Array, Array]:
        lon, lat = self._inverse.transform(x, y)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    # A geometry or an array of them: an array goes through one transform of all coordinates.
    def geometry_to_metres(self, geometry: BaseGeometry | NDArray[Any]) -> Any:
        return shapely.transform(geometry, lambda xy: np.column_stack(self.to_metres(*xy.T)))

    def geometry_to_lonlat(self, geometry: BaseGeometry | NDArray[Any]) -> Any:
        return shapely.transform(geometry, lambda xy: np.column_stack(self.to_lonlat(*xy.T)))


@lru_cache(maxsize=32)
def _transformers(lon: float, lat: float) -> tuple[Transformer, Transformer]:
    local = f"+proj=tmerc +lat_0={lat} +lon_0={lon} +k=1 +ellps=WGS84 +units=m +no_defs"
    return (
        Transformer.from_crs("EPSG:4326", local, always_xy=True),
        Transformer.from_crs(local, "EPSG:4326", always_xy=True),
    )


@dataclass
class DeviceTrace:
    """One device's kept fixes in time order, in metres (t in epoch seconds)."""

    device: str
    t: Array
    x: Array
    y: Array
    lon: Array
    lat: Array
    r: Array  # radius of each fix
    speed: Array  # displacement speed around each fix, m/s
    # Per segment i -> i+1: crosses a gap or a jump (never counts), or passed too fast.
    broken: NDArray[np.bool_]
    too_fast: NDArray[np.bool_]

    def when(self, i: int) -> datetime:
        return datetime.fromtimestamp(float(self.t[i]), UTC)

    def lonlat(self, i: int) -> tuple[float, float]:
        return (float(self.lon[i]), float(self.lat[i]))


@dataclass
class Trace:
    projection: LocalProjection
    rules: TraceRules
    devices: list[DeviceTrace]
    outliers: int = 0
    gaps: list[Gap] = field(default_factory=list)
    jumps: list[Jump] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)

    @property
    def fixes(self) -> int:
        return sum(len(d.t) for d in self.devices)

    def segments(self, counting: bool = True) -> tuple[Array, Array]:
        """Start and end points (n x 2 each) of the segments that count as work (unbroken and
        not too fast), or with `counting` False of those passed too fast."""
        starts, ends = [], []
        for d in self.devices:
            keep = ~d.broken & (~d.too_fast if counting else d.too_fast)
            xy = np.column_stack((d.x, d.y))
            starts.append(xy[:-1][keep])
            ends.append(xy[1:][keep])
        if not starts:
            return np.empty((0, 2)), np.empty((0, 2))
        return np.concatenate(starts), np.concatenate(ends)

    def segment_radii(self) -> Array:
        """The radius of each counting segment, in the order of `segments()`: the larger of
        its two fixes' radii."""
        radii = [np.maximum(d.r[:-1], d.r[1:])[~d.broken & ~d.too_fast] for d in self.devices]
        return np.concatenate(radii) if radii else np.empty(0)

    def lines(self, counting: bool = True) -> list[Any]:
        """The counting (or too-fast) parts of the trace as WGS 84 lines, runs of segments
        joined, for the map."""
        found = []
        for d in self.devices:
            keep = ~d.broken & (~d.too_fast if counting else d.too_fast)
            for start, stop in _runs(keep):
                coords = np.column_stack((d.lon[start : stop + 1], d.lat[start : stop + 1]))
                found.append(shapely.linestrings(coords))
        return found


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last+1) index pairs of the runs of True in `mask`."""
    if not mask.size:
        return []
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


@dataclass(frozen=True)
class Fixes:
    """Fixes as columns (what a database query returns), in any order."""

    device: NDArray[Any]  # device names
    t: Array  # fix time, epoch seconds
    lon: Array
    lat: Array
    acc_m: Array  # NaN where a fix reports none

    @classmethod
    def of(cls, fixes: Iterable[TraceFix]) -> Fixes:
        rows = list(fixes)
        return cls(
            np.array([f.device for f in rows], dtype=object),
            np.array([f.t.timestamp() for f in rows], dtype=float),
            np.array([f.lon for f in rows], dtype=float),
            np.array([f.lat for f in rows], dtype=float),
            np.array([np.nan if f.acc_m is None else f.acc_m for f in rows], dtype=float),
        )


def prepare(
    fixes: Fixes | Iterable[TraceFix],
    rules: TraceRules,
    projection: LocalProjection | None = None,
) -> Trace:
    """Sort, project and clean a crew's fixes (see the module's docstring)."""
    if not isinstance(fixes, Fixes):
        fixes = Fixes.of(fixes)
    if projection is None:
        lon = float(np.median(fixes.lon)) if fixes.lon.size else 0.0
        lat = float(np.median(fixes.lat)) if fixes.lat.size else 0.0
        projection = LocalProjection(lon, lat)
    trace = Trace(projection, rules, [])
    x, y = projection.to_metres(fixes.lon, fixes.lat)
    names = fixes.device.tolist()
    numbers = {name: number for number, name in enumerate(sorted(set(names)))}
    device = (
        np.zeros(len(names), dtype=int)
        if len(numbers) == 1
        else np.array([numbers[name] for name in names], dtype=int)
    )
    # A query ordered by device and time needs no sorting.
    ordered = bool(
        np.all((np.diff(device) > 0) | ((np.diff(device) == 0) & (np.diff(fixes.t) >= 0)))
    )
    order = np.arange(device.size) if ordered else np.lexsort((fixes.t, device))
    for name, number in numbers.items():
        rows = order[device[order] == number]
        _add_device(trace, name, fixes, rows, x[rows], y[rows])
    return trace


def _add_device(
    trace: Trace, device: str, fixes: Fixes, rows: NDArray[Any], x: Array, y: Array
) -> None:
    rules = trace.rules
    t, lon, lat, acc = fixes.t[rows], fixes.lon[rows], fixes.lat[rows], fixes.acc_m[rows]
    # One fix per instant: a device repeating a time keeps its first report.
    first = np.concatenate(([True], np.diff(t) > 0))
    t, lon, lat, acc, x, y = t[first], lon[first], lat[first], acc[first], x[first], y[first]

    keep, jump_at = _outliers_and_jumps(t, x, y, rules.jump_speed_mps)
    trace.outliers += int((~keep).sum())
    # Jump positions are indices into the kept fixes from here on.
    kept_index = np.cumsum(keep) - 1
    jump_at = [int(kept_index[i]) for i in jump_at]
    t, x, y, lon, lat, acc = t[keep], x[keep], y[keep], lon[keep], lat[keep], acc[keep]

    dt = np.diff(t)
    broken = dt > rules.gap_s
    for i in jump_at:
        broken[i - 1] = True
    speed = _window_speed(t, x, y, rules.speed_window_s)
    seg_speed = (speed[:-1] + speed[1:]) / 2 if t.size > 1 else np.empty(0)
    d = DeviceTrace(
        device,
        t,
        x,
        y,
        lon,
        lat,
        rules.radius(acc),
        speed,
        broken,
        seg_speed > rules.max_speed_mps,
    )
    trace.devices.append(d)
    for g in np.flatnonzero(dt > rules.gap_s).tolist():
        trace.gaps.append(Gap(device, d.when(g), d.when(g + 1), d.lonlat(g), d.lonlat(g + 1)))
    for i in jump_at:
        distance = float(np.hypot(x[i] - x[i - 1], y[i] - y[i - 1]))
        seconds = max(float(t[i] - t[i - 1]), 1e-3)
        trace.jumps.append(
            Jump(device, d.when(i), d.lonlat(i - 1), d.lonlat(i), distance, distance / seconds)
        )
    trace.stops.extend(_stops(d, rules))


def _outliers_and_jumps(
    t: Array, x: Array, y: Array, limit: float
) -> tuple[NDArray[np.bool_], list[int]]:
    """Which fixes to keep, and the indices (into all fixes) where the trace jumps."""
    n = t.size
    keep = np.ones(n, dtype=bool)
    jumps: list[int] = []
    if n < 2:
        return keep, jumps

    def distance(a: int, b: int) -> float:
        return float(np.hypot(x[b] - x[a], y[b] - y[a]))

    def speed(a: int, b: int) -> float:
        return distance(a, b) / max(float(t[b] - t[a]), 1e-3)

    def kept_before(i: int) -> int:
        j = i - 1
        while j >= 0 and not keep[j]:
            j -= 1
        return j

    # Only the leaps are looked at one by one: a handful in a day's trace.
    step = np.hypot(np.diff(x), np.diff(y)) / np.maximum(np.diff(t), 1e-3)
    for i in (np.flatnonzero(step > limit) + 1).tolist():
        if not keep[i]:
            continue
        last = kept_before(i)
        if speed(last, i) <= limit:
            continue  # the leap was back from a dropped fix
        # Back where it was within OUTLIER_RUN fixes: those in between were wild. A fix
        # nearer the new place than the old goes on from there, however sparse the fixes.
        back = next(
            (
                j
                for j in range(i + 1, min(i + 1 + OUTLIER_RUN, n))
                if speed(last, j) <= limit and distance(last, j) < distance(i, j)
            ),
            None,
        )
        if back is not None:
            keep[i:back] = False
            continue
        # Or the fix before the leap was the wild one, come in unnoticed after a silence (a
        # stale fix): without it the trace runs on from the fix before at about its pace
        # either side. A teleport after a silence is far faster than that pace.
        before = kept_before(last)
        if before >= 0:
            pace = max(speed(before, last), speed(i, i + 1) if i + 1 < n else 0.0)
            if speed(before, i) <= min(limit, 2 * pace):
                keep[last] = False
                continue
        jumps.append(i)
    return keep, jumps


def _window_speed(t: Array, x: Array, y: Array, window_s: float) -> Array:
    """Displacement over the `window_s` around each fix divided by its time."""
    if t.size < 2:
        return np.zeros(t.size)
    lo = np.searchsorted(t, t - window_s / 2, side="left")
    hi = np.searchsorted(t, t + window_s / 2, side="right") - 1
    # At least the neighbours, so that sparse fixes still get a speed.
    lo = np.minimum(lo, np.maximum(np.arange(t.size) - 1, 0))
    hi = np.maximum(hi, np.minimum(np.arange(t.size) + 1, t.size - 1))
    seconds = t[hi] - t[lo]
    metres = np.hypot(x[hi] - x[lo], y[hi] - y[lo])
    return np.divide(metres, seconds, out=np.zeros(t.size), where=seconds > 0)


def _stops(d: DeviceTrace, rules: TraceRules) -> list[Stop]:
    """Stretches where the device stayed put for at least `stop_min_s`.

    A fix is still when the fixes of the `stop_min_s / 2` after it, or of those before it, all
    lie within a box of `2 * stop_radius_m` across: the first fix of a stop looks ahead, the
    last one back, so a stop starts and ends on time, and a walk out and back is no stop. A
    stray fix breaks a run for a moment only: runs that follow each other closely around the
    same spot are one stop. A gap or a jump ends a stop: nobody can say where the crew was
    meanwhile."""
    n = d.t.size
    if n < 2:
        return []
    half = rules.stop_min_s / 2
    index = np.arange(n)
    # The fixes of the half-window after each fix and before it, at least the next and the
    # previous one: many devices log less often while standing still.
    ahead = np.maximum(np.searchsorted(d.t, d.t + half, side="right") - 1, index + 1)
    behind = np.minimum(np.searchsorted(d.t, d.t - half, side="left"), index - 1)
    longest = int(max((ahead - index).max(), (index - behind).max())) + 1
    extent = _RangeExtent(d.x, d.y, longest)
    across = 2 * rules.stop_radius_m
    still = np.zeros(n, dtype=bool)
    has = ahead < n
    still[has] = extent(index[has], ahead[has]) <= across
    has = behind >= 0
    still[has] |= extent(behind[has], index[has]) <= across
    runs: list[list[int]] = []  # [first, last] of each stop so far
    for first, stop in _runs(still):
        last = stop - 1
        if runs:
            before = runs[-1]
            close = d.t[first] - d.t[before[1]] <= half
            unbroken = not d.broken[before[1] : first].any()
            if close and unbroken and _spread(d, before[0], last) <= rules.stop_radius_m:
                before[1] = last
                continue
        runs.append([first, last])
    stops = []
    for first, last in runs:
        # The window lets in the last steps of the way there and the first ones away: the
        # stop is the longest stretch of fixes within reach of its middle.
        cx, cy = np.median(d.x[first : last + 1]), np.median(d.y[first : last + 1])
        near = np.hypot(d.x[first : last + 1] - cx, d.y[first : last + 1] - cy)
        stretches = _runs(near <= rules.stop_radius_m)
        if not stretches:
            continue
        a, b = max(stretches, key=lambda run: run[1] - run[0])
        first, last = first + a, first + b - 1
        if d.t[last] - d.t[first] >= rules.stop_min_s and not d.broken[first:last].any():
            stops.append(Stop(d.device, d.when(first), d.when(last), _centroid(d, first, last + 1)))
    return stops


class _RangeExtent:
    """The diagonal of the box around fixes lo..hi (inclusive), for many ranges at once: a
    sparse table of maxima (of x, -x, y, -y) over 2**k fixes for k up to what the longest
    range needs, two look-ups a range."""

    def __init__(self, x: Array, y: Array, longest: int) -> None:
        self.levels = [np.stack((x, -x, y, -y))]
        while 2 ** len(self.levels) <= longest:
            last, width = self.levels[-1], 2 ** (len(self.levels) - 1)
            self.levels.append(np.maximum(last[:, :-width], last[:, width:]))

    def __call__(self, lo: NDArray[Any], hi: NDArray[Any]) -> Array:
        k = np.floor(np.log2(hi - lo + 1)).astype(int)
        top = np.empty((4, lo.size))
        for level in np.unique(k).tolist():
            at = k == level
            table = self.levels[level]
            top[:, at] = np.maximum(table[:, lo[at]], table[:, hi[at] - 2**level + 1])
        return np.hypot(top[0] + top[1], top[2] + top[3])


def _spread(d: DeviceTrace, first: int, last: int) -> float:
    """How far apart the centres of the two halves of fixes first..last lie."""
    middle = (first + last + 1) // 2
    a = np.mean(d.x[first:middle]), np.mean(d.y[first:middle])
    b = np.mean(d.x[middle : last + 1]), np.mean(d.y[middle : last + 1])
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _centroid(d: DeviceTrace, start: int, stop: int) -> tuple[float, float]:
    return float(np.mean(d.lon[start:stop])), float(np.mean(d.lat[start:stop]))
