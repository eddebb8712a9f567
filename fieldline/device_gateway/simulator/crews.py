"""Simulated crews: a mover, a GPS receiver, the payload format of the crew's device, and the
jobs it takes from its inbox (jobs.py).

A crew's device loses its network now and then (30-120 s). It keeps taking fixes meanwhile
and sends them when it is back: the Fieldline handheld as one JSON array, in the order its
offline store returns them (not by time); the OwnTracks app one message per queued location,
oldest first, as its outgoing queue does. Task statuses the crew taps meanwhile wait in the
handheld's queue and go out in order when it is back; inbox messages reach it only then (the
broker keeps them in the device's session).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from fieldline.device_gateway.simulator.gps import GpsFix, GpsReceiver
from fieldline.device_gateway.simulator.jobs import JobDesk, Report, StopPlanner, WorkPace
from fieldline.device_gateway.simulator.motion import Gait, Mover
from fieldline.device_gateway.simulator.network import RouteGraph
from fieldline.device_gateway.simulator.publication import Publication, epoch_s, iso_utc
from fieldline.gis.crs import crs_from_srid, point_to_wgs84

PROTOCOLS = ("fieldline", "owntracks")
MODES = ("drive", "walk")
GAP_S = (30.0, 120.0)
GROUND_ALT_M = 12.0  # central Helsinki lies 3-22 m above sea level


@dataclass(frozen=True)
class CrewSpec:
    crew_id: str
    mode: str = "drive"  # drive | walk
    protocol: str = "fieldline"  # fieldline (own JSON) | owntracks
    fix_interval_s: float = 5.0
    gap_every_s: float = 1200.0  # mean time between losses of network
    ts_style: str = "iso"  # iso | epoch: how the own JSON writes `ts`

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        if self.fix_interval_s < 1.0:
            raise ValueError("fix_interval_s must be at least 1 s")

    @property
    def owntracks_user(self) -> str:
        return self.crew_id.lower().replace("-", "")

    @property
    def owntracks_device(self) -> str:
        return "phone"

    @property
    def topic(self) -> str:
        if self.protocol == "owntracks":
            return f"owntracks/{self.owntracks_user}/{self.owntracks_device}"
        return f"fieldline/crews/{self.crew_id}/position"

    @property
    def inbox_topic(self) -> str:
        return f"fieldline/crews/{self.crew_id}/inbox"

    def status_topic(self, task_id: str) -> str:
        return f"fieldline/crews/{self.crew_id}/tasks/{task_id}/status"


def crew_specs(crew_ids: list[str]) -> list[CrewSpec]:
    """The demo's mix, by position in the list: every fourth crew patrols on foot, every
    third uses the OwnTracks app, and own-JSON devices alternate ISO and epoch times."""
    return [
        CrewSpec(
            crew_id,
            mode="walk" if index % 4 == 3 else "drive",
            protocol="owntracks" if index % 3 == 2 else "fieldline",
            ts_style="epoch" if index % 2 else "iso",
        )
        for index, crew_id in enumerate(crew_ids)
    ]


def default_crew_ids(count: int) -> list[str]:
    return [f"C-{number:03d}" for number in range(1, count + 1)]


class SimulatedCrew:
    def __init__(
        self,
        spec: CrewSpec,
        roads: RouteGraph,
        pipes: RouteGraph,
        start: datetime,
        seed: int,
        pace: WorkPace | None = None,
    ) -> None:
        self.spec = spec
        # One generator per crew, seeded by its id: adding a crew leaves the others alone.
        self.rng = random.Random(f"{seed}:{spec.crew_id}")
        graph = roads if spec.mode == "drive" else pipes
        self.mover = Mover(graph, Gait.for_mode(spec.mode, self.rng), self.rng)
        drain = self.rng.uniform(6.0, 12.0) if spec.protocol == "owntracks" else 4.0
        self.gps = GpsReceiver(self.rng, drain_pct_per_h=drain)
        self.crs = crs_from_srid(roads.srid)
        self.now = start
        self.next_fix = start + timedelta(seconds=self.rng.uniform(0.0, spec.fix_interval_s))
        self.offline_until: datetime | None = None
        self.backlog: list[GpsFix] = []
        self.last_fix: GpsFix | None = None
        # Jobs: what the inbox brought and the device has not read yet, the statuses it holds
        # while offline, and the crew's work.
        self.inbox: list[dict[str, Any]] = []
        self.outbox: list[Publication] = []
        planner = StopPlanner(graph, pipes, self.crs)
        self.jobs = JobDesk(self.mover, planner, pace or WorkPace(), self.rng)

    def deliver(self, message: dict[str, Any]) -> None:
        """An inbox message has reached the device's session on the broker."""
        self.inbox.append(message)

    def advance_to(self, end: datetime) -> list[Publication]:
        publications: list[Publication] = []
        while True:
            wake = self.jobs.wake_at
            at = self.next_fix if wake is None else max(self.now, min(self.next_fix, wake))
            if at > end:
                break
            self.mover.advance((at - self.now).total_seconds())
            self.now = at
            if at >= self.next_fix:
                fix = self.gps.measure(self.mover.pose(), self.now, GROUND_ALT_M)
                publications.extend(self._handle(fix))
                jitter = self.rng.uniform(-0.05, 0.05) * self.spec.fix_interval_s
                self.next_fix = self.now + timedelta(seconds=self.spec.fix_interval_s + jitter)
            publications.extend(self._work())
        self.mover.advance((end - self.now).total_seconds())
        self.now = end
        return publications

    @property
    def online(self) -> bool:
        return self.offline_until is None

    def _work(self) -> list[Publication]:
        if self.online:
            for message in self.inbox:
                self.jobs.receive(message, self.now)
            self.inbox.clear()
        statuses = [self._status(report) for report in self.jobs.update(self.now)]
        if self.online:
            return statuses
        self.outbox.extend(statuses)
        return []

    def _status(self, report: Report) -> Publication:
        """What the handheld sends when the crew taps a status: the time, and the position of
        its latest fix."""
        pose = self.mover.pose()
        x, y = (self.last_fix.x, self.last_fix.y) if self.last_fix else (pose.x, pose.y)
        lon, lat = point_to_wgs84(x, y, self.crs)
        payload: dict[str, Any] = {
            "status": report.status,
            "ts": iso_utc(self.now),
            "lat": round(lat, 7),
            "lon": round(lon, 7),
        }
        if report.note:
            payload["note"] = report.note
        return Publication(self.now, self.spec.status_topic(report.task_id), payload)

    def _handle(self, fix: GpsFix) -> list[Publication]:
        self.last_fix = fix
        if self.offline_until is None and self._loses_network():
            self.offline_until = fix.ts + timedelta(seconds=self.rng.uniform(*GAP_S))
        if self.offline_until is not None:
            if fix.ts < self.offline_until:
                self.backlog.append(fix)
                return []
            self.offline_until = None
            held, self.outbox = self.outbox, []
            resent = [replace(publication, at=fix.ts) for publication in held]
            return [
                *self._send_backlog(fix.ts),
                *resent,
                self._publication(fix.ts, [fix], live=True),
            ]
        return [self._publication(fix.ts, [fix], live=True)]

    def _loses_network(self) -> bool:
        return self.rng.random() < self.spec.fix_interval_s / self.spec.gap_every_s

    def _send_backlog(self, at: datetime) -> list[Publication]:
        backlog, self.backlog = self.backlog, []
        if not backlog:
            return []
        if self.spec.protocol == "owntracks":
            return [self._publication(at, [fix], live=False) for fix in backlog]
        shuffled = backlog[:]
        self.rng.shuffle(shuffled)
        return [self._publication(at, shuffled, live=False)]

    def _publication(self, at: datetime, fixes: list[GpsFix], live: bool) -> Publication:
        if self.spec.protocol == "owntracks":
            payload: Any = self._owntracks(fixes[0], live)
        elif live:
            payload = self._own_json(fixes[0])
        else:
            payload = [self._own_json(fix) for fix in fixes]
        return Publication(at, self.spec.topic, payload, fixes=tuple(fixes))

    def _own_json(self, fix: GpsFix) -> dict[str, Any]:
        lon, lat = point_to_wgs84(fix.x, fix.y, self.crs)
        message: dict[str, Any] = {
            "ts": iso_utc(fix.ts) if self.spec.ts_style == "iso" else epoch_s(fix.ts),
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "acc_m": fix.acc_m,
            "speed_mps": fix.speed_mps,
            "alt_m": fix.alt_m,
            "batt_pct": fix.batt_pct,
        }
        if fix.heading_deg is not None:
            message["heading_deg"] = fix.heading_deg
        return message

    def _owntracks(self, fix: GpsFix, live: bool) -> dict[str, Any]:
        """A `location` as the OwnTracks app writes it: whole numbers for accuracy, altitude,
        course and battery, speed in km/h, `tid` the last two characters of the user."""
        lon, lat = point_to_wgs84(fix.x, fix.y, self.crs)
        tst = int(fix.ts.timestamp())
        message: dict[str, Any] = {
            "_type": "location",
            "tid": self.spec.owntracks_user[-2:],
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "tst": tst,
            "created_at": tst,
            "acc": round(fix.acc_m),
            "alt": round(fix.alt_m),
            "vac": round(fix.acc_m * 1.5),
            "vel": round(fix.speed_mps * 3.6),
            "batt": fix.batt_pct,
            "bs": 1,  # unplugged
            "conn": "m" if live else "o",  # mobile data, or offline when it was recorded
            "m": 2,  # move mode: frequent reports
            "t": "t",  # sent on the move-mode timer
        }
        if fix.heading_deg is not None:
            message["cog"] = round(fix.heading_deg) % 360
        return message
