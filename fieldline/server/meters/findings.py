"""Judging meters: each meter's latest days against its own baseline, with numpy over the
whole meters x days matrix at once (no loop per meter but for the few that are found).

The baseline of a meter is the median of its daily consumption over the days before the
latest ones and a robust spread: 1.4826 x the median absolute deviation (the standard
deviation for normally distributed days), at least a floor in m3 and a share of the median so
that a very regular meter is not found for an ordinary day. A day's distance from the median in
spreads is its z. Every score is "times the threshold": 1 is just found, 2 twice as far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from fieldline.server.meters.consumption import Daily, Nights, Rollback
from fieldline.settings import Settings

KINDS = (
    "spike",
    "continuous_flow",
    "drop",
    "zero",
    "reverse",
    "replaced",
    "no_readings",
    "not_enough_history",
)
MAD_TO_SIGMA = 1.4826
# "Used to be steady" allows at most one day in seven without use (a weekend away is not
# a change of habit).
STEADY_ZERO_SHARE = 1 / 7


@dataclass(frozen=True)
class DayFigure:
    day: date
    consumption_m3: float | None
    baseline_median_m3: float | None = None
    baseline_spread_m3: float | None = None
    z: float | None = None
    night_least_lph: float | None = None


@dataclass(frozen=True)
class Finding:
    meter_id: str
    kind: str
    score: float
    why: str
    days: list[DayFigure] = field(default_factory=list)
    last_reading_at: datetime | None = None


@dataclass(frozen=True)
class Baseline:
    median: np.ndarray  # NaN where not enough history
    spread: np.ndarray
    known: np.ndarray  # days of history
    steady: np.ndarray  # bool


def _num(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def baseline(history: np.ndarray, settings: Settings) -> Baseline:
    known = np.sum(~np.isnan(history), axis=1)
    enough = known >= settings.meter_min_history_days
    median = np.full(len(history), np.nan)
    mad = np.full(len(history), np.nan)
    zero_share = np.full(len(history), np.nan)
    if enough.any():
        rows = history[enough]
        median[enough] = np.nanmedian(rows, axis=1)
        mad[enough] = np.nanmedian(np.abs(rows - median[enough, None]), axis=1)
        zero_share[enough] = np.sum(rows <= settings.meter_zero_m3, axis=1) / known[enough]
    spread = np.maximum.reduce(
        [
            MAD_TO_SIGMA * mad,
            np.full(len(history), settings.meter_spread_floor_m3),
            settings.meter_spread_floor_share * median,
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        steady = (
            enough
            & (median > settings.meter_zero_m3)
            & (MAD_TO_SIGMA * mad <= settings.meter_steady_cv * median)
            & (zero_share <= STEADY_ZERO_SHARE)
        )
    return Baseline(median, np.where(enough, spread, np.nan), known, steady)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True, end exclusive."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


class Judge:
    """Findings over one window: `daily` holds the baseline days then the latest ones (from
    column `recent_from`)."""

    def __init__(self, daily: Daily, recent_from: int, settings: Settings) -> None:
        self.daily, self.recent_from, self.settings = daily, recent_from, settings
        self.base = baseline(daily.used_m3[:, :recent_from], settings)
        self.recent = daily.used_m3[:, recent_from:]
        with np.errstate(invalid="ignore"):
            self.z = (self.recent - self.base.median[:, None]) / self.base.spread[:, None]
        self.row = {meter_id: i for i, meter_id in enumerate(daily.meter_ids)}

    @property
    def first_recent_day(self) -> date:
        return self.daily.day(self.recent_from)

    def figure(self, row: int, column: int, night_lph: float | None = None) -> DayFigure:
        """The figures of one of the latest days (column counted from the first of them)."""
        return DayFigure(
            day=self.daily.day(self.recent_from + column),
            consumption_m3=_num(self.recent[row, column]),
            baseline_median_m3=_num(self.base.median[row]),
            baseline_spread_m3=_num(self.base.spread[row]),
            z=None if np.isnan(self.z[row, column]) else round(float(self.z[row, column]), 2),
            night_least_lph=night_lph,
        )

    def _usual(self, row: int) -> str:
        return (
            f"its usual {self.base.median[row]:.3f} m³ a day "
            f"(median of {self.base.known[row]} days, spread {self.base.spread[row]:.3f} m³)"
        )

    def spikes(self) -> list[Finding]:
        threshold = self.settings.meter_spike_z
        with np.errstate(invalid="ignore"):
            high = self.z >= threshold
        found = []
        for row in np.flatnonzero(high.any(axis=1)).tolist():
            columns = np.flatnonzero(high[row])
            worst = columns[np.argmax(self.z[row, columns])]
            day = self.daily.day(self.recent_from + int(worst))
            found.append(
                Finding(
                    self.daily.meter_ids[row],
                    "spike",
                    float(self.z[row, worst]) / threshold,
                    f"used {self.recent[row, worst]:.3f} m³ on {day}, "
                    f"{self.z[row, worst]:.1f} spreads above {self._usual(row)}: "
                    "a burst or a leak on the customer's side",
                    [self.figure(row, int(c)) for c in columns],
                )
            )
        return found

    def drops(self) -> list[Finding]:
        """A steady meter whose consumption stays at zero (`zero`) or far below its baseline
        (`drop`) for `meter_drop_days` days running: stuck or tampered with."""
        s = self.settings
        with np.errstate(invalid="ignore"):
            low = (self.z <= -s.meter_drop_z) & (
                self.recent <= s.meter_drop_ratio * self.base.median[:, None]
            )
        low &= self.base.steady[:, None]
        found = []
        for row in np.flatnonzero(low.any(axis=1)).tolist():
            runs = [(a, b) for a, b in _runs(low[row]) if b - a >= s.meter_drop_days]
            if not runs:
                continue
            start, end = max(runs, key=lambda run: (run[1] - run[0], run[1]))
            used = self.recent[row, start:end]
            zero = bool(np.all(used <= s.meter_zero_m3))
            first = self.daily.day(self.recent_from + start)
            span = f"{end - start} days from {first}"
            usual = self._usual(row)
            why = (
                f"no consumption for {span} while it steadily used "
                + usual.removeprefix("its usual ")
                if zero
                else f"used {np.mean(used):.3f} m³ a day for {span}, far below {usual}"
            )
            found.append(
                Finding(
                    self.daily.meter_ids[row],
                    "zero" if zero else "drop",
                    float(-np.mean(self.z[row, start:end])) / s.meter_drop_z,
                    f"{why}: a stuck meter or tampering",
                    [self.figure(row, c) for c in range(start, end)],
                )
            )
        return found

    def short_history(self, silent: set[str]) -> list[Finding]:
        """Meters read in the latest days whose baseline has too few days to judge them
        against (spikes and drops are not looked for; a silent meter is found as silent)."""
        needed = self.settings.meter_min_history_days
        found = []
        for row in np.flatnonzero(self.base.known < needed).tolist():
            meter_id = self.daily.meter_ids[row]
            if meter_id in silent:
                continue
            found.append(
                Finding(
                    meter_id,
                    "not_enough_history",
                    0.0,
                    f"{self.base.known[row]} days of consumption before "
                    f"{self.first_recent_day} ({needed} needed): not enough history",
                    [
                        self.figure(row, c)
                        for c in range(self.recent.shape[1])
                        if not np.isnan(self.recent[row, c])
                    ],
                )
            )
        return found

    def continuous_flow(self, nights: Nights) -> list[Finding]:
        """Flow that never stops, night after night: the least flow of every one of the last
        `meter_leak_nights` nights at or above `meter_leak_lph`. A night whose readings are too
        sparse (covering less than half of it) cannot be judged, and neither can the meter."""
        s = self.settings
        judged = np.all(nights.covered >= 0.5, axis=1)
        with np.errstate(invalid="ignore"):
            flowing = judged & np.all(nights.least_lph >= s.meter_leak_lph, axis=1)
        h0, h1 = s.meter_night
        found = []
        for row in np.flatnonzero(flowing).tolist():
            meter_id = nights.meter_ids[row]
            least = float(np.min(nights.least_lph[row]))
            days = []
            for column, lph in enumerate(nights.least_lph[row]):
                day = nights.first_day + timedelta(days=column)
                daily_row = self.row.get(meter_id)
                recent_column = (day - self.first_recent_day).days
                if daily_row is not None and 0 <= recent_column < self.recent.shape[1]:
                    days.append(self.figure(daily_row, recent_column, round(float(lph), 2)))
                else:
                    days.append(DayFigure(day, None, night_least_lph=round(float(lph), 2)))
            found.append(
                Finding(
                    meter_id,
                    "continuous_flow",
                    least / s.meter_leak_lph,
                    f"never below {least:.1f} L/h between {h0:02d}:00 and {h1:02d}:00 for "
                    f"{len(days)} nights running: a likely leak",
                    days,
                )
            )
        return found

    def rollbacks(self, found: list[Rollback], timezone: str) -> list[Finding]:
        """A register that goes backwards. Restarting near zero is a replaced meter (check
        the asset record); anything else is tampering or a swapped meter."""
        s, zone = self.settings, ZoneInfo(timezone)
        by_meter: dict[str, list[Rollback]] = {}
        for rollback in found:
            by_meter.setdefault(rollback.meter_id, []).append(rollback)
        findings = []
        for meter_id, steps in by_meter.items():
            row = self.row.get(meter_id)
            median = np.nan if row is None else self.base.median[row]
            scale = max(0.0 if np.isnan(median) else float(median), s.meter_spread_floor_m3)
            for kind in ("reverse", "replaced"):
                mine = [
                    r
                    for r in steps
                    if (r.volume_m3 <= s.meter_replaced_below_m3) == (kind == "replaced")
                ]
                if not mine:
                    continue
                worst = max(mine, key=lambda r: r.before_m3 - r.volume_m3)
                back_m3 = worst.before_m3 - worst.volume_m3
                at = worst.at.astimezone(zone)
                how = (
                    f"restarted at {worst.volume_m3:.3f} m³ after {worst.before_m3:.3f} m³"
                    if kind == "replaced"
                    else f"went back {back_m3:.3f} m³, from {worst.before_m3:.3f} to "
                    f"{worst.volume_m3:.3f} m³,"
                )
                days = []
                for r in mine:
                    day = r.at.astimezone(zone).date()
                    column = (day - self.first_recent_day).days
                    if row is not None and 0 <= column < self.recent.shape[1]:
                        days.append(self.figure(row, column))
                    else:
                        days.append(DayFigure(day, None))
                findings.append(
                    Finding(
                        meter_id,
                        kind,
                        1.0 if kind == "replaced" else 1.0 + back_m3 / scale,
                        f"register {how} at {at:%Y-%m-%d %H:%M}"
                        + (f" ({len(mine)} times)" if len(mine) > 1 else "")
                        + (
                            ": a replaced meter, check the meter record"
                            if kind == "replaced"
                            else ": tampering or a swapped meter"
                        ),
                        list({d.day: d for d in days}.values()),
                    )
                )
        return findings


def silent(
    last_readings: dict[str, datetime | None], now: datetime, settings: Settings
) -> list[Finding]:
    """Meters that reported once but not for more than `meter_silent_days`; a meter never
    read (not a smart meter) is not found."""
    limit = timedelta(days=settings.meter_silent_days)
    found = []
    for meter_id, last in last_readings.items():
        if last is None or now - last <= limit:
            continue
        days = (now - last) / timedelta(days=1)
        found.append(
            Finding(
                meter_id,
                "no_readings",
                days / settings.meter_silent_days,
                f"no reading for {days:.1f} days (more than {settings.meter_silent_days:g})",
                last_reading_at=last,
            )
        )
    return found
