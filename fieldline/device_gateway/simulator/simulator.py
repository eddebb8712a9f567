"""The simulation as a whole, on a simulated clock: `step(dt)` returns what devices sent in
the next `dt` seconds, without sleeping, so tests run a day in seconds; `deliver` hands a
crew's device what arrived on its inbox topic."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from fieldline.device_gateway.simulator.crews import CrewSpec, SimulatedCrew
from fieldline.device_gateway.simulator.jobs import WorkPace, read_message
from fieldline.device_gateway.simulator.network import RouteGraph
from fieldline.device_gateway.simulator.publication import Publication
from fieldline.device_gateway.simulator.telemetry import (
    MeterSpec,
    SimulatedMeter,
    SimulatedStation,
    StationSpec,
    load_meter_specs,
    load_station_specs,
)

FIXTURE_CITY = Path(__file__).resolve().parents[3] / "fixtures" / "city"
LOCAL_SRID = 3067  # the fixture city's projected CRS (ETRS-TM35FIN), for metres


class Source(Protocol):
    def advance_to(self, end: datetime) -> list[Publication]: ...


class SimClock:
    """Simulated time; moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.now = start.astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.now += timedelta(seconds=seconds)
        return self.now


@lru_cache(maxsize=4)
def city_graphs(city: Path = FIXTURE_CITY, srid: int = LOCAL_SRID) -> tuple[RouteGraph, RouteGraph]:
    """Roads to drive and pipes to walk; read once per process (they never change)."""
    return (
        RouteGraph.roads(city / "roads.geojson", srid),
        RouteGraph.pipes(city / "pipes.geojson", srid),
    )


class Simulator:
    def __init__(
        self,
        start: datetime,
        crews: Sequence[CrewSpec] = (),
        stations: Sequence[StationSpec] = (),
        meters: Sequence[MeterSpec] = (),
        seed: int = 0,
        city: Path = FIXTURE_CITY,
        pace: WorkPace | None = None,
    ) -> None:
        self.clock = SimClock(start)
        self.roads, self.pipes = city_graphs(city)
        self.crews = [
            SimulatedCrew(spec, self.roads, self.pipes, self.clock.now, seed, pace)
            for spec in crews
        ]
        self.crews_by_id = {crew.spec.crew_id: crew for crew in self.crews}
        self.stations = [SimulatedStation(spec, self.clock.now, seed) for spec in stations]
        self.stations_by_id = {station.spec.station_id: station for station in self.stations}
        self.sources: list[Source] = [
            *self.crews,
            *self.stations,
            *(SimulatedMeter(spec, self.clock.now, seed) for spec in meters),
        ]

    @property
    def now(self) -> datetime:
        return self.clock.now

    def deliver(self, crew_id: str, payload: bytes) -> bool:
        """A message on `crew_id`'s inbox topic; False when it is no crew of this simulation or
        not an inbox message (a handheld ignores what it cannot read)."""
        crew = self.crews_by_id.get(crew_id)
        message = read_message(payload)
        if crew is None or message is None:
            return False
        crew.deliver(message)
        return True

    def step(self, seconds: float) -> list[Publication]:
        """Advance simulated time; what was sent meanwhile, in the order it was sent."""
        end = self.clock.advance(seconds)
        publications = [p for source in self.sources for p in source.advance_to(end)]
        return sorted(publications, key=lambda publication: publication.at)

    def run(self, seconds: float, step_s: float = 60.0) -> list[Publication]:
        publications: list[Publication] = []
        while seconds > 0:
            publications += self.step(min(step_s, seconds))
            seconds -= step_s
        return publications


def city_simulator(
    start: datetime,
    crews: Sequence[CrewSpec] = (),
    with_stations: bool = False,
    meter_count: int = 0,
    seed: int = 0,
    city: Path = FIXTURE_CITY,
    pace: WorkPace | None = None,
) -> Simulator:
    """The fixture city's stations and meters, with the given crews."""
    stations = load_station_specs(city / "stations.geojson") if with_stations else []
    meters = load_meter_specs(city / "meters.geojson", meter_count) if meter_count else []
    return Simulator(start, crews, stations, meters, seed, city, pace)
