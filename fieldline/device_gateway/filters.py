"""GPS filters: small named predicates, each switched on by FIELDLINE_GPS_FILTERS.

A filter returns True when it rejects the fix; the pipeline keeps the fix in quarantine with
the filter's name as the reason. Stateful filters (duplicate, jump, too_frequent) compare with
the last fix accepted for the same device, and only when the new fix is later: a backlog that
arrives late and out of order is not judged against fixes measured after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from pyproj import Geod

from fieldline.device_gateway.messages import Fix

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class FilterLimits:
    max_accuracy_m: float
    max_future: timedelta
    max_age: timedelta
    max_speed_mps: dict[str, float]  # by crew mode
    min_period: timedelta


@dataclass(slots=True)  # one per fix: slotted, not frozen, for speed
class FilterInput:
    fix: Fix
    now: datetime
    mode: str  # the crew's travel mode
    previous: Fix | None  # the last fix accepted for this device
    limits: FilterLimits


def _later(f: FilterInput) -> Fix | None:
    return f.previous if f.previous and f.fix.fix_time > f.previous.fix_time else None


def invalid(f: FilterInput) -> bool:
    fix = f.fix
    return (
        not (-90 <= fix.lat <= 90 and -180 <= fix.lon <= 180)
        or (fix.speed_mps is not None and fix.speed_mps < 0)
        or (fix.acc_m is not None and fix.acc_m < 0)
    )


def zero(f: FilterInput) -> bool:
    # (0, 0) is what many receivers send without a fix.
    return f.fix.lat == 0 and f.fix.lon == 0


def future(f: FilterInput) -> bool:
    return f.fix.fix_time > f.now + f.limits.max_future


def too_old(f: FilterInput) -> bool:
    return f.fix.fix_time < f.now - f.limits.max_age


def accuracy(f: FilterInput) -> bool:
    return f.fix.acc_m is not None and f.fix.acc_m > f.limits.max_accuracy_m


def duplicate(f: FilterInput) -> bool:
    # The same measurement time with other coordinates: the device repeats a stale fix.
    # An identical repeat is a redelivery and is simply stored once.
    p = f.previous
    return (
        p is not None and p.fix_time == f.fix.fix_time and (p.lat, p.lon) != (f.fix.lat, f.fix.lon)
    )


def distance_m(a: Fix, b: Fix) -> float:
    _, _, metres = _GEOD.inv(a.lon, a.lat, b.lon, b.lat)
    return float(metres)


def jump(f: FilterInput) -> bool:
    previous = _later(f)
    if previous is None:
        return False
    seconds = (f.fix.fix_time - previous.fix_time).total_seconds()
    limit = f.limits.max_speed_mps.get(f.mode, max(f.limits.max_speed_mps.values()))
    return distance_m(previous, f.fix) > limit * seconds


def too_frequent(f: FilterInput) -> bool:
    previous = _later(f)
    return previous is not None and f.fix.fix_time - previous.fix_time < f.limits.min_period


# The order in which they run: the first that fires names the reason.
FILTERS: dict[str, Callable[[FilterInput], bool]] = {
    "invalid": invalid,
    "zero": zero,
    "future": future,
    "too_old": too_old,
    "accuracy": accuracy,
    "duplicate": duplicate,
    "jump": jump,
    "too_frequent": too_frequent,
}


@cache
def _in_order(enabled: tuple[str, ...]) -> tuple[tuple[str, Callable[[FilterInput], bool]], ...]:
    # Resolved once per setting rather than for every fix.
    return tuple((name, rejects) for name, rejects in FILTERS.items() if name in enabled)


def first_rejection(f: FilterInput, enabled: tuple[str, ...]) -> str | None:
    """The name of the first enabled filter that rejects the fix, or None to accept it."""
    for name, rejects in _in_order(enabled):
        if rejects(f):
            return name
    return None
