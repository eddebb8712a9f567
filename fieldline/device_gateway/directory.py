"""Who may report: crews and their devices, stations and their bound names, meters.

Loaded whole from the database (a utility has hundreds of crews and stations, not millions) and
reloaded every `refresh_s`, or at once when a message names something unknown (at most once a
second, so a flood of unknown devices does not flood the database).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import sqlalchemy as sa

from fieldline.gis.models import Meter, Station
from fieldline.server.crews.models import Crew, Device
from fieldline.server.telemetry.models import StationBinding


class DirectoryUnavailable(Exception):
    """A name could not be checked because the database cannot be reached: the message is not
    at fault and must wait, not be dead-lettered."""


class Directory(Protocol):
    def crew_mode(self, crew_id: str) -> str | None: ...
    def owntracks_crew(self, identifier: str) -> str | None: ...
    def handheld_crew(self, identifier: str) -> str | None: ...
    def station(self, name: str) -> str | None: ...
    def meter(self, meter_id: str) -> bool: ...


class DatabaseDirectory:
    def __init__(self, engine: sa.Engine, refresh_s: float = 30.0, miss_s: float = 1.0) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self.miss_s = miss_s
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._crews: dict[str, str] = {}
        self._owntracks: dict[str, str] = {}
        self._handhelds: dict[str, str] = {}
        self._stations: dict[str, str] = {}
        self._meters: frozenset[str] = frozenset()

    def load(self) -> None:
        with self.engine.connect() as connection:
            crews = dict(connection.execute(sa.select(Crew.public_id, Crew.mode)).all())
            devices = connection.execute(
                sa.select(Device.kind, Device.identifier, Crew.public_id).join(
                    Crew, Crew.id == Device.crew_id
                )
            ).all()
            owntracks = {name: crew for kind, name, crew in devices if kind == "owntracks"}
            handhelds = {name: crew for kind, name, crew in devices if kind == "own"}
            stations = {pid: pid for (pid,) in connection.execute(sa.select(Station.public_id))}
            stations.update(
                connection.execute(
                    sa.select(StationBinding.source, Station.public_id).join(
                        Station, Station.id == StationBinding.station_id
                    )
                ).all()
            )
            meters = frozenset(connection.execute(sa.select(Meter.public_id)).scalars())
        with self._lock:
            self._crews, self._owntracks, self._handhelds = crews, owntracks, handhelds
            self._stations, self._meters = stations, meters
            self._loaded_at = time.monotonic()

    def _fresh(self, missing: bool) -> None:
        age = time.monotonic() - self._loaded_at
        if not (age > self.refresh_s or (missing and age > self.miss_s)):
            return
        try:
            self.load()
        except sa.exc.OperationalError as exc:
            # With the database away, the names already known stay good; an unknown name
            # cannot be judged until it is back.
            if missing or self._loaded_at == float("-inf"):
                raise DirectoryUnavailable(str(exc)) from exc

    def _lookup(self, table: str, key: str) -> str | None:
        self._fresh(missing=False)
        found: str | None = getattr(self, table).get(key)
        if found is None:
            self._fresh(missing=True)
            found = getattr(self, table).get(key)
        return found

    def crew_mode(self, crew_id: str) -> str | None:
        return self._lookup("_crews", crew_id)

    def owntracks_crew(self, identifier: str) -> str | None:
        return self._lookup("_owntracks", identifier)

    def handheld_crew(self, identifier: str) -> str | None:
        return self._lookup("_handhelds", identifier)

    def station(self, name: str) -> str | None:
        return self._lookup("_stations", name)

    def meter(self, meter_id: str) -> bool:
        self._fresh(missing=False)
        if meter_id not in self._meters:
            self._fresh(missing=True)
        return meter_id in self._meters
