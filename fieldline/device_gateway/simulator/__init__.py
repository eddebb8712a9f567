"""Simulated crews, SCADA stations and meters of the fixture city, publishing over MQTT as
the real devices do, and a simulated call centre creating tasks: for `fieldline simulate`, the
demo, load runs and tests.

`Simulator.step(dt)` runs on simulated time and returns `Publication`s (topic, JSON payload,
and for positions the true track behind them); `Simulator.deliver` hands a crew what came on
its inbox topic, and the crew works the tasks (jobs.py). `publish_realtime` sends the
publications to a broker at wall-clock pace, with the crews' inboxes (`CrewInboxes`) read from
the broker; `take_calls` posts the call centre's tasks to the server's API, and
`plan_handheld_work` keeps a crew worked on the handheld app supplied with planned jobs;
`replay_main_breaks` plays a main break through, from a station's pressure falling to the
incident closed (mainbreak.py).
"""

from fieldline.device_gateway.simulator.callcentre import (
    CallCentre,
    Catalogue,
    TaskApi,
    server_url,
    take_calls,
)
from fieldline.device_gateway.simulator.crews import (
    CrewSpec,
    SimulatedCrew,
    crew_specs,
    default_crew_ids,
)
from fieldline.device_gateway.simulator.gps import GpsFix
from fieldline.device_gateway.simulator.handheld import HandheldPlanner, plan_handheld_work
from fieldline.device_gateway.simulator.inbox import CrewInboxes
from fieldline.device_gateway.simulator.jobs import WorkPace
from fieldline.device_gateway.simulator.mainbreak import (
    IncidentApi,
    MainBreak,
    break_sites,
    replay_main_breaks,
)
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
    "CallCentre",
    "Catalogue",
    "CrewInboxes",
    "CrewSpec",
    "GpsFix",
    "HandheldPlanner",
    "IncidentApi",
    "MainBreak",
    "MeterSpec",
    "Publication",
    "SimClock",
    "SimulatedCrew",
    "Simulator",
    "StationSpec",
    "TaskApi",
    "WorkPace",
    "break_sites",
    "city_graphs",
    "city_simulator",
    "connect",
    "crew_specs",
    "default_crew_ids",
    "demand_factor",
    "load_meter_specs",
    "load_station_specs",
    "plan_handheld_work",
    "publish_realtime",
    "replay_main_breaks",
    "server_url",
    "start_time",
    "take_calls",
    "utc_now",
]
