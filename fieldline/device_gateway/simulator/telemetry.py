"""Simulated SCADA stations and water meters, driven by one daily demand pattern.

Demand is low at night and peaks in the morning and the evening (local time). Flow follows
demand; pressure falls with the head loss, which grows with the square of the flow; chlorine
decays with the age of the water, which is older when little is drawn (so it is lowest in the
night); temperature follows the season with a small daily swing; turbidity rises a little
when the flow is high and stirs up sediment. Each value carries slowly varying noise.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fieldline.device_gateway.simulator.publication import Publication, iso_utc

CITY_TIMEZONE = ZoneInfo("Europe/Helsinki")
NIGHT_DEMAND = 0.45
CHLORINE_DECAY_PER_H = 0.05
WATER_AGE_AT_AVERAGE_DEMAND_H = 6.0


def demand_factor(ts: datetime, timezone: ZoneInfo = CITY_TIMEZONE) -> float:
    """Demand relative to the daily mean shape: about 0.45 at 3 am, 1.5 at 7:30, 1.25 at 19:30."""
    local = ts.astimezone(timezone)
    hour = local.hour + local.minute / 60 + local.second / 3600
    return (
        NIGHT_DEMAND
        + 1.05 * _bump(hour, 7.5, 1.3)
        + 0.45 * _bump(hour, 13.0, 2.5)
        + 0.8 * _bump(hour, 19.5, 1.7)
    )


def _bump(hour: float, centre: float, width: float) -> float:
    distance = abs(hour - centre) % 24
    distance = min(distance, 24 - distance)
    return math.exp(-0.5 * (distance / width) ** 2)


def water_temperature_c(ts: datetime) -> float:
    """Mains water in Helsinki: about 4 °C in March, 16 °C in August."""
    day = ts.timetuple().tm_yday
    seasonal = 10.0 - 6.0 * math.cos(2 * math.pi * (day - 50) / 365.25)
    return seasonal + 0.2 * math.sin(2 * math.pi * (ts.hour - 9) / 24)


class _Wander:
    """Noise that changes slowly: first-order Gauss-Markov with the given sigma and time scale."""

    def __init__(self, rng: random.Random, sigma: float, scale_s: float) -> None:
        self.rng, self.sigma, self.scale_s, self.value = rng, sigma, scale_s, 0.0

    def next(self, dt: float) -> float:
        keep = math.exp(-dt / self.scale_s)
        fresh = self.sigma * math.sqrt(1 - keep * keep)
        self.value = keep * self.value + self.rng.gauss(0.0, fresh)
        return self.value


@dataclass(frozen=True)
class StationSpec:
    station_id: str
    metrics: tuple[str, ...]
    interval_s: float = 60.0


def load_station_specs(path: Path, interval_s: float = 60.0) -> list[StationSpec]:
    collection = json.loads(path.read_text())
    return [
        StationSpec(feature["id"], tuple(feature["properties"]["metrics"]), interval_s)
        for feature in collection["features"]
    ]


class Periodic:
    """A device that reports every `interval_s`, starting at a random offset."""

    def __init__(self, rng: random.Random, start: datetime, interval_s: float) -> None:
        self.rng = rng
        self.interval = timedelta(seconds=interval_s)
        self.last = start
        self.next_at = start + timedelta(seconds=rng.uniform(0.0, interval_s))

    def advance_to(self, end: datetime) -> list[Publication]:
        publications = []
        while self.next_at <= end:
            publications.append(self.report(self.next_at, (self.next_at - self.last)))
            self.last = self.next_at
            self.next_at += self.interval
        return publications

    def report(self, ts: datetime, since: timedelta) -> Publication:
        raise NotImplementedError


class PressureLoss:
    """A main break seen from a station: set to the pressure the station falls to, or None
    when the break is repaired. Set from another thread (the break's scenario); the station
    notes on its own clock when that changed and moves there with `BREAK_TIME_CONSTANT_S`."""

    def __init__(self) -> None:
        self.target_kpa: float | None = None


BREAK_TIME_CONSTANT_S = 20.0  # a burst drains the zone within a minute or so


class SimulatedStation(Periodic):
    def __init__(self, spec: StationSpec, start: datetime, seed: int) -> None:
        rng = random.Random(f"{seed}:{spec.station_id}")
        super().__init__(rng, start, spec.interval_s)
        self.spec = spec
        self.topic = f"fieldline/scada/{spec.station_id}"
        self.mean_flow_lps = rng.uniform(30.0, 120.0)
        self.static_kpa = rng.uniform(480.0, 560.0)
        self.loss_kpa = rng.uniform(40.0, 70.0)  # head loss at the mean demand
        self.dose_mgl = rng.uniform(0.5, 0.8)
        self.noise = {
            "flow_lps": _Wander(rng, 0.03, 300.0),  # relative
            "pressure_kpa": _Wander(rng, 2.0, 120.0),
            "chlorine_mgl": _Wander(rng, 0.015, 900.0),
            "turbidity_ntu": _Wander(rng, 0.03, 600.0),
            "temperature_c": _Wander(rng, 0.05, 1800.0),
        }
        self.loss = PressureLoss()
        # (when the target last changed, the pressure then, the target); None: no break.
        self._loss_state: tuple[datetime, float, float | None] | None = None

    def values(self, ts: datetime, dt: float) -> dict[str, float]:
        demand = demand_factor(ts)
        noise = {name: wander.next(dt) for name, wander in self.noise.items()}
        age_h = WATER_AGE_AT_AVERAGE_DEMAND_H / demand
        every = {
            "flow_lps": round(self.mean_flow_lps * demand * (1 + noise["flow_lps"]), 2),
            "pressure_kpa": round(
                self.static_kpa - self.loss_kpa * demand**2 + noise["pressure_kpa"], 1
            ),
            "chlorine_mgl": round(
                max(0.0, self.dose_mgl * math.exp(-CHLORINE_DECAY_PER_H * age_h))
                + noise["chlorine_mgl"],
                3,
            ),
            "turbidity_ntu": round(
                max(0.02, 0.15 + 0.12 * max(0.0, demand - 1.0) + noise["turbidity_ntu"]), 3
            ),
            "temperature_c": round(water_temperature_c(ts) + noise["temperature_c"], 2),
        }
        every["pressure_kpa"] = round(self._broken(ts, every["pressure_kpa"]), 1)
        return {name: every[name] for name in self.spec.metrics if name in every}

    def _broken(self, ts: datetime, normal: float) -> float:
        """The pressure with the break's loss: falling to its target, or back to normal once
        the target is taken away."""
        target = self.loss.target_kpa
        state = self._loss_state
        if state is None and target is None:
            return normal
        if state is None or state[2] != target:
            level = normal if state is None else self._level(ts, normal, state)
            state = self._loss_state = (ts, level, target)
        value = self._level(ts, normal, state)
        if target is None and abs(value - normal) < 1.0:
            self._loss_state = None  # recovered
        return value

    @staticmethod
    def _level(ts: datetime, normal: float, state: tuple[datetime, float, float | None]) -> float:
        since, start, target = state
        goal = normal if target is None else target
        keep = math.exp(-max(0.0, (ts - since).total_seconds()) / BREAK_TIME_CONSTANT_S)
        return goal + (start - goal) * keep

    def report(self, ts: datetime, since: timedelta) -> Publication:
        metrics = self.values(ts, since.total_seconds() or self.interval.total_seconds())
        return Publication(ts, self.topic, {"ts": iso_utc(ts), "metrics": metrics})


@dataclass(frozen=True)
class MeterSpec:
    meter_id: str
    size_mm: int
    interval_s: float = 900.0


def load_meter_specs(path: Path, count: int, interval_s: float = 900.0) -> list[MeterSpec]:
    collection = json.loads(path.read_text())
    return [
        MeterSpec(feature["id"], int(feature["properties"]["size_mm"]), interval_s)
        for feature in collection["features"][:count]
    ]


class SimulatedMeter(Periodic):
    """A building's meter: cumulative volume, drawn at a rate that follows demand."""

    def __init__(self, spec: MeterSpec, start: datetime, seed: int) -> None:
        rng = random.Random(f"{seed}:{spec.meter_id}")
        super().__init__(rng, start, spec.interval_s)
        self.topic = f"fieldline/meters/{spec.meter_id}/reading"
        # A larger connection serves a larger building: 15 mm ~ a flat block's share.
        self.mean_m3_per_h = (spec.size_mm / 15.0) ** 2 * rng.uniform(0.05, 0.15)
        self.volume_m3 = rng.uniform(100.0, 50_000.0)

    def report(self, ts: datetime, since: timedelta) -> Publication:
        hours = since.total_seconds() / 3600
        rate = self.mean_m3_per_h * demand_factor(ts) * self.rng.uniform(0.7, 1.3)
        self.volume_m3 += rate * hours
        payload: dict[str, Any] = {"ts": iso_utc(ts), "volume_m3": round(self.volume_m3, 3)}
        return Publication(ts, self.topic, payload)
