"""What decoders produce: plain, typed messages, independent of the wire format.

Times are timezone-aware UTC. Device identity comes from the topic (`crew_id`, `station_id`,
...) and is checked against the database later in the pipeline, not by the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class DecodeError(Exception):
    """The payload cannot be used; `reason` is short and stable (it is counted in metrics)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# Fixes and readings are the bulk of the traffic: plain slotted classes, built in a sixth of the
# time a frozen dataclass takes. Like the other messages they are values: nothing changes one
# after it is made (`dataclasses.replace` makes a new one).
@dataclass(slots=True)
class Fix:
    """One GPS fix of a crew's device."""

    crew_id: str
    device: str  # which device on the crew sent it, e.g. "handheld" or "owntracks:anna/phone"
    fix_time: datetime  # when the position was measured
    lat: float
    lon: float
    acc_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    alt_m: float | None = None
    batt_pct: float | None = None
    device_time: datetime | None = None  # the device's clock when it sent, when it says
    # The handheld a fix names itself (own JSON's `device` or `tid`): it must be bound to the
    # crew of the topic, or another crew's device is speaking for this one.
    named_device: str | None = None


@dataclass(frozen=True)
class TaskStatus:
    crew_id: str
    task_id: str
    status: str  # accepted | en_route | on_site | completed | rejected
    ts: datetime
    note: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class FieldReport:
    crew_id: str
    kind: str  # leak | damage | attribute_correction | other
    ts: datetime
    lat: float
    lon: float
    asset_id: str | None = None
    note: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    photos: tuple[str, ...] = ()


@dataclass(slots=True)
class Reading:
    """One metric value of a monitoring station (SCADA JSON or Sparkplug B)."""

    station_id: str  # the station's public id or its bound SCADA/Sparkplug name
    metric: str  # unit in the name: pressure_kpa, flow_lps, chlorine_mgl
    ts: datetime
    value: float | None  # None: the source marked the value stale or null


@dataclass(frozen=True)
class MeterReading:
    meter_id: str
    ts: datetime
    volume_m3: float


@dataclass(frozen=True)
class DeviceEvent:
    """Something about a device rather than a measurement: OwnTracks transitions and last
    wills, Sparkplug births and deaths, rebirth requests to send."""

    source: str  # e.g. "owntracks:anna/phone", "spb:group/edge[/device]"
    kind: str  # transition | offline | birth | death | rebirth_needed
    ts: datetime
    detail: dict[str, Any] = field(default_factory=dict)


Message = Fix | TaskStatus | FieldReport | Reading | MeterReading | DeviceEvent
