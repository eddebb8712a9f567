"""Daily consumption and night flow from registers, on readings given as arrays (pure numpy,
no database): local days across a DST change, roll-backs, gaps, readings on the midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from fieldline.server.meters.consumption import Readings, daily, nights, rollbacks
from fieldline.server.meters.findings import baseline
from fieldline.settings import load_settings

ZONE = "Europe/Helsinki"
GAP = timedelta(hours=48)


def readings(series: dict[str, list[tuple[datetime, float]]]) -> Readings:
    ids = sorted(series)
    rows = [(i, at.timestamp(), v) for i, m in enumerate(ids) for at, v in sorted(series[m])]
    return Readings(
        ids,
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows], dtype=float),
        np.array([r[2] for r in rows], dtype=float),
    )


def hourly(start: datetime, hours: int, lph: float, register: float = 100.0) -> list:
    return [(start + timedelta(hours=h), register + h * lph / 1000) for h in range(hours)]


def test_a_dst_day_has_25_hours_of_use() -> None:
    # Helsinki leaves summer time on 25 October 2026: that local day is 25 hours long.
    start = datetime(2026, 10, 23, 12, tzinfo=UTC)
    days = daily(
        readings({"M-1": hourly(start, 24 * 4, 10.0)}),
        date(2026, 10, 24),
        date(2026, 10, 26),
        ZONE,
        GAP,
    )
    assert days.used_m3[0] == pytest.approx([0.24, 0.25, 0.24])


def test_midnights_are_interpolated_between_the_readings_around_them() -> None:
    # Readings at 18:00 and 06:00 local (UTC+2): 0.12 m3 over 12 hours puts half on each day.
    evening = datetime(2026, 11, 10, 16, tzinfo=UTC)
    series = [
        (evening - timedelta(hours=24), 10.0),
        (evening, 10.24),
        (evening + timedelta(hours=12), 10.36),
        (evening + timedelta(hours=24), 10.48),
    ]
    days = daily(readings({"M-1": series}), date(2026, 11, 10), date(2026, 11, 11), ZONE, GAP)
    # 10 Nov: from 10.06 at its midnight (6 of the 24 hours from 10.00 to 10.24) to 10.30;
    # 11 Nov has no reading after its closing midnight, so it is not known.
    assert days.used_m3[0, 0] == pytest.approx(0.24)
    assert np.isnan(days.used_m3[0, 1])


def test_a_reading_on_the_midnight_is_the_register_there() -> None:
    midnight = datetime(2026, 11, 9, 22, tzinfo=UTC)  # 10 Nov 00:00 local
    series = [(midnight + timedelta(hours=h), 5.0 + 0.01 * h) for h in (-6, 0, 24, 30)]
    days = daily(readings({"M-1": series}), date(2026, 11, 10), date(2026, 11, 10), ZONE, GAP)
    assert days.used_m3[0, 0] == pytest.approx(0.24)


def test_a_rollback_adds_nothing_and_is_found() -> None:
    start = datetime(2026, 11, 9, 22, tzinfo=UTC)
    series = hourly(start, 54, 10.0)
    series[30] = (series[30][0], 50.0)  # the register falls, then carries on from there
    series[31:] = [(at, 50.0 + (i + 1) * 0.01) for i, (at, _) in enumerate(series[31:])]
    data = readings({"M-1": series})
    days = daily(data, date(2026, 11, 10), date(2026, 11, 11), ZONE, GAP)
    # 11 Nov: 5 hours before the fall and 18 after it; the hour of the fall adds nothing.
    assert days.used_m3[0] == pytest.approx([0.24, 0.23])
    (found,) = rollbacks(data, start, 0.001)
    assert (found.before_m3, found.volume_m3) == pytest.approx((100.29, 50.0))
    assert found.at == start + timedelta(hours=30)
    assert rollbacks(data, start + timedelta(hours=31), 0.001) == []


def test_readings_too_far_apart_leave_the_days_unknown() -> None:
    start = datetime(2026, 11, 8, 22, tzinfo=UTC)
    series = [(start, 1.0), (start + timedelta(days=3), 2.0), (start + timedelta(days=4), 2.3)]
    days = daily(readings({"M-1": series}), date(2026, 11, 9), date(2026, 11, 12), ZONE, GAP)
    assert np.isnan(days.used_m3[0, :3]).all()
    assert days.used_m3[0, 3] == pytest.approx(0.3)


def test_night_flow_needs_readings_often_enough() -> None:
    start = datetime(2026, 11, 9, 22, tzinfo=UTC)  # 10 Nov 00:00 local
    often = hourly(start, 48, 4.0)
    sparse = often[::6]
    found = nights(
        readings({"M-1": often, "M-2": sparse}),
        date(2026, 11, 10),
        date(2026, 11, 11),
        ZONE,
        (1, 5),
        timedelta(minutes=60),
    )
    assert found.least_lph[0] == pytest.approx([4.0, 4.0])
    assert found.covered[0] == pytest.approx([1.0, 1.0])
    assert np.isnan(found.least_lph[1]).all()


def test_baseline_spread_has_a_floor_and_history_a_minimum() -> None:
    settings = load_settings()
    history = np.array([[0.3] * 10, [0.3] * 6 + [np.nan] * 4, [0.1, 0.9] * 5])
    base = baseline(history, settings)
    assert base.median[0] == pytest.approx(0.3)
    assert base.spread[0] == pytest.approx(settings.meter_spread_floor_m3)
    assert np.isnan(base.median[1])  # 6 days: fewer than 7
    assert list(base.steady) == [True, False, False]
