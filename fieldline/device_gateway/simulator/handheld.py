"""Planned work for a crew that a person works on the handheld app (`/crew`), which the
simulation does not drive. Its position is unknown until the handheld sends one, so
auto-dispatch does not pick it: whenever the crew has no open task, at most once a minute, a
planned job at a fixture asset is created as the call centre's are and assigned to the crew
through the dispatcher's API. An offer nobody accepts times out and passes to another crew as
any other does; the next look plans a new one.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from fieldline.device_gateway.simulator.callcentre import (
    MIX,
    ApiError,
    Builder,
    Catalogue,
    burst_main,
    leak,
)

# The crew's tasks the person still has to work (mirrors the server's ACTIVE_STATES).
OPEN_STATES = ("assigned", "accepted", "en_route", "on_site")
PLAN_EVERY_S = 60.0
LOOK_EVERY_S = 5.0
# The routine P3/P4 work: inspections, meter readings, valve operations, patrols; repairs are
# left to the simulated crews' trucks.
HANDHELD_MIX: tuple[tuple[int, Builder], ...] = tuple(
    (weight, build) for weight, build in MIX if build not in (burst_main, leak)
)


class WorkApi(Protocol):
    def open_tasks(self, crew_id: str, states: tuple[str, ...]) -> list[dict[str, Any]]: ...
    def create(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def assign(self, task_id: str, crew_id: str) -> dict[str, Any]: ...


class HandheldPlanner:
    def __init__(
        self,
        catalogue: Catalogue,
        crew_id: str,
        rng: random.Random,
        every_s: float = PLAN_EVERY_S,
    ) -> None:
        self.catalogue = catalogue
        self.crew_id = crew_id
        self.rng = rng
        self.every_s = every_s
        self.planned_at: float | None = None  # on the caller's monotonic clock

    def job(self) -> dict[str, Any]:
        """The body of `POST /api/v1/tasks` for the next planned job."""
        weights, builders = zip(*HANDHELD_MIX, strict=True)
        build = self.rng.choices(builders, weights=weights)[0]
        return build(self.catalogue, self.rng)

    def step(self, api: WorkApi, now: float) -> str | None:
        """One look at the crew: when it has no open task and no job was planned for it in the
        last `every_s`, a new job created and assigned to it; returns what was done, or None.
        A failed attempt counts as one, so a server that refuses is asked once a minute."""
        if self.planned_at is not None and now - self.planned_at < self.every_s:
            return None
        if api.open_tasks(self.crew_id, OPEN_STATES):
            return None
        self.planned_at = now
        task = api.create(self.job())
        # Auto-dispatch may have offered it to another crew already: then this is a transfer.
        assigned = api.assign(task["id"], self.crew_id)["task"]
        return (
            f"{assigned['id']}  {assigned['priority']}  {assigned['kind']:<15}  "
            f"{assigned['title']}  -> {self.crew_id} ({assigned['state']})"
        )


def plan_handheld_work(
    planner: HandheldPlanner,
    api: WorkApi,
    stop: threading.Event,
    report: Callable[[str], None] = lambda line: None,
    clock: Callable[[], float] = time.monotonic,
    look_every_s: float = LOOK_EVERY_S,
) -> int:
    """Look at the crew every `look_every_s` until `stop` is set; returns how many jobs were
    assigned. A server that refuses or cannot be reached is reported and asked again later."""
    assigned = 0
    while True:
        try:
            line = planner.step(api, clock())
        except ApiError as exc:
            report(f"no work planned for {planner.crew_id}: {exc}")
        else:
            if line is not None:
                assigned += 1
                report(line)
        if stop.wait(look_every_s):
            return assigned
