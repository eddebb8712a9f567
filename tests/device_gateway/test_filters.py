from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fieldline.device_gateway.filters import FILTERS, FilterInput, FilterLimits, first_rejection
from fieldline.device_gateway.messages import Fix

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
LIMITS = FilterLimits(
    max_accuracy_m=100,
    max_future=timedelta(minutes=5),
    max_age=timedelta(days=7),
    max_speed_mps={"vehicle": 50, "foot": 7},
    min_period=timedelta(seconds=1),
)
ALL = tuple(FILTERS)


def fix(
    seconds: float = 0,
    lat: float = 60.17,
    lon: float = 24.94,
    acc_m: float | None = None,
    speed_mps: float | None = None,
) -> Fix:
    at = NOW + timedelta(seconds=seconds)
    return Fix("C-000001", "handheld", at, lat, lon, acc_m=acc_m, speed_mps=speed_mps)


def judge(new: Fix, previous: Fix | None = None, mode: str = "vehicle") -> str | None:
    return first_rejection(FilterInput(new, NOW, mode, previous, LIMITS), ALL)


@pytest.mark.parametrize(
    ("new", "previous", "mode", "reason"),
    [
        (fix(lat=91), None, "vehicle", "invalid"),
        (fix(lon=-180.5), None, "vehicle", "invalid"),
        (fix(speed_mps=-1), None, "vehicle", "invalid"),
        (fix(lat=0, lon=0), None, "vehicle", "zero"),
        (fix(seconds=301), None, "vehicle", "future"),
        (fix(seconds=-8 * 86400), None, "vehicle", "too_old"),
        (fix(acc_m=150), None, "vehicle", "accuracy"),
        (fix(lat=60.18), fix(), "vehicle", "duplicate"),
        # ~1.1 km in 60 s is 18 m/s: fine by car, not on foot.
        (fix(60, lat=60.18), fix(), "foot", "jump"),
        (fix(0.5, lat=60.17001), fix(), "vehicle", "too_frequent"),
    ],
)
def test_each_filter_names_itself(new: Fix, previous: Fix | None, mode: str, reason: str) -> None:
    assert judge(new, previous, mode) == reason


def test_plausible_fixes_pass() -> None:
    assert judge(fix()) is None
    assert judge(fix(60, lat=60.18), fix(), "vehicle") is None
    assert judge(fix(acc_m=100)) is None
    assert judge(fix(), fix()) is None  # an identical repeat is a redelivery, stored once


def test_backlog_older_than_the_previous_fix_is_not_judged_against_it() -> None:
    # Far away, but measured before the previous fix: an offline backlog arriving late.
    assert judge(fix(-60, lat=61.0), fix()) is None


def test_a_filter_that_is_switched_off_lets_the_fix_through() -> None:
    candidate = FilterInput(fix(acc_m=500), NOW, "vehicle", None, LIMITS)
    assert first_rejection(candidate, tuple(n for n in ALL if n != "accuracy")) is None
