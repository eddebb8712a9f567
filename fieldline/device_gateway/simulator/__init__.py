"""Simulated crews, SCADA stations and meters of the fixture city, publishing over MQTT as
the real devices do: for `fieldline simulate`, the demo, load runs and tests.

`Simulator.step(dt)` runs on simulated time and returns `Publication`s (topic, JSON payload,
and for positions the true track behind them); `publish_realtime` sends them to a broker at
wall-clock pace.
"""

from fieldline.device_gateway.simulator.crews import (
    CrewSpec,
    SimulatedCrew,
    crew_specs,
    default_crew_ids,
)
from fieldline.device_gateway.simulator.gps import GpsFix
from fieldline.device_gateway.simulator.publication import Publication
from fieldline.device_gateway.simulator.runner import (
    connect,
    publish_realtime,
    start_time,
    utc_now,
)
from fieldline.device_gateway.simulator.simulator import (
    FIXTURE_CITY,
    SimClock,
    Simulator,
    city_graphs,
    city_simulator,
)
from fieldline.device_gateway.simulator.telemetry import (
    MeterSpec,
    StationSpec,
    demand_factor,
    load_meter_specs,
    load_station_specs,
)

__all__ = [
    "FIXTURE_CITY",
    "CrewSpec",
    "GpsFix",
    "MeterSpec",
    "Publication",
    "SimClock",
    "SimulatedCrew",
    "Simulator",
    "StationSpec",
    "city_graphs",
    "city_simulator",
    "connect",
    "crew_specs",
    "default_crew_ids",
    "demand_factor",
    "load_meter_specs",
    "load_station_specs",
    "publish_realtime",
    "start_time",
    "utc_now",
]
